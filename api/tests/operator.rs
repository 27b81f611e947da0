#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Health and metrics. Its own test binary: the Prometheus recorder is process-global.

mod common;

use std::time::Duration;

use common::server;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_report_what_an_operator_needs() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let s = server(Some(handle)).await;
    let live = s
        .http
        .get(format!("{}/health/live", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready: Value = s
        .http
        .get(format!("{}/health/ready", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready,
        json!({"status": "ok", "postgres": "ok", "nats": "ok", "redis": "ok"})
    );
    let r = s.create("m1", "Metrik", 50.0, 11.0).await;
    assert!(r["errors"].is_null(), "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = s
            .http
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains(r#"wg_events_total{type="KnotenGeknuepft"} 1"#) {
            assert!(text.contains("wg_dlq_dead_messages 0"), "{text}");
            assert!(
                text.contains("wg_projection_lag_seconds_bucket")
                    || text.contains("wg_projection_lag_seconds"),
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never showed the event:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = s
        .http
        .get(format!("{}/graphiql", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/graphql/ws"),
        "GraphiQL knows the subscription endpoint"
    );
    s.finish().await;
}
