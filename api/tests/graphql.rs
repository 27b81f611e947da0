#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The GraphQL surface in-process against real NATS, PostgreSQL and Redis.

mod common;

use std::time::Duration;

use common::{code, server};
use serde_json::{Value, json};

#[test]
fn the_committed_schema_is_the_served_schema() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql")).unwrap();
    assert!(
        committed == api::schema_sdl(),
        "schema.graphql differs from the served schema: run `cargo run -- export-schema` and commit it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_recorded_and_never_projected() {
    let s = server(None).await;
    let long = "x".repeat(10_000);
    let big = json!({"text": "y".repeat(20_000)});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"idempotencyKey": "k1", "title": "", "typ": "IDEEN", "lat": 50.0, "lng": 11.0}),
            "title",
        ),
        (
            json!({"idempotencyKey": "k2", "title": long, "typ": "IDEEN", "lat": 50.0, "lng": 11.0}),
            "title",
        ),
        (
            json!({"idempotencyKey": "k3", "title": "ok", "typ": "IDEEN", "lat": 91.0, "lng": 11.0}),
            "lat",
        ),
        (
            json!({"idempotencyKey": "k4", "title": "ok", "typ": "IDEEN", "lat": 50.0, "lng": -181.0}),
            "lng",
        ),
        (
            json!({"idempotencyKey": "k5", "title": "ok", "typ": "IDEEN", "lat": 50.0, "lng": 11.0, "content": big}),
            "content",
        ),
        (
            json!({"idempotencyKey": "has space", "title": "ok", "typ": "IDEEN", "lat": 50.0, "lng": 11.0}),
            "idempotencyKey",
        ),
        (
            json!({"idempotencyKey": "k7", "title": "ok", "typ": "FOO", "lat": 50.0, "lng": 11.0}),
            "typ",
        ),
        (
            json!({"title": "ok", "typ": "IDEEN", "lat": 50.0, "lng": 11.0}),
            "idempotencyKey",
        ),
    ];
    let n = cases.len() as u64;
    for (input, field) in cases {
        let resp = s
            .gql(
                "mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id } } }",
                json!({"i": input}),
            )
            .await;
        assert_eq!(code(&resp), "VALIDATION", "{resp}");
        let message = resp["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "message {message:?} should name {field}"
        );
        assert!(
            resp["data"].is_null() || resp["data"]["createKnoten"].is_null(),
            "{resp}"
        );
    }
    // The same refusals through an inline (non-variable) query, as GraphiQL users write them.
    let resp = s.gql(r#"mutation { createKnoten(input: {idempotencyKey: "k9", title: "x", typ: FOO, lat: 5, lng: 5}) { knoten { id } } }"#, json!({})).await;
    assert_eq!(code(&resp), "VALIDATION");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.rejected().await < n + 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "every refusal is recorded as EventRejected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.rejected().await, n + 1);
    // A good one afterwards is projected, the refused ones never were.
    let ok = s.create("good", "Tauschregal", 50.98, 11.32).await;
    assert!(ok["errors"].is_null(), "{ok}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.count("SELECT count(*) FROM knoten").await < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.count("SELECT count(*) FROM knoten").await, 1);
    assert_eq!(
        s.count("SELECT count(*) FROM events_archive WHERE type = 'KnotenGeknuepft'")
            .await,
        1
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_knoten_query_pages_through_a_box_and_refuses_bad_boxes() {
    let s = server(None).await;
    for i in 0..5 {
        let r = s
            .create(
                &format!("p{i}"),
                &format!("Knoten {i}"),
                50.90 + i as f64 * 0.01,
                11.30,
            )
            .await;
        assert!(r["errors"].is_null(), "{r}");
    }
    s.create("outside", "Anderswo", 48.1, 11.5).await;
    let q = "query($b: BboxInput!, $after: String) { knoten(bbox: $b, first: 2, after: $after) { edges { cursor node { title } } pageInfo { hasNextPage } } }";
    let bbox = json!({"west": 11.0, "south": 50.8, "east": 11.5, "north": 51.1});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.count("SELECT count(*) FROM knoten").await < 6 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut titles = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = s.gql(q, json!({"b": bbox, "after": after})).await;
        let conn = &r["data"]["knoten"];
        let edges = conn["edges"].as_array().unwrap();
        for e in edges {
            titles.push(e["node"]["title"].as_str().unwrap().to_owned());
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = edges.last().unwrap()["cursor"].clone();
    }
    assert_eq!(
        titles,
        (0..5).map(|i| format!("Knoten {i}")).collect::<Vec<_>>()
    );

    for (b, field) in [
        (
            json!({"west": 12.0, "south": 50.8, "east": 11.0, "north": 51.1}),
            "bbox",
        ),
        (
            json!({"west": 11.0, "south": 51.1, "east": 11.5, "north": 50.8}),
            "bbox",
        ),
        (
            json!({"west": -100.0, "south": -60.0, "east": 100.0, "north": 60.0}),
            "bbox",
        ),
        (
            json!({"west": 11.0, "south": 50.8, "east": 181.0, "north": 51.1}),
            "bbox.east",
        ),
    ] {
        let r = s.gql(q, json!({"b": b})).await;
        assert_eq!(code(&r), "VALIDATION", "{r}");
        assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
    }
    let r = s.gql(q, json!({"b": bbox, "after": "garbage"})).await;
    assert_eq!(code(&r), "VALIDATION");
    let r = s
        .gql(
            "query($b: BboxInput!) { knoten(bbox: $b, first: 0) { edges { cursor } } }",
            json!({"b": bbox}),
        )
        .await;
    assert_eq!(code(&r), "VALIDATION");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_is_served_at_the_root_with_its_index_for_client_routes() {
    let dir = std::env::temp_dir().join(format!("weberei-web-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("_app")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>Weberei</title>",
    )
    .unwrap();
    std::fs::write(dir.join("_app/start.js"), "export const x = 1;").unwrap();
    let s = common::server_with_config(
        None,
        api::ApiConfig {
            web_dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| http.get(format!("{}{path}", s.url)).send();
    let root = get("/").await.unwrap();
    assert_eq!(root.status(), 200);
    assert!(
        root.text()
            .await
            .unwrap()
            .contains("<title>Weberei</title>")
    );
    let asset = get("/_app/start.js").await.unwrap();
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    // A route of the single-page app gets its index; the API's own paths stay the API's.
    let route = get("/knoten/123").await.unwrap();
    assert_eq!(route.status(), 200);
    assert!(route.text().await.unwrap().contains("Weberei"));
    assert_eq!(
        get("/health/live").await.unwrap().text().await.unwrap(),
        "ok"
    );
    assert!(
        get("/graphiql")
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("graphiql")
    );
    s.finish().await;

    // Without a build, / leads to GraphiQL.
    let s = common::server_with_config(
        None,
        api::ApiConfig {
            web_dir: Some(dir.join("missing")),
            ..Default::default()
        },
    )
    .await;
    let root = http.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(root.status(), 307);
    assert_eq!(root.headers()["location"], "/graphiql");
    s.finish().await;
    std::fs::remove_dir_all(dir).unwrap();
}
