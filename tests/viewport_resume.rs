#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Viewport cursors through the real `weberei` binary (DESIGN.md §5): a reconnect with the last
//! cursor replays exactly what was missed and goes live, a cursor older than the log gets
//! `resync`, and a client that never reads gets `resync` while a fast one stays live. Live
//! diffs: `viewport_subscriptions.rs`; the harness: `common/viewport.rs`.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;

use common::viewport::*;

/// The same with each Knoten's content: big diffs, to fill a slow client's socket.
const VIEWPORT_WITH_CONTENT: &str = "subscription($bbox: BboxInput!, $zoom: Float) { \
     viewport(bbox: $bbox, zoom: $zoom) { knoten { id title content } cursor resync heartbeat } }";

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
