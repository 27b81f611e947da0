//! `GET /graphql/ws`: GraphQL over WebSocket; the session token comes in `connection_init`.

use std::net::SocketAddr;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Extension;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

/// GraphQL over WebSocket (graphql-transport-ws and graphql-ws). The session token comes in the
/// `connection_init` payload; a wrong token refuses the connection.
pub(super) async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = super::client_info(&state, connect, &headers);
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
