//! fanout: N `graphql-transport-ws` clients on `viewport` subscriptions, street-level boxes
//! spread over the town (many tiles, some shared), against `weberei up`; a producer ties Knoten
//! through `Bus::execute` at a steady rate.
//!
//! Per (Knoten, client) delivery: commit -> client (commit = the JetStream ack `execute`
//! returned), split into the tick wait (commit -> the first delivery of that Knoten to any
//! client, i.e. the tick that carried it) and the time beyond the tick (that delivery -> this
//! client). Also messages/s, the server's RSS per connection (for N, then for `hold`
//! connections held open), errors (refusals, failed handshakes, closed sockets, resyncs).
//!
//! Baseline (same run): a bare tokio WebSocket broadcast server (`broadcast.rs`, a child
//! process) sending one real viewport message to the same number of clients each tick; its
//! "beyond the tick" is measured the same way (first arrival of a tick -> this client).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use chrono::Utc;
use domain::knoten::Knoten;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

use crate::env::{self, BenchDb, Weberei};
use crate::report::{Row, Target, p50_95_99};
use crate::town;

pub struct Opts {
    pub clients: usize,
    pub hold: usize,
    /// Knoten tied per second by the producer.
    pub rate: f64,
    pub duration: Duration,
    pub tick: Duration,
}

const VIEWPORT: &str = "subscription($bbox: BboxInput!, $zoom: Float) { \
     viewport(bbox: $bbox, zoom: $zoom) { knoten { id title lat lng } cursor resync heartbeat } }";
const ZOOM: f64 = 15.0;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    errors: AtomicU64,
    resyncs: AtomicU64,
    closed: AtomicU64,
}

/// What one client saw: (Knoten id, arrival) per Knoten in its diffs, and the last message.
#[derive(Default)]
struct Seen {
    arrivals: Vec<(Uuid, Instant)>,
    sample: Option<String>,
}

pub async fn run(opts: &Opts) -> Result<Vec<Row>> {
    let ort = env::unique_ort();
    let db = BenchDb::create(4).await?;
    let result = async {
        let server = Weberei::up(&ort, &db.url, opts.tick.as_millis() as u64).await?;
        let r = measure(opts, &ort, &server).await;
        server.stop().await?;
        r
    }
    .await;
    if let Ok(bus) = env::bus(&ort, 256 * 1024 * 1024).await {
        let _ = bus.delete_streams().await;
    }
    db.drop_db().await?;
    let (mut rows, sample) = result?;
    let extra = baseline(opts, &sample, &mut rows).await?;
    rows.extend(extra);
    Ok(rows)
}

/// Client `i`'s viewport: a street-level box somewhere in the town.
fn bbox(i: usize) -> Value {
    let (lat, lng) = town::spot(i as u64 * 31 + 5);
    json!({ "west": lng - 0.01, "south": lat - 0.006, "east": lng + 0.01, "north": lat + 0.006 })
}

