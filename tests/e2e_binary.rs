#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end through the real `weberei` binary against the machine's shared NATS, PostgreSQL
//! and Redis: `createKnoten` over HTTP reaches a `viewport` subscriber over WebSocket (both
//! `graphql-transport-ws` and the legacy `graphql-ws`) within 2 s, a subscriber whose box does
//! not contain the point receives nothing, retries are idempotent, and bad input is refused
//! with VALIDATION and leaves nothing behind.
//!
//! Each test runs its own `weberei up` (`testkit::up`) with its own Ort (so its own JetStream
//! streams, subjects and Redis keys) and its own fresh database; the guard stops the binary
//! with SIGTERM and deletes the streams and the database, also when an assertion fails.
//! Mutations and queries go through the Rust client (`weberei-client`), except the malformed
//! input its types cannot express; the subscribers speak both WebSocket protocols by hand.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use testkit::up::{Options, Up};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use weberei_client::{
    Client, CreateKnoten, Knoten, KnotenTyp, Register, create_knoten, knoten, register,
};
const WS_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Weimar-ish: the point every test ties its Knoten at.
const LAT: f64 = 50.9795;
const LNG: f64 = 11.3235;

/// A small box around (lat, lng).
fn bbox_around(lat: f64, lng: f64) -> Value {
    json!({ "west": lng - 0.05, "south": lat - 0.05, "east": lng + 0.05, "north": lat + 0.05 })
}

// ---------------------------------------------------------------------------------------------
// The binary

/// A running `weberei up` (testkit::up: its own Ort and fresh database; dropping it sends
/// SIGTERM, waits, deletes the Ort's streams and drops the database, also when an assertion
/// fails) and a role registered at start through the Rust client.
struct Weberei {
    up: Up,
    http: reqwest::Client,
    /// The Rust client with the session of the role registered at start.
    client: Client,
    /// That session; every raw request carries it.
    token: String,
}

impl Weberei {
    /// Start `weberei up` with `WEBEREI_WS_TICK_MS` set to `tick_ms` (or unset: the default).
    async fn start(tick_ms: Option<u64>) -> Weberei {
        let started = Instant::now();
        let up = Up::start(
            env!("CARGO_BIN_EXE_weberei"),
            Options::default().ws_tick_ms(tick_ms),
        )
        .await;
        let addr = up.addr().to_owned();
        assert!(
            up.url_line()
                .contains(&format!("(GraphiQL: http://{addr}/graphiql)")),
            "URL line without the GraphiQL address: {}",
            up.url_line()
        );
        println!(
            "weberei up ({}) printed its URL after {:?}",
            up.ort(),
            started.elapsed()
        );
        let anonymous = Client::builder(up.url())
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let reg = anonymous
            .mutate::<Register>(register::Variables {
                input: register::RegisterInput {
                    idempotency_key: String::new(),
                    name: "Testerin".to_owned(),
                    lat: 50.98,
                    lng: 11.32,
                    device_label: None,
                },
            })
            .await
            .unwrap_or_else(|e| panic!("register failed: {e}"));
        let token = reg.register.token;
        Weberei {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            client: anonymous.with_token(token.clone()),
            token,
            up,
        }
    }

    fn ws_url(&self) -> String {
        self.up.ws_url()
    }

    /// POST a GraphQL request as raw JSON (for input the typed client cannot express);
    /// returns the JSON body (HTTP status must be 200).
    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/graphql", self.up.url()))
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

    /// `createKnoten` with `input` passed as a raw JSON variable; returns the whole body.
    async fn create_knoten_raw(&self, input: Value) -> Value {
        self.graphql(CREATE_KNOTEN, json!({ "input": input })).await
    }

    /// `createKnoten` through the client.
    async fn create_knoten(
        &self,
        input: create_knoten::CreateKnotenInput,
    ) -> create_knoten::ResponseData {
        self.client
            .mutate::<CreateKnoten>(create_knoten::Variables { input })
            .await
            .unwrap_or_else(|e| panic!("createKnoten failed: {e}"))
    }

