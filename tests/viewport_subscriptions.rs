#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Viewport subscriptions through the real `weberei` binary over `graphql-transport-ws`
//! (DESIGN.md §5): tile grouping, cursors and replay, slow clients, two API processes, and
//! refused arguments.
//!
//! Each test runs its own `weberei up` (and, for the two-process test, a `weberei api` beside
//! it) with its own Ort and a fresh database, against the machine's shared NATS, PostgreSQL and
//! Redis; the guard stops the processes with SIGTERM and deletes the Ort's streams and the
//! database, also when an assertion fails.
//!
//! Memory per subscription and delivery latency are measured by the benchmark harness
//! (`weberei-bench fanout`, BENCHMARKS.md), not here.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const STEP: Duration = Duration::from_secs(10);

/// Weimar: inside the subscribers' box.
const LAT: f64 = 50.9795;
const LNG: f64 = 11.3235;
/// Munich: far outside it.
const FAR_LAT: f64 = 48.137;
const FAR_LNG: f64 = 11.575;
/// A street-level map around Weimar's market (zoom 15 → tiles of resolution 8).
const ZOOM: f64 = 15.0;

fn bbox_around(lat: f64, lng: f64, half: f64) -> Value {
    json!({ "west": lng - half, "south": lat - half, "east": lng + half, "north": lat + half })
}

fn weimar_box() -> Value {
    bbox_around(LAT, LNG, 0.01)
}

// ---------------------------------------------------------------------------------------------
// The binary

#[derive(Clone, Default)]
struct Options {
    tick_ms: Option<u64>,
    ws_queue: Option<usize>,
}

impl Options {
    fn up(&self) -> testkit::up::Options {
        let mut o = testkit::up::Options::default().ws_tick_ms(Some(self.tick_ms.unwrap_or(200)));
        o.ws_queue = Some(self.ws_queue.unwrap_or(64));
        o
    }
}

/// A running `weberei up` or `weberei api` (`testkit::up`: dropping it sends SIGTERM and
/// waits; the one that owns the Ort also deletes its streams and drops the database), with a
/// registered role for the mutations.
struct Weberei {
    up: testkit::up::Up,
    url: String,
    ort: String,
    http: reqwest::Client,
    /// Session of a role registered at start (mutations need one); subscriptions stay
    /// anonymous, as a visitor's map does.
    token: String,
}

impl Weberei {
    /// `weberei up` with a fresh Ort and database (migrates, runs the API and the workers).
    async fn up(opts: Options) -> Weberei {
        Self::with(testkit::up::Up::start(env!("CARGO_BIN_EXE_weberei"), opts.up()).await).await
    }

    /// A second API process (`weberei api`) on the same Ort, database and servers as `other`.
    async fn api_beside(other: &Weberei, opts: Options) -> Weberei {
        Self::with(other.up.beside(opts.up().subcommand("api")).await).await
    }

    async fn with(up: testkit::up::Up) -> Weberei {
        let mut server = Weberei {
            url: up.url().to_owned(),
            ort: up.ort().to_owned(),
            up,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            token: String::new(),
        };
        let reg = server
            .graphql(
                "mutation($i: RegisterInput!) { register(input: $i) { token } }",
                json!({ "i": {
                    "idempotencyKey": uuid::Uuid::new_v4().to_string(),
                    "name": "Kartografin",
                    "lat": LAT,
                    "lng": LNG,
                }}),
            )
            .await;
        server.token = reg["data"]["register"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("register failed: {reg}"))
            .to_owned();
        server
    }

    fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.url.replacen("http://", "ws://", 1))
    }

    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql");
        let status = resp.status();
        let body = resp.text().await.expect("reading /graphql response");
        assert!(
            status.is_success(),
            "POST /graphql answered {status}: {body}"
        );
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }

    /// Tie a Knoten at (lat, lng); returns its id.
    async fn create_knoten(&self, title: &str, lat: f64, lng: f64, content: Value) -> String {
        let body = self
            .graphql(
                "mutation($input: CreateKnotenInput!) { createKnoten(input: $input) { knoten { id } } }",
                json!({ "input": {
                    "idempotencyKey": uuid::Uuid::new_v4().to_string(),
                    "title": title,
                    "typ": "IDEEN",
                    "lat": lat,
                    "lng": lng,
                    "content": content,
                }}),
            )
            .await;
        assert!(body.get("errors").is_none(), "createKnoten failed: {body}");
        body["data"]["createKnoten"]["knoten"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {body}"))
            .to_owned()
    }

    /// Tie `n` Knoten, `parallel` at a time; returns their ids in order of creation requests.
    async fn create_many(
        &self,
        n: usize,
        parallel: usize,
        at: impl Fn(usize) -> (f64, f64),
        content: Value,
    ) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        let indices: Vec<usize> = (0..n).collect();
        for chunk in indices.chunks(parallel.max(1)) {
            let batch = futures::future::join_all(chunk.iter().map(|i| {
                let (lat, lng) = at(*i);
                let content = content.clone();
                async move {
                    self.create_knoten(&format!("Knoten {i}"), lat, lng, content)
                        .await
                }
            }))
            .await;
            ids.extend(batch);
        }
        ids
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket clients

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const VIEWPORT: &str = "subscription($bbox: BboxInput!, $zoom: Float, $after: String) { \
     viewport(bbox: $bbox, zoom: $zoom, after: $after) { knoten { id title lat lng } cursor resync heartbeat } }";

/// The same with each Knoten's content: big diffs, to fill a slow client's socket.
const VIEWPORT_WITH_CONTENT: &str = "subscription($bbox: BboxInput!, $zoom: Float) { \
     viewport(bbox: $bbox, zoom: $zoom) { knoten { id title content } cursor resync heartbeat } }";

/// Connect, `connection_init`, wait for `connection_ack`, and subscribe with id "1".
async fn open_ws(server: &Weberei, recv_buffer: Option<u32>, query: &str, variables: Value) -> Ws {
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let stream = tokio::time::timeout(STEP, socket.connect(addr))
        .await
        .expect("TCP connect timed out")
        .expect("TCP connect");
    let (mut ws, _) = tokio::time::timeout(
        STEP,
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream)),
    )
    .await
    .expect("WebSocket handshake timed out")
    .expect("WebSocket handshake");
    send_json(&mut ws, json!({ "type": "connection_init", "payload": {} })).await;
    loop {
        let msg = tokio::time::timeout(STEP, next_json(&mut ws))
            .await
            .expect("no connection_ack in time")
            .expect("socket closed before connection_ack");
        match msg["type"].as_str() {
            Some("connection_ack") => break,
            Some("ping" | "pong") => continue,
            _ => panic!("expected connection_ack, got {msg}"),
        }
    }
    send_json(
        &mut ws,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await;
    ws
}

async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("sending on the WebSocket");
}

