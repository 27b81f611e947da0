//! The HTTP surface: `/graphql` (POST, [`graphql`]; WebSocket at `/graphql/ws`, [`ws`]),
//! `/graphiql`, `/health/live`, `/health/ready` and `/metrics` ([`ops`]), and the built web
//! client at `/`.

mod graphql;
mod ops;
mod ws;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Extension, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::auth::ClientInfo;
use crate::state::AppState;

/// The whole HTTP application. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so that client addresses can be hashed.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route("/graphql", post(graphql::graphql))
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/graphiql", get(ops::graphiql))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics));
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

/// The salted hashes of the caller's address and user agent.
fn client_info(
    state: &AppState,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> ClientInfo {
    let ip = connect.map(|c| c.0.0.ip().to_string());
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    ClientInfo::new(&state.config.hash_salt, ip.as_deref(), ua)
}
