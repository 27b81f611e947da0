#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat live over graphql-transport-ws against real NATS, PostgreSQL and Redis: the
//! `webrat` subscription with its cursor replay, and moderation taking hidden content off the
//! live map and the Webrat (with the jobs worker recording it on the social stream).

mod common;

use std::time::Duration;

use common::Server;
use common::governance::*;
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Subscriptions over graphql-transport-ws

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(s: &Server, query: &str, variables: Value) -> Ws {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let url = format!("{}/graphql/ws", s.url.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| tokio_tungstenite::tungstenite::Message::text(v.to_string());
    ws.send(send(json!({"type": "connection_init", "payload": {}})))
        .await
        .unwrap();
    let ack = next_message(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.send(send(json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}})))
        .await
        .unwrap();
    ws
}

async fn next_message(ws: &mut Ws) -> Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(t) = frame {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// The next `next` payload of subscription "1" that satisfies `want`.
async fn next_data(ws: &mut Ws, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let m = next_message(ws).await;
        assert_ne!(m["type"], "error", "{m}");
        if m["type"] == "next" && want(&m["payload"]["data"]) {
            return m["payload"]["data"].clone();
        }
    }
}

const WEBRAT: &str = "subscription($b: BboxInput!, $after: String) { webrat(bbox: $b, zoom: 13, after: $after) { changes { antragId kind weberei antrag { title } stimme { vote rolleId } objection { reason } } cursor resync heartbeat } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrat_subscribers_see_changes_in_their_viewport_and_replay_after_a_cursor() {
    let s = server().await;
    let (a, a_id) = verified_role(&s, "Anna").await;
    let mut here = subscribe(&s, WEBRAT, json!({"b": bbox(LAT, LNG)})).await;
    let mut elsewhere = subscribe(&s, WEBRAT, json!({"b": bbox(48.14, 11.58)})).await;
    // Let the subscriptions register before the first change.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = filed(&s, &a, "a1", "Mehr Bänke", &in_secs(3600)).await;
    let filed_diff = next_data(&mut here, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    let change = &filed_diff["webrat"]["changes"][0];
    assert_eq!(change["kind"], "FILED", "{filed_diff}");
    assert_eq!(change["antragId"], id.as_str());
    assert_eq!(change["antrag"]["title"], "Mehr Bänke");
    let cursor = filed_diff["webrat"]["cursor"].as_str().unwrap().to_owned();

    let mut one = subscribe(
        &s,
        "subscription($id: ID!) { antragChanged(id: $id) { antragId kind stimme { vote } objection { reason } } }",
        json!({"id": id}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    vote(&s, &a, "v1", &id, "ENTHALTUNG").await;
    let voted = next_data(&mut one, |_| true).await;
    assert_eq!(voted["antragChanged"]["kind"], "VOTE", "{voted}");
    assert_eq!(voted["antragChanged"]["stimme"]["vote"], "ENTHALTUNG");
    let live_vote = next_data(&mut here, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    assert_eq!(live_vote["webrat"]["changes"][0]["kind"], "VOTE");
    assert_eq!(
        live_vote["webrat"]["changes"][0]["stimme"]["rolleId"],
        a_id.as_str()
    );

    // A client coming back with the cursor of the FILED diff gets the vote it missed.
    let mut back = subscribe(&s, WEBRAT, json!({"b": bbox(LAT, LNG), "after": cursor})).await;
    let replayed = next_data(&mut back, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    let kinds: Vec<&Value> = replayed["webrat"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["kind"])
        .collect();
    assert_eq!(kinds, vec!["VOTE"], "{replayed}");

    // Nothing of this reached the subscriber of another town.
    let quiet = tokio::time::timeout(Duration::from_millis(800), async {
        next_data(&mut elsewhere, |d| {
            d["webrat"]["changes"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .await
    })
    .await;
    assert!(
        quiet.is_err(),
        "a change outside the box arrived: {quiet:?}"
    );

    let unknown = subscribe(
        &s,
        "subscription($id: ID!) { antragChanged(id: $id) { kind } }",
        json!({"id": Uuid::new_v4()}),
    )
    .await;
    let mut unknown = unknown;
    let err = next_message(&mut unknown).await;
    assert_eq!(
        err["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{err}"
    );
    s.finish().await;
}

const VIEWPORT: &str = "subscription($b: BboxInput!, $after: String) { viewport(bbox: $b, zoom: 13, after: $after) { knoten { id } knotenChanges { id kind } nachrichten { id } hiddenNachrichten { id knotenId } cursor resync } }";

/// Ids of `knotenChanges` of `kind` in a viewport diff.
fn changed(d: &Value, kind: &str) -> Vec<String> {
    d["viewport"]["knotenChanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn hidden_messages(d: &Value) -> Vec<String> {
    d["viewport"]["hiddenNachrichten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_content_leaves_the_live_map_and_the_webrat_once_and_a_replay_carries_it() {
    let s = server().await;
    let author = s.token.clone();
    rolle_id(&s, &author).await;
    let (moderator, _) = verified_role(&s, "Mona").await;
    let (filer, _) = verified_role(&s, "Fritz").await;
    let mut map = subscribe(&s, VIEWPORT, json!({"b": bbox(LAT, LNG)})).await;
    let mut panel = subscribe(&s, WEBRAT, json!({"b": bbox(LAT, LNG)})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id_of = |r: Value| {
        r["data"]["createKnoten"]["knoten"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned()
    };
    let spam = id_of(s.create("k1", "Werbung", LAT, LNG).await);
    let room = id_of(s.create("k2", "Tauschregal", LAT + 0.01, LNG).await);
    let written = s
        .gql(
            "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
            json!({"i": {"idempotencyKey": "n1", "knotenId": room, "text": "Billig kaufen!"}}),
        )
        .await;
    let message = written["data"]["writeNachricht"]["nachricht"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{written}"))
        .to_owned();
    // A cursor from before any moderation: everything after it is replayed below.
    let before = next_data(&mut map, |d| {
        d["viewport"]["nachrichten"]
            .as_array()
            .is_some_and(|n| !n.is_empty())
    })
    .await["viewport"]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let antrag_id = filed(&s, &filer, "a1", "Werbetafeln", &in_secs(3600)).await;

    let mut flags = Vec::new();
    for (key, kind, target) in [
        ("f1", "KNOTEN", &spam),
        ("f2", "NACHRICHT", &message),
        ("f3", "ANTRAG", &antrag_id),
    ] {
        let raised = raise(&s, &author, key, kind, target).await;
        flags.push(
            raised["data"]["raiseFlag"]["flag"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{raised}"))
                .to_owned(),
        );
    }
    until("the flags to be projected", || async {
        s.gql(
            "{ moderationThreads(open: true) { edges { node { targetId } } } }",
            json!({}),
        )
        .await["data"]["moderationThreads"]["edges"]
            .as_array()
            .is_some_and(|e| e.len() == 3)
    })
    .await;
    for (i, flag) in flags.iter().enumerate() {
        let r = resolve(&s, &moderator, &format!("r{i}"), flag, "HIDDEN").await;
        assert_eq!(r["data"]["resolveFlag"]["flag"]["outcome"], "HIDDEN", "{r}");
    }

    // The Webrat follows the governance stream, where the decision is: HIDDEN right away.
    let hidden = next_data(&mut panel, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["kind"] == "HIDDEN"))
    })
    .await;
    let change = hidden["webrat"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "HIDDEN")
        .unwrap()
        .clone();
    assert_eq!(change["antragId"], antrag_id.as_str(), "{hidden}");

    // The map follows the social stream: the jobs worker records the decision there.
    let jobs = workers::JobsWorker::new(
        s.bus.clone(),
        s.db.conn.clone(),
        std::sync::Arc::new(workers::SystemClock),
        workers::JobsConfig::default(),
    );
    let mut recorded = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while s
        .count("SELECT count(*) FROM flags WHERE map_hidden_at IS NOT NULL")
        .await
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "map decisions not recorded"
        );
        recorded += jobs.scan_once().await.unwrap().hidden_on_map;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, 2, "one InhaltVerborgen per flag on map content");
    assert_eq!(
        jobs.scan_once().await.unwrap().hidden_on_map,
        0,
        "recorded once"
    );
    let (mut knoten_hidden, mut messages_hidden) = (Vec::new(), Vec::new());
    while knoten_hidden.is_empty() || messages_hidden.is_empty() {
        let d = next_data(&mut map, |_| true).await;
        knoten_hidden.extend(changed(&d, "HIDDEN"));
        messages_hidden.extend(hidden_messages(&d));
    }
    assert_eq!(knoten_hidden, vec![spam.clone()]);
    assert_eq!(messages_hidden, vec![message.clone()]);

    // A client that was away since `before` gets the same in its replay.
    let mut back = subscribe(&s, VIEWPORT, json!({"b": bbox(LAT, LNG), "after": before})).await;
    let (mut knoten_hidden, mut messages_hidden) = (Vec::new(), Vec::new());
    while knoten_hidden.is_empty() || messages_hidden.is_empty() {
        let d = next_data(&mut back, |_| true).await;
        assert_eq!(d["viewport"]["resync"], false, "{d}");
        knoten_hidden.extend(changed(&d, "HIDDEN"));
        messages_hidden.extend(hidden_messages(&d));
    }
    assert_eq!(knoten_hidden, vec![spam]);
    assert_eq!(messages_hidden, vec![message]);
    let room_still_there = s
        .gql(
            "query($k: ID!) { room(knotenId: $k) { thread { edges { node { id } } } } }",
            json!({"k": room}),
        )
        .await;
    assert_eq!(
        room_still_there["data"]["room"]["thread"]["edges"],
        json!([]),
        "the room stays, without the hidden message: {room_still_there}"
    );
    s.finish().await;
}
