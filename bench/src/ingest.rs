//! ingest: commands through `Bus::execute` (canonical JSON, hash chain, msg-id dedup, expected
//! sequence) over many aggregates while the real `ProjectionWorker` projects them.
//!
//! Baseline (same run): bare async JetStream publishes of the same kind of bytes (sealed
//! `KnotenGeknuepft` envelopes with their msg id and expected-sequence headers), as many in
//! flight as the command path gets.
//!
//! Projection lag is the worker's own measurement: it records `now - JetStream timestamp`
//! after the batch's transaction committed (`wg_projection_lag_seconds`); the bench installs a
//! metrics recorder that keeps those samples.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use async_nats::jetstream::context::Publish;
use bus::Bus;
use chrono::Utc;
use domain::events::FadenTyp;
use domain::faden::{Faden, faden_id};
use domain::knoten::Knoten;
use domain::{Aggregate, AggregateType, StreamDomain};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

use crate::env::{self, BenchDb, CpuMeter};
use crate::report::{Row, Target, p50_95_99};
use crate::town;

pub struct Opts {
    /// Closed-loop run at full speed.
    pub burst: Duration,
    /// Paced run at `rate` events/s.
    pub paced: Duration,
    pub rate: f64,
    pub in_flight: usize,
    pub baseline_events: usize,
}

// ---------------------------------------------------------------------------------------------
// The worker's lag histogram

static LAG: Mutex<Vec<f64>> = Mutex::new(Vec::new());

struct LagSink;

impl metrics::HistogramFn for LagSink {
    fn record(&self, value: f64) {
        if let Ok(mut v) = LAG.lock() {
            v.push(value);
        }
    }
}

struct LagRecorder;

impl metrics::Recorder for LagRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        if key.name() == "wg_projection_lag_seconds" {
            metrics::Histogram::from_arc(Arc::new(LagSink))
        } else {
            metrics::Histogram::noop()
        }
    }
}

pub fn install_lag_recorder() {
    let _ = metrics::set_global_recorder(LagRecorder);
}

