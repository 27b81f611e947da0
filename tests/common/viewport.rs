//! The harness of the viewport tests (`viewport_subscriptions.rs`, `viewport_resume.rs`): a
//! running `weberei up` or `weberei api` with a registered role, and raw graphql-transport-ws
//! subscribers of `viewport`.
//!
//! Each test runs its own `weberei up` (and, for the two-process test, a `weberei api` beside
//! it) with its own Ort and a fresh database, against the machine's shared NATS, PostgreSQL and
//! Redis; the guard stops the processes with SIGTERM and deletes the Ort's streams and the
//! database, also when an assertion fails.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub const STEP: Duration = Duration::from_secs(10);

/// Weimar: inside the subscribers' box.
pub const LAT: f64 = 50.9795;
pub const LNG: f64 = 11.3235;
/// Munich: far outside it.
pub const FAR_LAT: f64 = 48.137;
pub const FAR_LNG: f64 = 11.575;
/// A street-level map around Weimar's market (zoom 15 → tiles of resolution 8).
pub const ZOOM: f64 = 15.0;

pub fn bbox_around(lat: f64, lng: f64, half: f64) -> Value {
    json!({ "west": lng - half, "south": lat - half, "east": lng + half, "north": lat + half })
}

pub fn weimar_box() -> Value {
    bbox_around(LAT, LNG, 0.01)
}

// ---------------------------------------------------------------------------------------------
// The binary

#[derive(Clone, Default)]
pub struct Options {
    pub tick_ms: Option<u64>,
    pub ws_queue: Option<usize>,
}

impl Options {
    pub fn up(&self) -> testkit::up::Options {
        let mut o = testkit::up::Options::default().ws_tick_ms(Some(self.tick_ms.unwrap_or(200)));
        o.ws_queue = Some(self.ws_queue.unwrap_or(64));
        o
    }
}

/// A running `weberei up` or `weberei api` (`testkit::up`: dropping it sends SIGTERM and
/// waits; the one that owns the Ort also deletes its streams and drops the database), with a
/// registered role for the mutations.
pub struct Weberei {
    pub up: testkit::up::Up,
    pub url: String,
    pub ort: String,
    pub http: reqwest::Client,
    /// Session of a role registered at start (mutations need one); subscriptions stay
    /// anonymous, as a visitor's map does.
    pub token: String,
}

impl Weberei {
    /// `weberei up` with a fresh Ort and database (migrates, runs the API and the workers).
    pub async fn up(opts: Options) -> Weberei {
        Self::with(testkit::up::Up::start(env!("CARGO_BIN_EXE_weberei"), opts.up()).await).await
    }

    /// A second API process (`weberei api`) on the same Ort, database and servers as `other`.
    pub async fn api_beside(other: &Weberei, opts: Options) -> Weberei {
        Self::with(other.up.beside(opts.up().subcommand("api")).await).await
    }

    pub async fn with(up: testkit::up::Up) -> Weberei {
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

    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.url.replacen("http://", "ws://", 1))
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
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
    pub async fn create_knoten(&self, title: &str, lat: f64, lng: f64, content: Value) -> String {
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
    pub async fn create_many(
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

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const VIEWPORT: &str = "subscription($bbox: BboxInput!, $zoom: Float, $after: String) { \
     viewport(bbox: $bbox, zoom: $zoom, after: $after) { knoten { id title lat lng } cursor resync heartbeat } }";

/// Connect, `connection_init`, wait for `connection_ack`, and subscribe with id "1".
pub async fn open_ws(
    server: &Weberei,
    recv_buffer: Option<u32>,
    query: &str,
    variables: Value,
) -> Ws {
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

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("sending on the WebSocket");
}

/// The next JSON text message (answering pings), or None when the socket closed.
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
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
pub struct Subscriber {
    rx: mpsc::UnboundedReceiver<(Instant, Value)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    pub async fn open(
        server: &Weberei,
        bbox: Value,
        zoom: Option<f64>,
        after: Option<&str>,
    ) -> Self {
        let ws = open_ws(
            server,
            None,
            VIEWPORT,
            json!({ "bbox": bbox, "zoom": zoom, "after": after }),
        )
        .await;
        Self::reading(ws)
    }

    pub fn reading(mut ws: Ws) -> Self {
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
    pub async fn next_diff(&mut self, timeout: Duration) -> Option<(Instant, Value)> {
        let (at, msg) = tokio::time::timeout(timeout, self.rx.recv()).await.ok()??;
        assert_eq!(msg["type"], "next", "unexpected message: {msg}");
        assert!(
            msg["payload"].get("errors").is_none(),
            "subscription error: {msg}"
        );
        Some((at, msg["payload"]["data"]["viewport"].clone()))
    }

    /// Diffs until `wanted` Knoten ids have been seen in total (or `timeout` passes).
    pub async fn diffs_until(&mut self, wanted: usize, timeout: Duration) -> Vec<(Instant, Value)> {
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
    pub async fn refusal(&mut self) -> Value {
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

pub fn knoten_ids(diffs: &[(Instant, Value)]) -> Vec<String> {
    diffs
        .iter()
        .flat_map(|(_, d)| d["knoten"].as_array().cloned().unwrap_or_default())
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}