    /// The ids of the Knoten the `knoten` query returns for the box around (lat, lng).
    async fn knoten_ids(&self, lat: f64, lng: f64) -> Vec<String> {
        let data = self
            .client
            .query::<Knoten>(knoten::Variables {
                bbox: knoten::BboxInput {
                    west: lng - 0.05,
                    south: lat - 0.05,
                    east: lng + 0.05,
                    north: lat + 0.05,
                },
                first: Some(500),
                after: None,
            })
            .await
            .unwrap_or_else(|e| panic!("knoten query failed: {e}"));
        data.knoten.edges.into_iter().map(|e| e.node.id).collect()
    }
}

const CREATE_KNOTEN: &str = "mutation($input: CreateKnotenInput!) { createKnoten(input: $input) { \
     knoten { id title lat lng h3 } event { id hash streamSequence } replayed } }";

/// The input of a Knoten at (LAT, LNG) for the typed client.
fn typed_input(key: &str, title: &str) -> create_knoten::CreateKnotenInput {
    create_knoten::CreateKnotenInput {
        idempotency_key: key.to_owned(),
        title: title.to_owned(),
        typ: KnotenTyp::Ideen,
        lat: LAT,
        lng: LNG,
        content: Some(json!({ "text": "end to end" })),
    }
}

const VIEWPORT: &str = "subscription($bbox: BboxInput!) { viewport(bbox: $bbox) { knoten { id title lat lng } cursor resync } }";

fn knoten_input(key: &str, title: &str) -> Value {
    json!({
        "idempotencyKey": key,
        "title": title,
        "typ": "IDEEN",
        "lat": LAT,
        "lng": LNG,
        "content": { "text": "end to end" },
    })
}

// ---------------------------------------------------------------------------------------------
// WebSocket subscribers

#[derive(Clone, Copy, Debug, PartialEq)]
enum Protocol {
    /// `graphql-transport-ws`: connection_init / subscribe / next.
    TransportWs,
    /// Legacy `graphql-ws` (subscriptions-transport-ws): connection_init / start / data.
    LegacyWs,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// One `viewport` subscription with id "1". A reader task forwards every data message
/// (`next` / `data`) with the instant it arrived; pings are answered, keep-alives ignored.
struct Subscriber {
    rx: mpsc::UnboundedReceiver<(Instant, Value)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    async fn open(server: &Weberei, protocol: Protocol, bbox: Value) -> Subscriber {
        let mut request = server.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(protocol.name()),
        );
        let (mut ws, response) =
            tokio::time::timeout(WS_STEP_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .expect("WebSocket connect timed out")
                .expect("WebSocket connect");
        let chosen = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            chosen.as_deref(),
            Some(protocol.name()),
            "server did not accept subprotocol {}",
            protocol.name()
        );