async fn measure(opts: &Opts, ort: &str, server: &Weberei) -> Result<(Vec<Row>, String)> {
    let pid = server.pid()?;
    let counters = Arc::new(Counters::default());
    let (stop, stop_rx) = watch::channel(false);
    let recording = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Warm-up subscriber (starts the tick task), then the baseline memory.
    let warm = open_viewport(&server.ws(), bbox(usize::MAX / 64)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0 = env::rss_kb(pid)?;

    let opened_at = Instant::now();
    let clients = open_many(opts.clients, {
        let ws = server.ws();
        move |i| {
            let ws = ws.clone();
            async move { open_viewport(&ws, bbox(i)).await }
        }
    })
    .await;
    let open_secs = opened_at.elapsed().as_secs_f64();
    let mut readers = Vec::new();
    for c in clients {
        match c {
            Ok(ws) => readers.push(tokio::spawn(read_viewport(
                ws,
                counters.clone(),
                recording.clone(),
                stop_rx.clone(),
            ))),
            Err(e) => {
                if counters.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("fanout: client failed to open: {e}");
                }
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_n = env::rss_kb(pid)?;
    eprintln!(
        "fanout: {} subscriptions open in {open_secs:.1} s; server RSS {rss0} kB -> {rss_n} kB",
        readers.len()
    );

    // The producer: Knoten at a steady rate, commit = the JetStream ack.
    let bus = env::bus(ort, 256 * 1024 * 1024).await?;
    counters.messages.store(0, Ordering::Relaxed);
    recording.store(true, Ordering::Relaxed);
    let commits: Arc<std::sync::Mutex<HashMap<Uuid, Instant>>> = Default::default();
    let started = Instant::now();
    let total = (opts.rate * opts.duration.as_secs_f64()) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / opts.rate);
        tokio::time::sleep_until(due.into()).await;
        let (bus, commits, counters) = (bus.clone(), commits.clone(), counters.clone());
        tasks.spawn(async move {
            let id = Uuid::new_v4();
            let now = Utc::now();
            let cmd = town::create_knoten(id, i * 7919 + 3, now);
            match bus
                .execute::<Knoten>(
                    id,
                    &cmd,
                    town::meta(format!("bench:fan:{id}")),
                    now,
                    bus::Expect::NewChain,
                )
                .await
            {
                Ok(_) => {
                    commits.lock().unwrap().insert(id, Instant::now());
                }
                Err(e) => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("fanout: producer failed: {e}");
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    // Two ticks and a second for the last diffs.
    tokio::time::sleep(opts.tick * 2 + Duration::from_secs(1)).await;
    let window = started.elapsed().as_secs_f64();
    recording.store(false, Ordering::Relaxed);
    let messages = counters.messages.load(Ordering::Relaxed);

    // Hold: more idle subscriptions up to `hold`, and the memory they cost.
    let extra = opts.hold.saturating_sub(readers.len());
    let held = open_many(extra, {
        let ws = server.ws();
        move |i| {
            let ws = ws.clone();
            async move { open_viewport(&ws, bbox(i + 100_000)).await }
        }
    })
    .await;
    let mut holders = Vec::new();
    for c in held {
        match c {
            Ok(ws) => holders.push(tokio::spawn(read_viewport(
                ws,
                counters.clone(),
                recording.clone(),
                stop_rx.clone(),
            ))),
            Err(e) => {
                if counters.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("fanout: held client failed to open: {e}");
                }
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_hold = env::rss_kb(pid)?;
    let held_total = readers.len() + holders.len();
    eprintln!("fanout: {held_total} subscriptions held; server RSS {rss_hold} kB");
    let _ = stop.send(true);
    let mut seen = Vec::new();
    for r in readers {
        seen.push(r.await?);
    }
    for h in holders {
        let _ = h.await;
    }
    drop(warm);

    let commits = commits.lock().unwrap().clone();
    let mut first: HashMap<Uuid, Instant> = HashMap::new();
    for s in &seen {
        for (id, at) in &s.arrivals {
            first
                .entry(*id)
                .and_modify(|f| *f = (*f).min(*at))
                .or_insert(*at);
        }
    }
    let (mut total_ms, mut tick_ms, mut beyond_ms) = (Vec::new(), Vec::new(), Vec::new());
    for s in &seen {
        for (id, at) in &s.arrivals {
            let (Some(c), Some(f)) = (commits.get(id), first.get(id)) else {
                continue;
            };
            total_ms.push(at.saturating_duration_since(*c).as_secs_f64() * 1000.0);
            beyond_ms.push(at.saturating_duration_since(*f).as_secs_f64() * 1000.0);
        }
    }
    for (id, f) in &first {
        if let Some(c) = commits.get(id) {
            tick_ms.push(f.saturating_duration_since(*c).as_secs_f64() * 1000.0);
        }
    }
    let reached = first.keys().filter(|k| commits.contains_key(k)).count();
    let sample = seen
        .iter()
        .filter_map(|s| s.sample.clone())
        .max_by_key(String::len)
        .unwrap_or_else(|| json!({"id": "1", "type": "next", "payload": {"data": {"viewport": {"knoten": [], "cursor": "", "resync": false, "heartbeat": false}}}}).to_string());
    let (t50, t95, t99) = p50_95_99(&mut total_ms);
    let (w50, w95, _) = p50_95_99(&mut tick_ms);
    let (b50, b95, b99) = p50_95_99(&mut beyond_ms);
    let n = opts.clients;
    let s = "fanout";
    let tick = opts.tick.as_millis();
    let deliveries = total_ms.len();
    let errors = counters.errors.load(Ordering::Relaxed) + counters.closed.load(Ordering::Relaxed);
    let per_conn_n = (rss_n.saturating_sub(rss0)) as f64 / n.max(1) as f64;
    let per_conn_hold = (rss_hold.saturating_sub(rss0)) as f64 / held_total.max(1) as f64;
    Ok((
        vec![
            Row::new(s, format!("{n} clients: commit -> client p50"), t50, "ms")
                .note(format!("tick {tick} ms; producer {:.0} Knoten/s for {} s; {} of {} Knoten reached a viewport; {deliveries} (Knoten, client) deliveries", opts.rate, opts.duration.as_secs(), reached, commits.len())),
            Row::new(s, format!("{n} clients: commit -> client p95"), t95, "ms"),
            Row::new(s, format!("{n} clients: commit -> client p99"), t99, "ms"),
            Row::new(s, "tick wait (commit -> first delivery) p50", w50, "ms"),
            Row::new(s, "tick wait (commit -> first delivery) p95", w95, "ms")
                .note("bounded by the tick plus the hub's read of the stream"),
            Row::new(s, format!("{n} clients: beyond the tick p50"), b50, "ms"),
            Row::new(s, format!("{n} clients: beyond the tick p95"), b95, "ms")
                .target(Target::at_most(Some(300.0), Some(50.0)))
                .note("first delivery of a Knoten -> this client's delivery; seed gate: 200 clients p95 <= 300 ms"),
            Row::new(s, format!("{n} clients: beyond the tick p99"), b99, "ms"),
            Row::new(s, "messages delivered", messages as f64 / window, "msgs/s"),
            Row::new(s, format!("server RSS per connection ({n})"), per_conn_n, "kB"),
            Row::new(s, format!("server RSS per connection ({held_total} held)"), per_conn_hold, "kB")
                .target(Target::at_most(None, Some(20.0)))
                .note(format!("our target: 10,000 clients held with <= 20 KB each; server RSS {rss0} kB -> {rss_hold} kB")),
            Row::new(s, "errors (failed opens, refusals, closed)", errors as f64, "count")
                .target(Target::at_most(Some(0.0), Some(0.0)))
                .note(format!("{} resync notices", counters.resyncs.load(Ordering::Relaxed))),
        ],
        sample,
    ))
}

/// Open `n` connections, 64 at a time.
async fn open_many<F, Fut>(n: usize, open: F) -> Vec<Result<Ws>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Ws>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await;
        let fut = open(i);
        tasks.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.map_err(|e| anyhow!("{e}")).and_then(|r| r));
    }
    out
}

async fn open_viewport(url: &str, bbox: Value) -> Result<Ws> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let step = Duration::from_secs(30);
    let (mut ws, _) =
        tokio::time::timeout(step, tokio_tungstenite::connect_async(request)).await??;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": {} }).to_string(),
    ))
    .await?;
    loop {
        let msg = tokio::time::timeout(step, ws.next())
            .await?
            .ok_or_else(|| anyhow!("closed before connection_ack"))??;
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str())?;
            match v["type"].as_str() {
                Some("connection_ack") => break,
                Some("ping" | "pong") => {}
                _ => return Err(anyhow!("expected connection_ack, got {v}")),
            }
        }
    }
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": VIEWPORT, "variables": { "bbox": bbox, "zoom": ZOOM } } });
    ws.send(Message::text(sub.to_string())).await?;
    Ok(ws)
}

