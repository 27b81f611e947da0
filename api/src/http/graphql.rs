//! `POST /graphql`: the bearer token (if any) becomes the request's caller.

use std::net::SocketAddr;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) async fn graphql(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> GraphQLResponse {
    let client = super::client_info(&state, connect, &headers);
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
