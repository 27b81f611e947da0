//! Queries and mutations over HTTP (`POST /graphql`, `Authorization: Bearer <token>`).

use std::sync::Arc;
use std::time::Duration;

use graphql_client::GraphQLQuery;
use serde_json::Value;

use crate::error::Error;
use crate::operation::{
    MutationOperation, QueryOperation, SubscriptionOperation, ensure_idempotency_key,
};
use crate::ws::{ReconnectPolicy, Subscription, WsConfig};

/// The longest HTTP answer body kept in an [`Error::Http`].
const MAX_ERROR_BODY: usize = 2000;

/// A Weberei API client: one base URL, optionally a session token. Cheap to clone (clones
/// share the connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
    ws: Arc<WsConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    timeout: Duration,
    reconnect: ReconnectPolicy,
    user_agent: String,
}

impl ClientBuilder {
    /// Session token sent with every request and in every WebSocket `connection_init`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Timeout of one HTTP request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How subscriptions reconnect (default: [`ReconnectPolicy::default`]).
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// The `User-Agent` header (default `weberei-client-rust/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = normalize_base_url(&self.base_url)?;
        let ws_url = ws_url_for(&base_url);
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(self.user_agent.clone())
            .build()
            .map_err(|e| Error::transport("building the HTTP client", e))?;
        Ok(Client {
            http,
            ws: Arc::new(WsConfig::new(ws_url, self.reconnect, self.user_agent)),
            base_url,
            token: self.token,
        })
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`), without a
    /// session.
    pub fn new(base_url: &str) -> Result<Client, Error> {
        Client::builder(base_url).build()
    }

    /// Settings for a client of the server at `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            token: None,
            timeout: Duration::from_secs(30),
            reconnect: ReconnectPolicy::default(),
            user_agent: format!("weberei-client-rust/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The same client (and connection pool) with the session `token`.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same client without a session.
    pub fn without_token(&self) -> Client {
        Client {
            token: None,
            ..self.clone()
        }
    }

    /// The session token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The server's base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `<base>/graphql`.
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base_url)
    }

    /// `ws(s)://<host>/graphql/ws`.
    pub fn ws_url(&self) -> &str {
        &self.ws.url
    }

    /// Run a query.
    pub async fn query<Q: QueryOperation>(
        &self,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, Error> {
        self.execute::<Q>(variables).await
    }

    /// Run a mutation. An empty `idempotencyKey` is filled with a fresh UUID v4; to retry
    /// an action safely, set the key yourself (e.g. with
    /// [`crate::ensure_idempotency_key`]) and send the same variables again.
    pub async fn mutate<M: MutationOperation>(
        &self,
        mut variables: M::Variables,
    ) -> Result<M::ResponseData, Error> {
        ensure_idempotency_key::<M>(&mut variables);
        self.execute::<M>(variables).await
    }

    /// Send any operation over HTTP as it is (no idempotency key is filled in).
    pub async fn execute<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, Error> {
        let body = Q::build_query(variables);
        let mut request = self.http.post(self.graphql_url()).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::transport(format!("POST {}", self.graphql_url()), e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            Error::transport(format!("reading the answer to {}", body.operation_name), e)
        })?;
        decode_response::<Q>(body.operation_name, status.as_u16(), &text)
    }

    /// Subscribe over WebSocket (graphql-transport-ws). Returns once the server accepted
    /// the connection and the subscription was sent; the stream then yields every diff, and
    /// after a dropped connection reconnects (exponential backoff with jitter) and resumes
    /// after the last diff's `cursor`, so that nothing is missed or repeated.
    pub async fn subscribe<S: SubscriptionOperation>(
        &self,
        variables: S::Variables,
    ) -> Result<Subscription<S>, Error>
    where
        S::Variables: Send + 'static,
        S::ResponseData: Send + 'static,
    {
        Subscription::start(self.ws.clone(), self.token.clone(), variables).await
    }
}

/// Turn an HTTP answer into the operation's data or a typed error.
pub(crate) fn decode_response<Q: GraphQLQuery>(
    operation: &'static str,
    status: u16,
    text: &str,
) -> Result<Q::ResponseData, Error> {
    let parsed: Result<Value, _> = serde_json::from_str(text);
    let json = match parsed {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(if (200..300).contains(&status) {
                Error::Protocol {
                    message: format!(
                        "the answer to {operation} is not a JSON object: {}",
                        truncate(text)
                    ),
                }
            } else {
                Error::Http {
                    status,
                    body: truncate(text),
                }
            });
        }
    };
    if let Some(errors) = json.get("errors").and_then(Value::as_array)
        && let Some(err) = Error::from_errors(errors)
    {
        return Err(err);
    }
    if !(200..300).contains(&status) {
        return Err(Error::Http {
            status,
            body: truncate(text),
        });
    }
    match json.get("data") {
        Some(data) if !data.is_null() => {
            Q::ResponseData::deserialize(data).map_err(|source| Error::Decode { operation, source })
        }
        _ => Err(Error::Protocol {
            message: format!("the answer to {operation} has neither data nor errors"),
        }),
    }
}

use serde::Deserialize as _;

fn truncate(text: &str) -> String {
    if text.len() <= MAX_ERROR_BODY {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `http(s)://host[:port][/prefix]` without a trailing slash.
fn normalize_base_url(url: &str) -> Result<String, Error> {
    let trimmed = url.trim().trim_end_matches('/');
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| invalid("must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid("has no host"));
    }
    if rest.contains(['?', '#', ' ']) {
        return Err(invalid("must not have a query, fragment or spaces"));
    }
    Ok(trimmed.to_owned())
}

fn ws_url_for(base_url: &str) -> String {
    let ws = if let Some(rest) = base_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base_url.to_owned()
    };
    format!("{ws}/graphql/ws")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Me, me};

    #[test]
    fn base_urls_are_normalized_and_ws_urls_derived() {
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            ws_url_for("https://weberei.example/api"),
            "wss://weberei.example/api/graphql/ws"
        );
        assert_eq!(ws_url_for("http://h:1"), "ws://h:1/graphql/ws");
        for bad in [
            "ftp://x",
            "127.0.0.1:8080",
            "http://",
            "http:///x",
            "http://h/?q",
        ] {
            assert!(normalize_base_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn answers_become_data_or_typed_errors() {
        let ok = decode_response::<Me>("Me", 200, r#"{"data":{"me":null}}"#).unwrap();
        assert_eq!(ok, me::ResponseData { me: None });

        let err = decode_response::<Me>(
            "Me",
            200,
            r#"{"data":null,"errors":[{"message":"log in","extensions":{"code":"UNAUTHENTICATED"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Unauthenticated));

        let err = decode_response::<Me>("Me", 413, "payload too large").unwrap_err();
        assert!(matches!(err, Error::Http { status: 413, .. }), "{err:?}");
        assert_eq!(err.code(), Some(ErrorCode::Validation));

        let err = decode_response::<Me>("Me", 200, r#"{"data":{"me":{"id":1}}}"#).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    operation: "Me",
                    ..
                }
            ),
            "{err:?}"
        );

        let err = decode_response::<Me>("Me", 200, "<html>").unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    }
}