/// The next JSON text message (answering pings), or None when the socket closed.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    while let Some(frame) = ws.next().await {
        match frame.ok()? {
            Message::Text(t) => {
                return Some(
                    serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {t}")),
                );
            }
            Message::Ping(p) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

/// A subscriber whose reader task forwards every message of subscription "1" with the instant
/// it arrived.
struct Subscriber {
    rx: mpsc::UnboundedReceiver<(Instant, Value)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    async fn open(server: &Weberei, bbox: Value, zoom: Option<f64>, after: Option<&str>) -> Self {
        let ws = open_ws(
            server,
            None,
            VIEWPORT,
            json!({ "bbox": bbox, "zoom": zoom, "after": after }),
        )
        .await;
        Self::reading(ws)
    }

    fn reading(mut ws: Ws) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(msg) = next_json(&mut ws).await {
                let at = Instant::now();
                match msg["type"].as_str() {
                    Some("ping") => send_json(&mut ws, json!({ "type": "pong" })).await,
                    Some("pong") => {}
                    _ => {
                        if tx.send((at, msg)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Self { rx, reader }
    }

    /// The next viewport diff (fails on errors, `complete`, or silence for `timeout`).
    async fn next_diff(&mut self, timeout: Duration) -> Option<(Instant, Value)> {
        let (at, msg) = tokio::time::timeout(timeout, self.rx.recv()).await.ok()??;
        assert_eq!(msg["type"], "next", "unexpected message: {msg}");
        assert!(
            msg["payload"].get("errors").is_none(),
            "subscription error: {msg}"
        );
        Some((at, msg["payload"]["data"]["viewport"].clone()))
    }

    /// Diffs until `wanted` Knoten ids have been seen in total (or `timeout` passes).
    async fn diffs_until(&mut self, wanted: usize, timeout: Duration) -> Vec<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        let mut diffs = Vec::new();
        let mut seen = 0;
        while seen < wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(d) = self.next_diff(left).await else {
                break;
            };
            seen += d.1["knoten"].as_array().map_or(0, Vec::len);
            diffs.push(d);
        }
        diffs
    }

    /// The first message's error, for a subscription the server refused.
    async fn refusal(&mut self) -> Value {
        let (_, msg) = tokio::time::timeout(STEP, self.rx.recv())
            .await
            .expect("no answer to a refused subscription")
            .expect("socket closed without an answer");
        match msg["type"].as_str() {
            Some("error") => msg["payload"][0].clone(),
            Some("next") => msg["payload"]["errors"][0].clone(),
            _ => panic!("expected an error, got {msg}"),
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn knoten_ids(diffs: &[(Instant, Value)]) -> Vec<String> {
    diffs
        .iter()
        .flat_map(|(_, d)| d["knoten"].as_array().cloned().unwrap_or_default())
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// A point north of `weimar_box()` whose tile (resolution 8, what zoom 15 maps to there) also
/// holds points inside the box: its change reaches the tile's diff, and only the exact box
/// filter keeps it from the subscriber.
fn just_outside_in_a_shared_tile() -> (f64, f64) {
    let cell = |lat: f64, lng: f64| {
        h3o::LatLng::new(lat, lng)
            .unwrap()
            .to_cell(h3o::Resolution::Eight)
    };
    (-18..=18)
        .map(|i| LNG + 0.0005 * f64::from(i))
        .find(|lng| cell(LAT + 0.0099, *lng) == cell(LAT + 0.0102, *lng))
        .map(|lng| (LAT + 0.0102, lng))
        .expect("no tile across the box's northern edge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_in_one_tile_get_identical_diffs_and_a_client_outside_gets_nothing() {
    let server = Weberei::up(Options::default()).await;
    let mut a = Subscriber::open(&server, weimar_box(), Some(ZOOM), None).await;
    let mut b = Subscriber::open(&server, weimar_box(), Some(ZOOM), None).await;
    let mut outside = Subscriber::open(
        &server,
        bbox_around(FAR_LAT, FAR_LNG, 0.01),
        Some(ZOOM),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Ten inside, in pairs spread over several ticks (so several diffs to compare)...
    let mut inside = Vec::new();
    for pair in 0..5 {
        let ids = server
            .create_many(
                2,
                2,
                |i| (LAT + 0.001 * (2 * pair + i) as f64, LNG),
                json!({}),
            )
            .await;
        inside.extend(ids);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ...and one just outside the box, in a tile the box shares: the exact box filter drops it.
    let (near_lat, near_lng) = just_outside_in_a_shared_tile();
    server
        .create_knoten("knapp daneben", near_lat, near_lng, json!({}))
        .await;
    let diffs_a = a.diffs_until(inside.len(), STEP).await;
    let diffs_b = b.diffs_until(inside.len(), STEP).await;

    let ids: HashSet<_> = knoten_ids(&diffs_a).into_iter().collect();
    assert_eq!(ids, inside.iter().cloned().collect(), "{diffs_a:?}");
    assert_eq!(
        knoten_ids(&diffs_a).len(),
        inside.len(),
        "duplicates: {diffs_a:?}"
    );
    let json_a: Vec<&Value> = diffs_a.iter().map(|(_, d)| d).collect();
    let json_b: Vec<&Value> = diffs_b.iter().map(|(_, d)| d).collect();
    assert_eq!(
        json_a, json_b,
        "two subscribers of one tile got different diffs"
    );
    for d in &json_a {
        assert_eq!(d["resync"], false, "{d}");
        assert!(d["cursor"].as_str().is_some_and(|c| !c.is_empty()), "{d}");
    }
    println!("{} diffs, identical for both subscribers", json_a.len());
    assert!(
        json_a.len() >= 2,
        "expected the Knoten over several ticks: {json_a:?}"
    );
    // Nothing more: not the Knoten just outside the box, not a repeat.
    assert!(a.next_diff(Duration::from_secs(1)).await.is_none());
    assert!(
        outside.next_diff(Duration::from_secs(1)).await.is_none(),
        "a subscriber far away received a diff"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reconnect_with_the_last_cursor_gets_exactly_the_missed_knoten() {
    let server = Weberei::up(Options::default()).await;
    let mut sub = Subscriber::open(&server, weimar_box(), Some(ZOOM), None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = server.create_knoten("vorher", LAT, LNG, json!({})).await;
    let diffs = sub.diffs_until(1, STEP).await;
    assert_eq!(knoten_ids(&diffs), vec![first.clone()]);
    let cursor = diffs.last().unwrap().1["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(sub);

    // While the client is away: 50 inside its box, 10 elsewhere.
    let missed = server
        .create_many(
            50,
            8,
            |i| (LAT + 0.0001 * i as f64, LNG + 0.0001),
            json!({}),
        )
        .await;
    server
        .create_many(10, 5, |_| (FAR_LAT, FAR_LNG), json!({}))
        .await;

    let mut sub = Subscriber::open(&server, weimar_box(), Some(ZOOM), Some(&cursor)).await;
    let diffs = sub.diffs_until(missed.len(), STEP).await;
    let got = knoten_ids(&diffs);
    assert_eq!(
        got.len(),
        missed.len(),
        "expected exactly the 50 missed Knoten: {got:?}"
    );
    assert_eq!(
        got.iter().collect::<HashSet<_>>(),
        missed.iter().collect::<HashSet<_>>(),
        "the replay is not the missed Knoten"
    );
    assert!(diffs.iter().all(|(_, d)| d["resync"] == false), "{diffs:?}");
    // Nothing more arrives on its own (no duplicate, not the one before the cursor)...
    if let Some((_, d)) = sub.next_diff(Duration::from_secs(1)).await {
        panic!("after the replay, unexpected diff {d}");
    }
    // ...and the subscription is live after the replay: the next Knoten comes exactly once.
    let after = server.create_knoten("nachher", LAT, LNG, json!({})).await;
    let diffs = sub.diffs_until(1, STEP).await;
    assert_eq!(knoten_ids(&diffs), vec![after]);
    assert!(sub.next_diff(Duration::from_secs(1)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cursor_older_than_the_log_gets_resync() {
    let server = Weberei::up(Options::default()).await;
    let mut sub = Subscriber::open(&server, weimar_box(), Some(ZOOM), None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.create_knoten("vorher", LAT, LNG, json!({})).await;
    let diffs = sub.diffs_until(1, STEP).await;
    let cursor = diffs.last().unwrap().1["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(sub);
    server.create_many(3, 3, |_| (LAT, LNG), json!({})).await;

    // The log forgets what the client missed.
    let js = async_nats::jetstream::new(async_nats::connect(testkit::nats_url()).await.unwrap());
    let stream = js
        .get_stream(format!("wg_{}_social", server.ort))
        .await
        .unwrap();
    stream.purge().await.unwrap();

    let mut sub = Subscriber::open(&server, weimar_box(), Some(ZOOM), Some(&cursor)).await;
    let (_, diff) = sub.next_diff(STEP).await.expect("no resync diff");
    assert_eq!(diff["resync"], true, "{diff}");
    assert_eq!(diff["knoten"], json!([]), "{diff}");
    assert_ne!(diff["cursor"], json!(cursor), "{diff}");
    // Live afterwards.
    let id = server.create_knoten("danach", LAT, LNG, json!({})).await;
    assert_eq!(knoten_ids(&sub.diffs_until(1, STEP).await), vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_reads_gets_resync_while_a_fast_client_stays_live() {
    let server = Weberei::up(Options {
        tick_ms: Some(200),
        ws_queue: Some(4),
    })
    .await;
    let vars = json!({ "bbox": weimar_box(), "zoom": ZOOM });
    // A tiny receive buffer and nobody reading it: the server's socket fills up quickly.
    let mut slow = open_ws(&server, Some(4096), VIEWPORT_WITH_CONTENT, vars.clone()).await;
    let mut fast = Subscriber::reading(open_ws(&server, None, VIEWPORT_WITH_CONTENT, vars).await);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Big diffs (12 KiB of content per Knoten, ~10 MB in all: more than the kernel buffers
    // between the server and the slow client hold, 4 MB send buffer here), over many ticks.
    let content = json!({ "text": "w".repeat(12 * 1024) });
    let n = 800;
    let created_at = Instant::now();
    let fast_collector = tokio::spawn(async move {
        let mut arrivals: HashMap<String, Instant> = HashMap::new();
        let mut resyncs = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while arrivals.len() < n && Instant::now() < deadline {
            let Some((at, d)) = fast.next_diff(Duration::from_secs(20)).await else {
                break;
            };
            if d["resync"] == true {
                resyncs += 1;
            }
            for k in d["knoten"].as_array().unwrap() {
                assert!(
                    arrivals
                        .insert(k["id"].as_str().unwrap().to_owned(), at)
                        .is_none(),
                    "duplicate {k}"
                );
            }
        }
        (arrivals, resyncs)
    });
    let mut created: Vec<(String, Instant)> = Vec::new();
    for chunk in 0..(n / 20) {
        let ids = server
            .create_many(
                20,
                10,
                |i| (LAT + 0.00001 * (chunk * 20 + i) as f64, LNG),
                content.clone(),
            )
            .await;
        let now = Instant::now();
        created.extend(ids.into_iter().map(|id| (id, now)));
        // Spread over 30+ ticks, so that the slow client's queue of 4 overflows for sure.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("created {n} Knoten in {:?}", created_at.elapsed());
    let (arrivals, fast_resyncs) = fast_collector.await.unwrap();
    assert_eq!(fast_resyncs, 0, "the fast client had to resync");
    assert_eq!(arrivals.len(), n, "the fast client missed Knoten");
    let worst = created
        .iter()
        .map(|(id, done)| arrivals[id].saturating_duration_since(*done))
        .max()
        .unwrap();
    println!("fast client: every Knoten within {worst:?} of its createKnoten returning");
    assert!(
        worst < Duration::from_secs(3),
        "the fast client lagged {worst:?}"
    );

    // Now the slow client reads: among what its socket still held comes a resync notice, and
    // it misses Knoten (they were dropped instead of queued without bound).
    let mut seen = HashSet::new();
    let mut resync = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !resync && Instant::now() < deadline {
        let Some(msg) = tokio::time::timeout(Duration::from_secs(10), next_json(&mut slow))
            .await
            .ok()
            .flatten()
        else {
            break;
        };
        let diff = &msg["payload"]["data"]["viewport"];
        if diff["resync"] == true {
            resync = true;
        }
        for k in diff["knoten"].as_array().into_iter().flatten() {
            seen.insert(k["id"].as_str().unwrap().to_owned());
        }
    }
    println!(
        "slow client: {} Knoten before its resync notice",
        seen.len()
    );
    assert!(resync, "the slow client never got resync");
    assert!(
        seen.len() < n,
        "the slow client got everything; it was not slow enough"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mutation_on_one_api_process_reaches_a_subscriber_on_another() {
    let first = Weberei::up(Options::default()).await;
    let second = Weberei::api_beside(&first, Options::default()).await;
    let mut on_second = Subscriber::open(&second, weimar_box(), Some(ZOOM), None).await;
    let mut on_first = Subscriber::open(&first, weimar_box(), Some(ZOOM), None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let id = first
        .create_knoten("über den Bus", LAT, LNG, json!({}))
        .await;
    assert_eq!(
        knoten_ids(&on_second.diffs_until(1, STEP).await),
        vec![id.clone()]
    );
    assert_eq!(knoten_ids(&on_first.diffs_until(1, STEP).await), vec![id]);

    let id = second
        .create_knoten("und zurück", LAT, LNG, json!({}))
        .await;
    assert_eq!(
        knoten_ids(&on_first.diffs_until(1, STEP).await),
        vec![id.clone()]
    );
    assert_eq!(knoten_ids(&on_second.diffs_until(1, STEP).await), vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_viewport_arguments_are_refused_with_validation() {
    let server = Weberei::up(Options::default()).await;
    let inverted = json!({ "west": LNG + 0.01, "south": LAT, "east": LNG, "north": LAT + 0.01 });
    let huge = json!({ "west": -180.0, "south": -90.0, "east": 180.0, "north": 90.0 });
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "zoom 30",
            json!({ "bbox": weimar_box(), "zoom": 30.0 }),
            "zoom",
        ),
        (
            "zoom -1",
            json!({ "bbox": weimar_box(), "zoom": -1.0 }),
            "zoom",
        ),
        (
            "inverted box",
            json!({ "bbox": inverted, "zoom": ZOOM }),
            "bbox",
        ),
        (
            "the whole globe",
            json!({ "bbox": huge, "zoom": 2.0 }),
            "bbox",
        ),
        (
            "too many tiles (a 4 square-degree box at street zoom)",
            json!({ "bbox": bbox_around(LAT, LNG, 1.0), "zoom": 18.0 }),
            "zoom in",
        ),
        (
            "garbage cursor",
            json!({ "bbox": weimar_box(), "zoom": ZOOM, "after": "not-a-cursor!" }),
            "after",
        ),
        ("missing bbox", json!({ "zoom": ZOOM }), "bbox"),
    ];
    let mut failures = Vec::new();
    for (what, vars, needle) in cases {
        let ws = open_ws(&server, None, VIEWPORT, vars).await;
        let mut sub = Subscriber::reading(ws);
        let err = sub.refusal().await;
        let code = err["extensions"]["code"].as_str();
        let message = err["message"].as_str().unwrap_or_default();
        println!("{what}: {code:?} {message:?}");
        if code != Some("VALIDATION") || !message.contains(needle) {
            failures.push(format!(
                "{what}: expected VALIDATION naming `{needle}`, got {err}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Everything a map shows changes live: threads, messages, the design area and fading.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn threads_messages_and_design_changes_arrive_in_the_viewport() {
    let server = Weberei::up(Options {
        tick_ms: Some(200),
        ws_queue: None,
    })
    .await;
    let query = "subscription($bbox: BboxInput!, $zoom: Float) { viewport(bbox: $bbox, zoom: $zoom) { \
         knoten { id } knotenChanges { id kind designVersion content } \
         faeden { id knotenId kind faden { typ fromRolleId expiresAt } } \
         nachrichten { knotenId text authorId } cursor } }";
    let mut sub = Subscriber::reading(
        open_ws(
            &server,
            None,
            query,
            json!({ "bbox": weimar_box(), "zoom": ZOOM }),
        )
        .await,
    );
    let mut far = Subscriber::reading(
        open_ws(
            &server,
            None,
            query,
            json!({ "bbox": bbox_around(FAR_LAT, FAR_LNG, 0.01), "zoom": ZOOM }),
        )
        .await,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let k = server.create_knoten("Werkstatt", LAT, LNG, json!({})).await;
    let spun = server
        .graphql(
            "mutation($i: SpinFadenInput!) { spinFaden(input: $i) { faden { id } } }",
            json!({"i": {"idempotencyKey": "f1", "knotenId": k, "typ": "MITARBEIT"}}),
        )
        .await;
    assert!(spun.get("errors").is_none(), "{spun}");
    let wrote = server
        .graphql(
            "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
            json!({"i": {"idempotencyKey": "n1", "knotenId": k, "text": "Werkbank ist frei"}}),
        )
        .await;
    assert!(wrote.get("errors").is_none(), "{wrote}");
    let designed = server
        .graphql(
            "mutation($i: UpdateKnotenDesignInput!) { updateKnotenDesign(input: $i) { design { version } } }",
            json!({"i": {"idempotencyKey": "d1", "knotenId": k, "expectedVersion": 0, "content": {"plan": "Regal"}}}),
        )
        .await;
    assert!(designed.get("errors").is_none(), "{designed}");

    let (mut faden, mut text, mut design) = (None, None, None);
    let deadline = Instant::now() + STEP;
    while (faden.is_none() || text.is_none() || design.is_none()) && Instant::now() < deadline {
        let Some((_, d)) = sub.next_diff(STEP).await else {
            break;
        };
        let v = &d;
        if let Some(f) = v["faeden"].as_array().and_then(|a| a.first()) {
            faden = Some(f.clone());
        }
        if let Some(n) = v["nachrichten"].as_array().and_then(|a| a.first()) {
            text = Some(n.clone());
        }
        if let Some(c) = v["knotenChanges"].as_array().and_then(|a| a.first()) {
            design = Some(c.clone());
        }
    }
    let faden = faden.expect("the thread arrived");
    assert_eq!(faden["kind"], "SPUN");
    assert_eq!(faden["knotenId"], k.as_str());
    assert_eq!(faden["faden"]["typ"], "MITARBEIT");
    let text = text.expect("the message arrived");
    assert_eq!(
        text["text"], "Werkbank ist frei",
        "opened with the author's key"
    );
    let design = design.expect("the design change arrived");
    assert_eq!(design["kind"], "DESIGNED");
    assert_eq!(design["designVersion"], 1);
    assert_eq!(design["content"]["plan"], "Regal");
    assert!(
        far.next_diff(Duration::from_secs(1)).await.is_none(),
        "nothing for a box elsewhere"
    );
}
