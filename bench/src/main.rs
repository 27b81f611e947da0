//! `weberei-bench [ingest|fanout|replay|api|all] [--smoke] [--json out.json]`: the seed's
//! gates and our targets (DESIGN.md §10, issue 4), each figure next to a baseline measured in
//! the same run on the same machine. Uses the shared local services through the tests'
//! variables (`TEST_NATS_URL`, `TEST_DATABASE_URL`, `TEST_REDIS_URL`; defaults on localhost),
//! with an Ort and a database of its own per scenario, removed at the end.
//!
//! `--smoke` runs every scenario in seconds with tiny numbers: it keeps the harness working
//! (`./dev.sh test` runs it) and asserts nothing about speed.
//!
//! This crate must never be a dependency of another crate, never touch streams or databases it
//! did not create (only its own `bn…` Orte and `wg_bench_…` databases, removed at the end), never
//! be pointed at a real town's services, and its figures must never become a test assertion.

// A benchmark harness: where it cannot go on (a lock poisoned, a channel gone) it stops with a
// message; nothing here serves anyone, so an abort is the honest outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod broadcast;
mod env;
mod fanout;
mod ingest;
mod replay;
mod report;
mod town;

use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Ingest,
    Fanout,
    Replay,
    Api,
    All,
}

#[derive(Debug, Parser)]
#[command(
    name = "weberei-bench",
    about = "Weberei's benchmarks: figures, same-run baselines, targets"
)]
struct Cli {
    /// Which scenario (default: all).
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// Tiny numbers, a few seconds per scenario: checks the harness, measures nothing.
    #[arg(long)]
    smoke: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// fanout: viewport clients for the latency run.
    #[arg(long, default_value_t = 2000)]
    clients: usize,
    /// fanout: connections held for the memory figure.
    #[arg(long, default_value_t = 10_000)]
    hold: usize,
    /// ingest: paced rate in events/s (5 % above our target of 5,000, so meeting it shows).
    #[arg(long, default_value_t = 5250.0)]
    rate: f64,
    /// ingest: seconds of the paced run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// api: request rate in requests/s.
    #[arg(long, default_value_t = 500.0)]
    api_rate: f64,
    /// api: seconds of the open-loop run.
    #[arg(long, default_value_t = 30)]
    api_seconds: u64,
    /// fanout: the API's viewport tick in ms (production: 1500).
    #[arg(long, default_value_t = 1500)]
    tick_ms: u64,
    /// Internal: serve the bare WebSocket broadcast baseline (see `broadcast.rs`).
    #[arg(long, hide = true)]
    broadcast_server: Option<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(spec) = &cli.broadcast_server {
        return rt.block_on(broadcast::serve(spec));
    }
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let machine = env::machine_info();
    eprintln!(
        "weberei-bench {:?}{} on {} cores, {:.1} GiB ({}), {} build",
        cli.scenario,
        if cli.smoke { " --smoke" } else { "" },
        machine["nproc"],
        machine["mem_gib"].as_f64().unwrap_or(0.0),
        machine["cpu"].as_str().unwrap_or(""),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    let all = cli.scenario == Scenario::All;
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    let started = std::time::Instant::now();
    if all || cli.scenario == Scenario::Ingest {
        let opts = if cli.smoke {
            ingest::Opts {
                burst: Duration::from_secs(1),
                paced: Duration::from_secs(2),
                rate: 200.0,
                in_flight: 32,
                baseline_events: 1000,
            }
        } else {
            ingest::Opts {
                burst: Duration::from_secs(15),
                paced: Duration::from_secs(cli.seconds),
                rate: cli.rate,
                in_flight: 256,
                baseline_events: 100_000,
            }
        };
        collect("ingest", ingest::run(&opts).await, &mut rows, &mut failed);
    }
    if all || cli.scenario == Scenario::Replay {
        let opts = if cli.smoke {
            replay::Opts {
                chain: 50,
                runs: 10,
                rebuild_events: 2000,
            }
        } else {
            replay::Opts {
                chain: 500,
                runs: 200,
                rebuild_events: 100_000,
            }
        };
        collect("replay", replay::run(&opts).await, &mut rows, &mut failed);
    }
    if all || cli.scenario == Scenario::Api {
        let opts = if cli.smoke {
            api::Opts {
                knoten: 300,
                faeden: 900,
                rate: 50.0,
                duration: Duration::from_secs(2),
            }
        } else {
            api::Opts {
                knoten: 10_000,
                faeden: 30_000,
                rate: cli.api_rate,
                duration: Duration::from_secs(cli.api_seconds),
            }
        };
        collect("api", api::run(&opts).await, &mut rows, &mut failed);
    }
    if all || cli.scenario == Scenario::Fanout {
        let opts = if cli.smoke {
            fanout::Opts {
                clients: 20,
                hold: 50,
                rate: 20.0,
                duration: Duration::from_secs(3),
                tick: Duration::from_millis(300),
            }
        } else {
            fanout::Opts {
                clients: cli.clients,
                hold: cli.hold,
                rate: 50.0,
                duration: Duration::from_secs(30),
                tick: Duration::from_millis(cli.tick_ms),
            }
        };
        collect("fanout", fanout::run(&opts).await, &mut rows, &mut failed);
    }
    println!("{}", report::table(&rows));
    eprintln!(
        "weberei-bench: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &cli.json {
        let doc = serde_json::json!({
            "machine": machine,
            "smoke": cli.smoke,
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "at": chrono::Utc::now().to_rfc3339(),
            "rows": rows.iter().map(report::Row::to_json).collect::<Vec<_>>(),
            "failed": failed,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    if !failed.is_empty() {
        anyhow::bail!("scenarios failed: {}", failed.join("; "));
    }
    Ok(())
}

fn collect(
    name: &str,
    result: Result<Vec<report::Row>>,
    rows: &mut Vec<report::Row>,
    failed: &mut Vec<String>,
) {
    match result {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("weberei-bench: {name} failed: {e:#}");
            failed.push(format!("{name}: {e:#}"));
        }
    }
}
