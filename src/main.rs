//! The `weberei` binary: subcommands only. Every role of the platform is one subcommand of the
//! same binary (`up` runs them all in one process); the libraries do the work.
//!
//! The binary must never hold business rules or GraphQL types (those live in `domain` and
//! `api`), never read configuration anywhere but once into `Settings`, and never let its
//! embedded servers use the machine's shared services' ports or data (its own ports, its own
//! data dir). See DESIGN.md §2 and §8.

mod admin;
mod demo;
mod embedded;
mod settings;
mod verify;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::settings::Settings;

#[derive(Parser)]
#[command(
    name = "weberei",
    version,
    about = "Weberei: a community platform for a town and its neighbourhoods"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: starts NATS, PostgreSQL and Redis from the system's binaries
    /// where NATS_URL / DATABASE_URL / REDIS_URL are unset, migrates, runs API and workers.
    Up,
    /// The API alone (needs NATS_URL, DATABASE_URL, REDIS_URL).
    Api,
    /// One worker role.
    Worker {
        #[arg(value_enum)]
        role: WorkerRole,
    },
    /// Apply the database migrations (or roll them all back with --down).
    Migrate {
        #[arg(long)]
        down: bool,
    },
    /// Write the GraphQL SDL (the contract) to a file.
    ExportSchema {
        #[arg(default_value = "schema.graphql")]
        path: std::path::PathBuf,
    },
    /// Re-check every hash chain in the archive; exits non-zero on any break.
    Verify,
    /// Throw away all projections and apply the whole events archive again (stop the
    /// projection workers first).
    Rebuild,
    /// Seed the demo town (idempotent; `up` does it at every start unless WEBEREI_DEMO=false).
    Demo,
    /// Admin actions, recorded as `AdminActionExecuted` (uses NATS_URL, or the NATS of a running
    /// `weberei up` on WEBEREI_NATS_PORT).
    Admin {
        #[command(subcommand)]
        action: admin::AdminCommand,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WorkerRole {
    /// Events -> PostgreSQL projections, archive and chain heads.
    Projection,
    /// Timers: decay and yarn (scans at start for what came due while it was down).
    Jobs,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,async_nats=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let s = cli.settings;
    match cli.command {
        Command::ExportSchema { path } => {
            std::fs::write(&path, api::schema_sdl())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Command::Migrate { down } => {
            let db = connect_db(s.require_database_url()?).await?;
            if down {
                migration::Migrator::down(&db, None).await?;
            } else {
                migration::Migrator::up(&db, None).await?;
            }
            info!(down, "migrations done");
            Ok(())
        }
        Command::Verify => {
            let db = connect_db(s.require_database_url()?).await?;
            verify::run(&db).await
        }
        Command::Up => up(s).await,
        Command::Rebuild => {
            let db = connect_db(s.require_database_url()?).await?;
            let started = std::time::Instant::now();
            let applied = workers::Projector::new(db).rebuild_from_archive().await?;
            println!(
                "rebuilt projections from {applied} archived events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Demo => {
            let urls = s.explicit_urls()?;
            let ort = s.ort()?;
            let db = connect_db(&urls.database).await?;
            let bus = bus::Bus::connect(&urls.nats, s.bus_config(ort), None).await?;
            bus.ensure_streams().await?;
            bus.set_archive(std::sync::Arc::new(workers::ArchiveReader::new(db.clone())));
            let seeded = demo::seed(&bus, &db, &demo::Options::from_settings(&s)).await?;
            println!("demo town: {seeded}");
            db.close().await.ok();
            Ok(())
        }
        Command::Admin { action } => admin::run(&s, action).await,
        Command::Api => {
            let urls = s.explicit_urls()?;
            serve(
                s,
                urls,
                Roles {
                    api: true,
                    projection: false,
                    jobs: false,
                },
            )
            .await
        }
        Command::Worker { role } => {
            let urls = s.explicit_urls()?;
            let roles = match role {
                WorkerRole::Projection => Roles {
                    api: false,
                    projection: true,
                    jobs: false,
                },
                WorkerRole::Jobs => Roles {
                    api: false,
                    projection: false,
                    jobs: true,
                },
            };
            serve(s, urls, roles).await
        }
    }
}

struct Roles {
    api: bool,
    projection: bool,
    jobs: bool,
}

/// Connection URLs of the three servers.
pub struct Urls {
    pub nats: String,
    pub database: String,
    pub redis: String,
}

async fn up(s: Settings) -> Result<()> {
    let wanted = embedded::Wanted {
        nats: s.nats_url.is_none(),
        postgres: s.database_url.is_none(),
        redis: s.redis_url.is_none(),
    };
    let (servers, started) = if wanted.nats || wanted.postgres || wanted.redis {
        let (e, u) = embedded::Embedded::start(&s.embedded_config(), wanted).await?;
        (Some(e), u)
    } else {
        (None, embedded::EmbeddedUrls::default())
    };
    let pick = |given: &Option<String>, started: Option<String>| {
        given.clone().or(started).unwrap_or_default()
    };
    let urls = Urls {
        nats: pick(&s.nats_url, started.nats_url),
        database: pick(&s.database_url, started.database_url),
        redis: pick(&s.redis_url, started.redis_url),
    };
    let result = async {
        let db = connect_db(&urls.database).await?;
        migration::Migrator::up(&db, None)
            .await
            .context("migrating the database")?;
        db.close().await.ok();
        serve(
            s,
            urls,
            Roles {
                api: true,
                projection: true,
                jobs: true,
            },
        )
        .await
    }
    .await;
    if let Some(servers) = servers
        && let Err(e) = servers.stop().await
    {
        warn!(error = %e, "stopping the embedded servers");
    }
    result
}

async fn serve(s: Settings, urls: Urls, roles: Roles) -> Result<()> {
    let metrics = install_metrics()?;
    let db = connect_db(&urls.database).await?;
    let ort = s.ort()?;
    let fallback = bus::Fallback::connect(&urls.redis, &ort)
        .await
        .with_context(|| format!("connecting to Redis at {}", urls.redis))?;
    let bus = bus::Bus::connect(&urls.nats, s.bus_config(ort.clone()), Some(fallback)).await?;
    bus.ensure_streams()
        .await
        .context("creating the JetStream streams")?;
    bus.set_archive(std::sync::Arc::new(workers::ArchiveReader::new(db.clone())));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    {
        let bus = bus.clone();
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            bus.run_drain(Duration::from_millis(500), async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await;
        }));
    }
    if roles.projection {
        let worker = workers::ProjectionWorker::new(
            bus.clone(),
            workers::Projector::new(db.clone()),
            workers::ProjectionConfig::default(),
        );
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move { worker.run(rx).await }));
    }

    if roles.jobs {
        let jobs = workers::JobsWorker::new(
            bus.clone(),
            db.clone(),
            std::sync::Arc::new(workers::SystemClock),
            workers::JobsConfig {
                transitive_delegation: s.ff_transitive_delegation,
                quorum_percent: s.quorum_percent,
                active_days: s.active_days,
                yarn_min_roles: s.yarn_min_roles,
                ..workers::JobsConfig::default()
            },
        );
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move { jobs.run(rx).await }));
    }

    let addr: SocketAddr = s
        .http_addr
        .parse()
        .with_context(|| format!("WEBEREI_HTTP_ADDR {:?} is not host:port", s.http_addr))?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!(
                "port {} is in use: another weberei is running, or set WEBEREI_HTTP_ADDR to another address",
                addr.port()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("binding {addr}")),
    };
    let bound = listener.local_addr()?;
    if s.demo && roles.projection && roles.api {
        match demo::seed(&bus, &db, &demo::Options::from_settings(&s)).await {
            Ok(seeded) if seeded.total() == 0 => {}
            Ok(seeded) => info!(%seeded, "demo town seeded"),
            Err(e) => warn!(error = %e, "could not seed the demo town"),
        }
    }
    let router = if roles.api {
        let hub = api::LiveHub::spawn(bus.clone(), db.clone(), stop_rx.clone());
        let state = api::AppState::new(bus.clone(), db.clone(), hub, s.api_config(), Some(metrics));
        api::app(state)
    } else {
        metrics_only(metrics)
    };
    if roles.api {
        println!("Weberei is running at http://{bound}/ (GraphiQL: http://{bound}/graphiql)");
    } else {
        println!("worker metrics at http://{bound}/metrics");
    }
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        })
        .await
    });

    shutdown_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    // Open WebSockets do not end by themselves: give requests a moment, then stop.
    if tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .is_err()
    {
        warn!("some connections were still open after 5 s; closing them");
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    db.close().await.ok();
    Ok(())
}

fn metrics_only(handle: PrometheusHandle) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(handle.render())),
        )
        .route("/health/live", axum::routing::get(|| async { "ok" }))
}

fn install_metrics() -> Result<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("wg_projection_lag_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )
        .context("metric buckets")?;
    builder
        .install_recorder()
        .context("installing the Prometheus recorder")
}

async fn connect_db(url: &str) -> Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(20)
        .min_connections(1)
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10));
    Database::connect(opts)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