fn take_lag() -> Vec<f64> {
    LAG.lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------

pub async fn run(opts: &Opts) -> Result<Vec<Row>> {
    install_lag_recorder();
    let max_bytes = 1024 * 1024 * 1024;
    let ort = env::unique_ort();
    let bus = env::bus(&ort, max_bytes).await?;
    let db = BenchDb::create(8).await?;
    let result = run_with(opts, &bus, &db).await;
    let _ = bus.delete_streams().await;
    db.drop_db().await?;
    result
}

async fn run_with(opts: &Opts, bus: &Bus, db: &BenchDb) -> Result<Vec<Row>> {
    let baseline = bare_publish(opts).await?;
    eprintln!("ingest: bare JetStream publish {baseline:.0} msgs/s");

    let (stop, stop_rx) = watch::channel(false);
    let worker = workers::ProjectionWorker::new(
        bus.clone(),
        workers::Projector::new(db.conn.clone()),
        Default::default(),
    );
    let worker = tokio::spawn(worker.run(stop_rx));
    let counter = Arc::new(AtomicU64::new(0));
    let roles: Arc<Vec<Uuid>> = Arc::new((0..1000).map(|_| Uuid::new_v4()).collect());

    // Closed loop: as fast as the command path goes.
    let started = Instant::now();
    let published = drive(bus, &counter, &roles, opts.in_flight, opts.burst, None).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    drained(bus, Duration::from_secs(300)).await?;
    let e2e_secs = started.elapsed().as_secs_f64();
    let burst_pub = published as f64 / publish_secs;
    let burst_e2e = published as f64 / e2e_secs;
    eprintln!(
        "ingest: closed loop {burst_pub:.0} events/s published, {burst_e2e:.0} events/s published and projected"
    );
    take_lag();

    // Paced: a steady rate, the lag it leaves.
    let pid = std::process::id();
    let cpu = CpuMeter::start(pid)?;
    let others = ProcCpu::start(&["nats-server", "postgres"]);
    let rss_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let rss_peak = rss_peak.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(kb) = env::rss_kb(pid) {
                    rss_peak.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let started = Instant::now();
    let paced = drive(
        bus,
        &counter,
        &roles,
        opts.in_flight * 4,
        opts.paced,
        Some(opts.rate),
    )
    .await?;
    let paced_secs = started.elapsed().as_secs_f64();
    let (cores, machine) = cpu.read()?;
    let others = others.read();
    drained(bus, Duration::from_secs(300)).await?;
    let drain_secs = started.elapsed().as_secs_f64();
    sampler.abort();
    let mut lag = take_lag();
    let (p50, p95, p99) = p50_95_99(&mut lag);
    let sustained = paced as f64 / paced_secs;
    let projected = paced as f64 / drain_secs;
    let _ = stop.send(true);
    let _ = worker.await;

    let s = "ingest";
    let rate = opts.rate;
    let secs = opts.paced.as_secs();
    Ok(vec![
        Row::new(
            s,
            "closed loop: published via Bus::execute",
            burst_pub,
            "events/s",
        )
        .baseline(baseline)
        .note(format!(
            "{} commands in flight; baseline = bare async JetStream publish of the same bytes",
            opts.in_flight
        )),
        Row::new(
            s,
            "closed loop: published and projected",
            burst_e2e,
            "events/s",
        )
        .baseline(baseline),
        Row::new(
            s,
            format!("paced {rate:.0}/s for {secs} s: published"),
            sustained,
            "events/s",
        )
        .baseline(baseline)
        .target(Target::at_least(Some(10_000.0 / 60.0), Some(5000.0))),
        Row::new(
            s,
            format!("paced {rate:.0}/s: published and projected"),
            projected,
            "events/s",
        )
        .baseline(baseline)
        .target(Target::at_least(Some(10_000.0 / 60.0), Some(5000.0)))
        .note(
            "events of the paced run / (time until the projection consumer had acked all of them)",
        ),
        Row::new(s, "projection lag p50", p50 * 1000.0, "ms"),
        Row::new(s, "projection lag p95", p95 * 1000.0, "ms"),
        Row::new(s, "projection lag p99", p99 * 1000.0, "ms")
            .target(Target::at_most(Some(1000.0), Some(250.0)))
            .note(
                "JetStream timestamp -> projection transaction committed, as the worker records it",
            ),
        Row::new(s, "CPU bench process (bus + projector)", cores, "cores").note(format!(
            "machine busy {machine:.0}% of {} cores during the paced run; {others}",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )),
        Row::new(
            s,
            "RSS bench process (peak)",
            rss_peak.load(Ordering::Relaxed) as f64 / 1024.0,
            "MB",
        ),
    ])
}

/// Run commands for `duration`: closed loop with `in_flight` at a time, or paced at `rate`
/// (dispatched on schedule, at most `in_flight` waiting). Returns the events appended.
async fn drive(
    bus: &Bus,
    counter: &Arc<AtomicU64>,
    roles: &Arc<Vec<Uuid>>,
    in_flight: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Result<u64> {
    let permits = Arc::new(Semaphore::new(in_flight));
    let errors = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    let mut issued = 0u64;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(issued as f64 / rate);
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let permit = permits.clone().acquire_owned().await?;
        issued += 1;
        let i = counter.fetch_add(1, Ordering::Relaxed);
        let (bus, roles, errors, done) = (bus.clone(), roles.clone(), errors.clone(), done.clone());
        tasks.spawn(async move {
            match one_command(&bus, &roles, i).await {
                Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("ingest: command failed: {e}");
                    }
                    0
                }
            };
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let errors = errors.load(Ordering::Relaxed);
    if errors > 0 {
        eprintln!("ingest: {errors} commands failed");
    }
    Ok(done.load(Ordering::Relaxed))
}

/// Three in four commands tie a new Knoten, one in four spins a new Faden.
async fn one_command(bus: &Bus, roles: &[Uuid], i: u64) -> Result<()> {
    let now = Utc::now();
    if i % 4 == 3 {
        let rolle = roles[(i as usize / 4) % roles.len()];
        let knoten = Uuid::new_v4();
        let id = faden_id(rolle, knoten, FadenTyp::Interesse);
        let cmd = town::spin(rolle, knoten, FadenTyp::Interesse, now);
        bus.execute::<Faden>(
            id,
            &cmd,
            town::meta(format!("bench:{id}")),
            now,
            bus::Expect::NewChain,
        )
        .await?;
    } else {
        let id = Uuid::new_v4();
        let cmd = town::create_knoten(id, i, now);
        bus.execute::<Knoten>(
            id,
            &cmd,
            town::meta(format!("bench:{id}")),
            now,
            bus::Expect::NewChain,
        )
        .await?;
    }
    Ok(())
}

/// Wait until the projection consumer has acknowledged everything on the social stream.
async fn drained(bus: &Bus, timeout: Duration) -> Result<()> {
    let name = bus.config().ort.stream_name(StreamDomain::Social);
    let deadline = Instant::now() + timeout;
    let stream = bus.jetstream().get_stream(&name).await?;
    loop {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_consumer("projection")
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let info = consumer.info().await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "projection still {} pending / {} unacked after {timeout:?}",
                info.num_pending,
                info.num_ack_pending
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bare async JetStream publish of sealed `KnotenGeknuepft` bytes, with the same headers
/// (msg id, expected last subject sequence 0), on an Ort of its own. Returns messages/s.
async fn bare_publish(opts: &Opts) -> Result<f64> {
    let ort = env::unique_ort();
    let bus = env::bus(&ort, 512 * 1024 * 1024).await?;
    let now = Utc::now();
    let mut bodies = Vec::with_capacity(opts.baseline_events);
    for i in 0..opts.baseline_events as u64 {
        let id = Uuid::new_v4();
        let ev = Knoten::default()
            .decide(&town::create_knoten(id, i, now))?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("nothing decided"))?;
        let (env, _) = town::seal(
            &bus.config().ort,
            AggregateType::Knoten,
            id,
            None,
            ev,
            format!("bench:{id}"),
            now,
        )?;
        bodies.push((
            env.subject.clone(),
            env.meta.msg_id.clone(),
            serde_json::to_vec(&env)?,
        ));
    }
    let js = bus.jetstream().clone();
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut acked = 0usize;
    for (subject, msg_id, body) in bodies {
        if pending.len() >= opts.in_flight
            && let Some(r) = pending.next().await
        {
            r?;
            acked += 1;
        }
        let publish = Publish::build()
            .payload(body.into())
            .message_id(msg_id)
            .expected_last_subject_sequence(0);
        let ack = js.send_publish(subject, publish).await?;
        pending.push(ack.into_future());
    }
    while let Some(r) = pending.next().await {
        r?;
        acked += 1;
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    bus.delete_streams().await?;
    Ok(rate)
}

/// CPU time of other processes by command name (e.g. the shared nats-server and PostgreSQL),
/// read from /proc.
struct ProcCpu {
    names: Vec<&'static str>,
    start: Instant,
    before: std::collections::HashMap<u32, f64>,
}

impl ProcCpu {
    fn start(names: &[&'static str]) -> Self {
        let before = Self::by_pid(names);
        Self {
            names: names.to_vec(),
            start: Instant::now(),
            before,
        }
    }

    fn by_pid(names: &[&str]) -> std::collections::HashMap<u32, f64> {
        let mut out = std::collections::HashMap::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if names.iter().any(|n| comm.trim() == *n)
                && let Ok(cpu) = env::cpu_seconds(pid)
            {
                out.insert(pid, cpu);
            }
        }
        out
    }

    /// "nats-server 0.52 cores, postgres 0.61 cores"
    fn read(&self) -> String {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let mut parts = Vec::new();
        for name in &self.names {
            let now = Self::by_pid(&[name]);
            let used: f64 = now
                .iter()
                .map(|(pid, cpu)| cpu - self.before.get(pid).copied().unwrap_or(0.0))
                .sum();
            parts.push(format!("{name} {:.2} cores", used / wall));
        }
        parts.join(", ")
    }
}
