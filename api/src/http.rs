//! The HTTP surface: `/graphql` (POST; WebSocket at `/graphql/ws`), `/graphiql`,
//! `/health/live`, `/health/ready`, `/metrics`, and the built web client at `/`.

use std::net::SocketAddr;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use domain::StreamDomain;
use sea_orm::ConnectionTrait;
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::auth;
use crate::auth::ClientInfo;
use crate::error::ApiError;
use crate::state::AppState;

/// The whole HTTP application. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so that client addresses can be hashed.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route("/graphql", post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphiql", get(graphiql))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics));
    let router = match web_client_dir(&state) {
        // The web client is a single-page app: paths it routes itself get its index.html.
        Some(dir) => router
            .fallback_service(ServeDir::new(&dir).fallback(ServeFile::new(dir.join("index.html")))),
        None => router.route("/", get(|| async { Redirect::temporary("/graphiql") })),
    };
    router
        .layer(RequestBodyLimitLayer::new(state.config.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The web client's directory if it holds a build (an `index.html`).
fn web_client_dir(state: &AppState) -> Option<std::path::PathBuf> {
    let dir = state.config.web_dir.as_ref()?;
    if dir.join("index.html").is_file() {
        tracing::info!(dir = %dir.display(), "serving the web client at /");
        Some(dir.clone())
    } else {
        tracing::info!(
            dir = %dir.display(),
            "no web client build (index.html) there: / redirects to /graphiql"
        );
        None
    }
}

async fn graphql(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> GraphQLResponse {
    let ip = connect.map(|c| c.0.0.ip().to_string());
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let client = ClientInfo::new(&state.config.hash_salt, ip.as_deref(), ua);
    let mut req = req.into_inner().data(client);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(token) = auth::bearer(auth) {
        match auth::authenticate(&state.db, token).await {
            Ok(Ok(caller)) => req = req.data(caller),
            Ok(Err(invalid)) => req = req.data(invalid),
            Err(e) => {
                let err = async_graphql::Error::from(ApiError::unavailable(e));
                return async_graphql::Response::from_errors(vec![
                    err.into_server_error(Default::default()),
                ])
                .into();
            }
        }
    }
    state.schema.execute(req).await.into()
}

/// GraphQL over WebSocket (graphql-transport-ws and graphql-ws). The session token comes in the
/// `connection_init` payload; a wrong token refuses the connection.
async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ip = connect.map(|c| c.0.0.ip().to_string());
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let client = ClientInfo::new(&state.config.hash_salt, ip.as_deref(), ua);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Small buffers: most connections are idle viewports (measured: ~155 kB per connection
        // with the defaults, ~32 kB with these); messages still grow them as needed.
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |stream| {
            let db = state.db.clone();
            GraphQLWebSocket::new(stream, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let mut data = async_graphql::Data::default();
                    data.insert(client);
                    if let Some(token) = auth::token_from_init(&payload) {
                        match auth::authenticate(&db, &token).await {
                            Ok(Ok(caller)) => data.insert(caller),
                            Ok(Err(_)) => {
                                return Err(async_graphql::Error::new(
                                    "the session token is unknown or revoked: log in again",
                                ));
                            }
                            Err(e) => return Err(ApiError::unavailable(e).into()),
                        }
                    }
                    Ok(data)
                })
                .serve()
        })
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Weberei GraphiQL")
            .finish(),
    )
}

async fn ready(State(state): State<AppState>) -> Response {
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

async fn metrics(State(state): State<AppState>) -> Response {
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
