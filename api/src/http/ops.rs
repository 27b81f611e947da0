//! The operator's routes: GraphiQL, readiness and Prometheus metrics.

use async_graphql::http::GraphiQLSource;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use domain::StreamDomain;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::state::AppState;

pub(super) async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Weberei GraphiQL")
            .finish(),
    )
}

pub(super) async fn ready(State(state): State<AppState>) -> Response {
    let postgres = state
        .db
        .execute_unprepared("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let nats = state.bus.ready().await.map_err(|e| e.to_string());
    let redis = match state.bus.fallback() {
        Some(fb) => fb.ready().await.map_err(|e| e.to_string()),
        None => Err("not configured".to_owned()),
    };
    let all_ok = postgres.is_ok() && nats.is_ok() && redis.is_ok();
    let show = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.clone(),
    };
    let body = json!({
        "status": if all_ok { "ok" } else { "unavailable" },
        "postgres": show(&postgres),
        "nats": show(&nats),
        "redis": show(&redis),
    });
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled").into_response();
    };
    // Gauges read from the source at scrape time.
    let dead_subject = state.bus.config().ort.dead_subject();
    if let Ok(n) = state
        .bus
        .subject_messages(StreamDomain::Dlq, &dead_subject)
        .await
    {
        metrics::gauge!("wg_dlq_dead_messages").set(n as f64);
    }
    if let Some(fb) = state.bus.fallback()
        && let Ok(n) = fb.pending().await
    {
        metrics::gauge!("wg_fallback_pending").set(n as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