        send_json(&mut ws, json!({ "type": "connection_init", "payload": {} })).await;
        loop {
            let msg = tokio::time::timeout(WS_STEP_TIMEOUT, next_json(&mut ws))
                .await
                .expect("no connection_ack in time")
                .expect("socket closed before connection_ack");
            match msg["type"].as_str() {
                Some("connection_ack") => break,
                Some("ka" | "ping" | "pong") => continue,
                _ => panic!("expected connection_ack, got {msg}"),
            }
        }
        let start_type = match protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::LegacyWs => "start",
        };
        send_json(
            &mut ws,
            json!({
                "id": "1",
                "type": start_type,
                "payload": { "query": VIEWPORT, "variables": { "bbox": bbox } },
            }),
        )
        .await;

        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(frame) = ws.next().await {
                let at = Instant::now();
                let text = match frame {
                    Ok(Message::Text(t)) => t.to_string(),
                    Ok(Message::Ping(p)) => {
                        let _ = ws.send(Message::Pong(p)).await;
                        continue;
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                let msg: Value = match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(_) => {
                        let _ = tx.send((at, json!({ "type": "unparsable", "text": text })));
                        continue;
                    }
                };
                match msg["type"].as_str() {
                    Some("ping") => {
                        let _ = ws
                            .send(Message::text(json!({"type": "pong"}).to_string()))
                            .await;
                    }
                    Some("ka" | "pong") => {}
                    _ => {
                        if tx.send((at, msg)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Subscriber { rx, reader }
    }

    /// Wait up to `timeout` for a data message whose viewport diff lists `id`; returns when it
    /// arrived. Fails on `error` / `complete` messages.
    async fn wait_for_knoten(&mut self, id: &str, timeout: Duration) -> (Instant, Value) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let got = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let (at, msg) = match got {
                Ok(Some(m)) => m,
                Ok(None) => panic!("subscription ended before Knoten {id} arrived; saw {seen:?}"),
                Err(_) => panic!("Knoten {id} did not arrive within {timeout:?}; saw {seen:?}"),
            };
            match msg["type"].as_str() {
                Some("next" | "data") => {
                    assert!(
                        msg["payload"].get("errors").is_none(),
                        "subscription error: {msg}"
                    );
                    let diff = &msg["payload"]["data"]["viewport"];
                    let hit = diff["knoten"]
                        .as_array()
                        .is_some_and(|ks| ks.iter().any(|k| k["id"] == id));
                    if hit {
                        return (at, msg);
                    }
                    seen.push(msg);
                }
                _ => panic!("unexpected message on the subscription: {msg}; before it: {seen:?}"),
            }
        }
    }

    /// Assert that no data message arrives within `window`.
    async fn assert_silent_for(&mut self, window: Duration) {
        match tokio::time::timeout(window, self.rx.recv()).await {
            Err(_) => {}
            Ok(None) => panic!("subscription ended while it should have stayed quiet"),
            Ok(Some((_, msg))) => {
                panic!("a subscriber whose box does not contain the point received: {msg}")
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("sending on the WebSocket");
}

/// The next JSON text message (answering WebSocket pings), or None when the socket closed.
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
            Message::Close(c) => panic!("server closed the WebSocket: {c:?}"),
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_created_knoten_reaches_a_viewport_subscriber_within_two_seconds() {
    // The default tick (1.5 s): the 2 s budget must hold with it.
    let server = Weberei::start(None).await;
    let mut inside = Subscriber::open(&server, Protocol::TransportWs, bbox_around(LAT, LNG)).await;
    let mut elsewhere =
        Subscriber::open(&server, Protocol::TransportWs, bbox_around(48.1, 11.5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before_post = Instant::now();
    let id = server
        .create_knoten(typed_input("", "Lesecafé am Markt"))
        .await
        .create_knoten
        .knoten
        .id;
    let posted = before_post.elapsed();

    let (arrived, msg) = inside.wait_for_knoten(&id, Duration::from_secs(10)).await;
    let latency = arrived.duration_since(before_post);
    println!(
        "createKnoten -> viewport subscriber (default tick): {latency:?} (POST took {posted:?})"
    );
    let diff = &msg["payload"]["data"]["viewport"];
    let k = diff["knoten"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert_eq!(k["title"], "Lesecafé am Markt");
    assert!((k["lat"].as_f64().unwrap() - LAT).abs() < 1e-9, "{k}");
    assert!((k["lng"].as_f64().unwrap() - LNG).abs() < 1e-9, "{k}");
    assert!(
        diff["cursor"].as_str().is_some_and(|c| !c.is_empty()),
        "{diff}"
    );
    assert_eq!(diff["resync"], false, "{diff}");
    assert!(
        latency < Duration::from_secs(2),
        "the Knoten reached the subscriber after {latency:?}, budget 2 s"
    );

    // The worst phase: tie a second Knoten right after a diff went out, so that it has to wait
    // for (almost) a whole tick. The budget must hold for it too.
    let before_post = Instant::now();
    let second = server
        .create_knoten(typed_input("", "Nähstube"))
        .await
        .create_knoten
        .knoten
        .id;
    let (arrived, _) = inside
        .wait_for_knoten(&second, Duration::from_secs(10))
        .await;
    let latency = arrived.duration_since(before_post);
    println!("createKnoten right after a diff -> viewport subscriber (default tick): {latency:?}");
    assert!(
        latency < Duration::from_secs(2),
        "the second Knoten reached the subscriber after {latency:?}, budget 2 s"
    );

    elsewhere.assert_silent_for(Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_legacy_graphql_ws_protocol_also_delivers() {
    let server = Weberei::start(Some(200)).await;
    let mut sub = Subscriber::open(&server, Protocol::LegacyWs, bbox_around(LAT, LNG)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before_post = Instant::now();
    let id = server
        .create_knoten(typed_input("", "Tauschregal"))
        .await
        .create_knoten
        .knoten
        .id;
    let (arrived, msg) = sub.wait_for_knoten(&id, Duration::from_secs(10)).await;
    println!(
        "createKnoten -> graphql-ws subscriber (tick 200 ms): {:?}",
        arrived.duration_since(before_post)
    );
    assert_eq!(msg["type"], "data", "{msg}");
    assert_eq!(msg["id"], "1", "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retrying_a_create_with_the_same_key_is_idempotent_end_to_end() {
    let server = Weberei::start(Some(200)).await;
    let input = typed_input(&format!("e2e-{}", uuid::Uuid::new_v4()), "Werkzeugverleih");

    let first = server.create_knoten(input.clone()).await;
    let id = first.create_knoten.knoten.id.clone();
    let second = server.create_knoten(input).await;
    assert_eq!(
        second.create_knoten.knoten.id, id,
        "a retry made a second Knoten: {second:?}"
    );

    let (a, b) = (&first.create_knoten, &second.create_knoten);
    assert!(!a.replayed, "{first:?}");
    assert!(b.replayed, "{second:?}");
    assert_eq!(a.event.hash.len(), 64, "{first:?}");
    assert_eq!(a.event.hash, b.event.hash, "{first:?} vs {second:?}");
    assert_eq!(a.event.id, b.event.id, "{first:?} vs {second:?}");

    // Projected exactly once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ids = loop {
        let ids = server.knoten_ids(LAT, LNG).await;
        if !ids.is_empty() || Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ids, vec![id.clone()], "expected exactly one Knoten {id}");
    // And it stays one (a late duplicate projection would show up here).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.knoten_ids(LAT, LNG).await, vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_with_validation_codes_end_to_end() {
    let server = Weberei::start(Some(200)).await;
    let key = || uuid::Uuid::new_v4().to_string();

    let mut too_far_north = knoten_input(&key(), "Zu weit im Norden");
    too_far_north["lat"] = json!(91.0);
    let mut unknown_typ = knoten_input(&key(), "Unbekannter Typ");
    unknown_typ["typ"] = json!("FOO");
    let mut big_content = knoten_input(&key(), "Zu viel Inhalt");
    big_content["content"] = json!({ "text": "x".repeat(20 * 1024) });
    let mut no_key = knoten_input(&key(), "Ohne Schlüssel");
    no_key.as_object_mut().unwrap().remove("idempotencyKey");

    let cases = [
        ("empty title", knoten_input(&key(), ""), "title"),
        (
            "10 000-char title",
            knoten_input(&key(), &"t".repeat(10_000)),
            "title",
        ),
        ("lat 91", too_far_north, "lat"),
        ("typ FOO", unknown_typ, "typ"),
        ("20 KB content", big_content, "content"),
        ("no idempotencyKey", no_key, "idempotencyKey"),
    ];
    let mut failures = Vec::new();
    for (what, input, field) in cases {
        let body = server.create_knoten_raw(input).await;
        let err = &body["errors"][0];
        let code = err["extensions"]["code"].as_str();
        let message = err["message"].as_str().unwrap_or_default();
        println!("{what}: code {code:?}, message {message:?}");
        if code != Some("VALIDATION") || !message.contains(field) {
            failures.push(format!(
                "{what}: expected code VALIDATION and a message naming `{field}`, got {body}"
            ));
        }
        if !body["data"]["createKnoten"].is_null() {
            failures.push(format!("{what}: createKnoten returned data: {body}"));
        }
    }

    // Nothing projected (give the projection worker time to do something wrong).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids = server.knoten_ids(LAT, LNG).await;
    if !ids.is_empty() {
        failures.push(format!("refused input was projected: {ids:?}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
