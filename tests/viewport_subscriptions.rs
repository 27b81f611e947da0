#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Viewport subscriptions through the real `weberei` binary over `graphql-transport-ws`
//! (DESIGN.md §5): live diffs grouped by tile and filtered by the exact box, a mutation on one
//! API process reaching a subscriber on another, every kind of change, and refused arguments.
//! Cursors, replay and resync: `viewport_resume.rs`; the harness: `common/viewport.rs`.
//!
//! Memory per subscription and delivery latency are measured by the benchmark harness
//! (`weberei-bench fanout`, BENCHMARKS.md), not here.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::viewport::*;

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