async fn read_viewport(
    mut ws: Ws,
    counters: Arc<Counters>,
    recording: Arc<std::sync::atomic::AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    loop {
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = stop.changed() => break,
        };
        let Some(Ok(frame)) = frame else {
            counters.closed.fetch_add(1, Ordering::Relaxed);
            break;
        };
        let at = Instant::now();
        match frame {
            Message::Text(t) => {
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match v["type"].as_str() {
                    Some("next") => {
                        if v["payload"].get("errors").is_some() {
                            if counters.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("fanout: subscription error: {v}");
                            }
                            continue;
                        }
                        let diff = &v["payload"]["data"]["viewport"];
                        if diff["resync"].as_bool() == Some(true) {
                            counters.resyncs.fetch_add(1, Ordering::Relaxed);
                        }
                        if !recording.load(Ordering::Relaxed) {
                            continue;
                        }
                        counters.messages.fetch_add(1, Ordering::Relaxed);
                        let mut any = false;
                        for k in diff["knoten"].as_array().into_iter().flatten() {
                            if let Some(id) = k["id"].as_str().and_then(|s| s.parse().ok()) {
                                seen.arrivals.push((id, at));
                                any = true;
                            }
                        }
                        if any && seen.sample.is_none() {
                            seen.sample = Some(t.as_str().to_owned());
                        }
                    }
                    Some("ping") => {
                        let _ = ws
                            .send(Message::text(json!({ "type": "pong" }).to_string()))
                            .await;
                    }
                    Some("pong") => {}
                    _ => {
                        if counters.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("fanout: unexpected message: {v}");
                        }
                    }
                }
            }
            Message::Ping(p) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Message::Close(_) => {
                counters.closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
            _ => {}
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Baseline

async fn baseline(opts: &Opts, sample: &str, rows: &mut [Row]) -> Result<Vec<Row>> {
    let dir = std::env::temp_dir().join(format!("weberei-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let payload = dir.join("payload.json");
    std::fs::write(&payload, sample)?;
    let addr = format!("127.0.0.1:{}", env::free_port()?);
    let spec = format!("{addr}|{}|{}", opts.tick.as_millis(), payload.display());
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--broadcast-server")
        .arg(&spec)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await?
        .map_err(|e| anyhow!("broadcast server: {e}"))?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("broadcast server exited"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss0 = env::rss_kb(pid)?;
    let url = format!("ws://{addr}/");
    let opened = open_many(opts.clients, {
        move |_| {
            let url = url.clone();
            async move {
                let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
                Ok(ws)
            }
        }
    })
    .await;
    let (stop, stop_rx) = watch::channel(false);
    let mut readers = Vec::new();
    let mut errors = 0u64;
    for c in opened {
        match c {
            Ok(ws) => readers.push(tokio::spawn(read_plain(ws, stop_rx.clone()))),
            Err(_) => errors += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_n = env::rss_kb(pid)?;
    tokio::time::sleep(opts.duration).await;
    let _ = stop.send(true);
    let mut per_client = Vec::new();
    for r in readers {
        per_client.push(r.await?);
    }
    let _ = child.start_kill();
    let _ = std::fs::remove_dir_all(&dir);

    // The k-th message is the k-th tick for every client that was connected from the start.
    let ticks = per_client.iter().map(Vec::len).min().unwrap_or(0);
    let messages: usize = per_client.iter().map(Vec::len).sum();
    let mut beyond = Vec::new();
    // Skip the first tick (clients were still settling) and align on the end: every client got
    // the same last `ticks` messages.
    for k in 1..ticks {
        let at = |c: &Vec<Instant>| c[c.len() - ticks + k];
        let first = per_client.iter().map(at).min();
        if let Some(first) = first {
            for c in &per_client {
                beyond.push(at(c).saturating_duration_since(first).as_secs_f64() * 1000.0);
            }
        }
    }
    let (b50, b95, b99) = p50_95_99(&mut beyond);
    let rate = messages as f64 / (opts.duration.as_secs_f64() + 2.0);
    let per_conn = (rss_n.saturating_sub(rss0)) as f64 / opts.clients.max(1) as f64;
    let n = opts.clients;
    for r in rows.iter_mut() {
        if r.figure == format!("{n} clients: beyond the tick p50") {
            r.baseline = Some(b50);
        } else if r.figure == format!("{n} clients: beyond the tick p95") {
            r.baseline = Some(b95);
        } else if r.figure == format!("{n} clients: beyond the tick p99") {
            r.baseline = Some(b99);
        } else if r.figure == "messages delivered" {
            r.baseline = Some(rate);
        } else if r.figure == format!("server RSS per connection ({n})") {
            r.baseline = Some(per_conn);
        } else if r.figure.starts_with("errors") {
            r.baseline = Some(errors as f64);
        }
    }
    Ok(vec![Row::new("fanout", "baseline: bare tokio WebSocket broadcast", sample.len() as f64, "bytes/msg")
        .note(format!("{n} clients, one {} -byte viewport message to every client per tick (ours sends only to subscribers of tiles that changed); {ticks} ticks", sample.len()))])
}

async fn read_plain(mut ws: Ws, mut stop: watch::Receiver<bool>) -> Vec<Instant> {
    let mut arrivals = Vec::new();
    loop {
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = stop.changed() => break,
        };
        match frame {
            Some(Ok(Message::Text(t))) => {
                let at = Instant::now();
                // Parse as the viewport clients do, so both sides pay the same per message.
                if serde_json::from_str::<Value>(t.as_str()).is_ok() {
                    arrivals.push(at);
                }
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    arrivals
}
