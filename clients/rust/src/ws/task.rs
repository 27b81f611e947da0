//! The task behind a [`Subscription`](super::Subscription): one graphql-transport-ws connection
//! at a time (connect, `connection_init`/`connection_ack`, `subscribe`, `next`/`error`/`complete`,
//! ping/pong keepalive), and the loop that reconnects with backoff and resubscribes after the
//! last cursor.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use graphql_client::GraphQLQuery;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{ConnectionState, Control, Item, PROTOCOL, WsConfig};
use crate::error::{Error, ErrorCode};
use crate::operation::SubscriptionOperation;

/// The id of the (single) subscription on each connection.
const SUBSCRIPTION_ID: &str = "1";
/// A connection that delivered for this long counts as healthy: the next drop starts the
/// backoff from the beginning.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How one connection ended.
enum Ended {
    /// Do not reconnect: completed, closed by the caller, or the caller is gone.
    Finished,
    /// Do not reconnect: this error is final.
    Fatal(Error),
    /// Reconnect.
    Dropped { reason: String, error: Error },
}

pub(super) struct Task<S: SubscriptionOperation> {
    pub(super) config: Arc<WsConfig>,
    pub(super) token: Option<String>,
    /// The request body (`query`, `variables`, `operationName`) as JSON.
    pub(super) body: Value,
    pub(super) items: mpsc::Sender<Item<S>>,
    pub(super) state: watch::Sender<ConnectionState>,
    /// The cursor of the last item handed to the caller's channel: where a resubscription
    /// resumes.
    pub(super) cursor: Option<String>,
    pub(super) control: mpsc::UnboundedReceiver<Control>,
    pub(super) _operation: PhantomData<fn() -> S>,
}

impl<S: SubscriptionOperation> Task<S>
where
    S::ResponseData: Send + 'static,
{
    pub(super) async fn run(mut self, first: oneshot::Sender<Result<(), Error>>) {
        let mut first = Some(first);
        let mut attempt: u32 = 0;
        loop {
            let mut healthy = false;
            let ended = self.session(&mut first, &mut healthy).await;
            match ended {
                Ended::Finished => break,
                Ended::Fatal(error) => {
                    match first.take() {
                        Some(f) => {
                            let _ = f.send(Err(error));
                        }
                        None => {
                            let _ = self.items.send((Err(error), None)).await;
                        }
                    }
                    break;
                }
                Ended::Dropped { reason, error } => {
                    if let Some(f) = first.take() {
                        // The first connection failed: the caller gets the error.
                        let _ = f.send(Err(error));
                        break;
                    }
                    if healthy {
                        attempt = 0;
                    }
                    attempt = attempt.saturating_add(1);
                    if self
                        .config
                        .policy
                        .max_attempts
                        .is_some_and(|max| attempt > max)
                    {
                        let _ = self.items.send((Err(error), None)).await;
                        break;
                    }
                    let delay = self.config.policy.delay(attempt);
                    tracing::debug!(%reason, attempt, ?delay, "subscription connection dropped; reconnecting");
                    self.state.send_replace(ConnectionState::Reconnecting {
                        attempt,
                        delay,
                        reason,
                    });
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        c = self.control.recv() => match c {
                            Some(Control::Reconnect) => {}
                            Some(Control::Close) | None => break,
                        },
                        () = self.items.closed() => break,
                    }
                }
            }
        }
        self.state.send_replace(ConnectionState::Closed);
    }

    /// One connection: connect, init, subscribe, forward diffs until it ends.
    async fn session(
        &mut self,
        first: &mut Option<oneshot::Sender<Result<(), Error>>>,
        healthy: &mut bool,
    ) -> Ended {
        let policy = &self.config.policy;
        let mut ws = match tokio::time::timeout(policy.connect_timeout, self.connect()).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(ended)) => return ended,
            Err(_) => {
                return dropped(
                    format!("no connection_ack within {:?}", policy.connect_timeout),
                    None,
                );
            }
        };

        let mut payload = self.body.clone();
        if let (Some(var), Some(cursor)) = (S::AFTER_VARIABLE, self.cursor.clone())
            && let Some(vars) = payload.get_mut("variables").and_then(Value::as_object_mut)
        {
            vars.insert(var.to_owned(), Value::String(cursor));
        }
        let subscribe = json!({"id": SUBSCRIPTION_ID, "type": "subscribe", "payload": payload});
        if let Err(e) = ws.send(Message::text(subscribe.to_string())).await {
            return dropped("sending subscribe failed", Some(e));
        }
        self.state.send_replace(ConnectionState::Connected);
        if let Some(f) = first.take() {
            let _ = f.send(Ok(()));
        }
        let connected_at = Instant::now();

        let keepalive = policy.keepalive.max(Duration::from_millis(100));
        let mut last_heard = Instant::now();
        let mut ticker = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
        loop {
            tokio::select! {
                control = self.control.recv() => match control {
                    Some(Control::Reconnect) => {
                        // Asked for: not a sign of trouble, start the backoff afresh.
                        *healthy = true;
                        // Drop the socket without a close handshake.
                        drop(ws);
                        return dropped("reconnect requested", None);
                    }
                    Some(Control::Close) | None => {
                        let _ = ws
                            .send(Message::text(
                                json!({"id": SUBSCRIPTION_ID, "type": "complete"}).to_string(),
                            ))
                            .await;
                        let _ = ws.close(None).await;
                        return Ended::Finished;
                    }
                },
                () = self.items.closed() => {
                    let _ = ws.close(None).await;
                    return Ended::Finished;
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() >= keepalive * 2 {
                        *healthy |= connected_at.elapsed() >= HEALTHY_AFTER;
                        return dropped(
                            format!("nothing heard from the server for {:?}", last_heard.elapsed()),
                            None,
                        );
                    }
                    if let Err(e) = ws.send(Message::text(json!({"type": "ping"}).to_string())).await {
                        *healthy |= connected_at.elapsed() >= HEALTHY_AFTER;
                        return dropped("sending ping failed", Some(e));
                    }
                }
                frame = ws.next() => {
                    last_heard = Instant::now();
                    let text = match frame {
                        None => {
                            *healthy |= connected_at.elapsed() >= HEALTHY_AFTER;
                            return dropped("the connection closed", None);
                        }
                        Some(Err(e)) => {
                            *healthy |= connected_at.elapsed() >= HEALTHY_AFTER;
                            return dropped("the connection failed", Some(e));
                        }
                        Some(Ok(Message::Close(frame))) => {
                            *healthy |= connected_at.elapsed() >= HEALTHY_AFTER;
                            return dropped(close_reason(frame.as_ref()), None);
                        }
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(_)) => continue,
                    };
                    let msg: Value = match serde_json::from_str(text.as_str()) {
                        Ok(m) => m,
                        Err(e) => {
                            return Ended::Fatal(Error::Protocol {
                                message: format!("the server sent a message that is not JSON: {e}"),
                            });
                        }
                    };
                    match msg.get("type").and_then(Value::as_str) {
                        Some("next") if msg.get("id").and_then(Value::as_str) == Some(SUBSCRIPTION_ID) => {
                            let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
                            match self.deliver(payload).await {
                                // A connection that delivered is healthy: a later drop starts
                                // the backoff from the beginning.
                                Delivery::Delivered => *healthy = true,
                                Delivery::Errors(errors) => {
                                    return self.server_error(&errors, healthy, connected_at);
                                }
                                Delivery::CallerGone => return Ended::Finished,
                            }
                        }
                        Some("error") if msg.get("id").and_then(Value::as_str) == Some(SUBSCRIPTION_ID) => {
                            let errors = msg
                                .get("payload")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default();
                            return self.server_error(&errors, healthy, connected_at);
                        }
                        Some("complete") if msg.get("id").and_then(Value::as_str) == Some(SUBSCRIPTION_ID) => {
                            return Ended::Finished;
                        }
                        Some("ping") => {
                            if let Err(e) = ws.send(Message::text(json!({"type": "pong"}).to_string())).await {
                                *healthy |= connected_at.elapsed() >= HEALTHY_AFTER;
                                return dropped("sending pong failed", Some(e));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Connect, send `connection_init`, wait for `connection_ack`.
    async fn connect(&self) -> Result<Socket, Ended> {
        let mut request = match self.config.url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => {
                return Err(Ended::Fatal(Error::InvalidUrl {
                    url: self.config.url.clone(),
                    reason: e.to_string(),
                }));
            }
        };
        let headers = request.headers_mut();
        headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
        if let Ok(ua) = HeaderValue::from_str(&self.config.user_agent) {
            headers.insert("User-Agent", ua);
        }
        let connector = self.config.connector().map_err(Ended::Fatal)?;
        let (mut ws, response) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector))
                .await
                .map_err(|e| match e {
                    tungstenite::Error::Http(response) => {
                        let status = response.status().as_u16();
                        let body = response
                            .body()
                            .as_ref()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                            .unwrap_or_default();
                        let error = Error::Http { status, body };
                        if error.is_retryable() || status >= 500 {
                            Ended::Dropped {
                                reason: format!(
                                    "the WebSocket upgrade was answered with HTTP {status}"
                                ),
                                error,
                            }
                        } else {
                            Ended::Fatal(error)
                        }
                    }
                    other => Ended::Dropped {
                        reason: format!("connecting failed: {other}"),
                        error: Error::transport(
                            format!("connecting to {}", self.config.url),
                            other,
                        ),
                    },
                })?;
        let chosen = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if chosen != Some(PROTOCOL) {
            return Err(Ended::Fatal(Error::Protocol {
                message: format!(
                    "the server did not accept the {PROTOCOL} subprotocol (chose {chosen:?})"
                ),
            }));
        }
        let init_payload = match &self.token {
            Some(t) => json!({"authorization": format!("Bearer {t}")}),
            None => json!({}),
        };
        ws.send(Message::text(
            json!({"type": "connection_init", "payload": init_payload}).to_string(),
        ))
        .await
        .map_err(|e| dropped("sending connection_init failed", Some(e)))?;
        loop {
            let frame = ws.next().await;
            let text = match frame {
                None => return Err(dropped("the connection closed before connection_ack", None)),
                Some(Err(e)) => {
                    return Err(dropped(
                        "the connection failed before connection_ack",
                        Some(e),
                    ));
                }
                Some(Ok(Message::Close(frame))) => return Err(self.refused(frame.as_ref())),
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(_)) => continue,
            };
            let msg: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            match msg.get("type").and_then(Value::as_str) {
                Some("connection_ack") => return Ok(ws),
                Some("ping") => {
                    ws.send(Message::text(json!({"type": "pong"}).to_string()))
                        .await
                        .map_err(|e| dropped("sending pong failed", Some(e)))?;
                }
                _ => {}
            }
        }
    }

    /// The server closed the socket instead of acknowledging `connection_init`.
    fn refused(&self, frame: Option<&CloseFrame>) -> Ended {
        let (code, reason) = match frame {
            Some(f) => (u16::from(f.code), f.reason.to_string()),
            None => (1005, String::new()),
        };
        match code {
            // async-graphql closes with 1002 when `on_connection_init` refuses (the token);
            // 4401/4403 are graphql-ws' "Unauthorized"/"Forbidden".
            1002 | 4401 | 4403 if self.token.is_some() => {
                Ended::Fatal(Error::server(ErrorCode::Unauthenticated, reason))
            }
            // Going away / restarting / overloaded: try again.
            1001 | 1011 | 1012 | 1013 | 1005 | 1006 => dropped(close_reason(frame), None),
            _ => Ended::Fatal(Error::ConnectionRejected { code, reason }),
        }
    }

    /// An error for the subscription: final, unless the server says to retry.
    fn server_error(&self, errors: &[Value], healthy: &mut bool, connected_at: Instant) -> Ended {
        let error = Error::from_errors(errors).unwrap_or_else(|| Error::Protocol {
            message: "the server ended the subscription with an empty error".to_owned(),
        });
        if error.is_retryable() {
            *healthy |= connected_at.elapsed() >= HEALTHY_AFTER;
            Ended::Dropped {
                reason: error.to_string(),
                error,
            }
        } else {
            Ended::Fatal(error)
        }
    }

    /// Hand one `next` payload to the caller and advance the cursor.
    async fn deliver(&mut self, payload: Value) -> Delivery {
        if let Some(errors) = payload.get("errors").and_then(Value::as_array)
            && !errors.is_empty()
        {
            return Delivery::Errors(errors.clone());
        }
        let data = payload.get("data").cloned().unwrap_or(Value::Null);
        let cursor = data
            .get(S::ROOT_FIELD)
            .and_then(|d| d.get("cursor"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let item = <S::ResponseData as serde::Deserialize>::deserialize(&data).map_err(|source| {
            Error::Decode {
                operation: operation_name::<S>(),
                source,
            }
        });
        if self.items.send((item, cursor.clone())).await.is_err() {
            return Delivery::CallerGone;
        }
        if cursor.is_some() {
            self.cursor = cursor;
        }
        Delivery::Delivered
    }
}

enum Delivery {
    Delivered,
    /// The payload carried GraphQL errors.
    Errors(Vec<Value>),
    /// The [`Subscription`](super::Subscription) was dropped.
    CallerGone,
}

/// The operation's name: its type's name (the generated struct is named after it).
pub(super) fn operation_name<S: GraphQLQuery>() -> &'static str {
    let full = std::any::type_name::<S>();
    full.rsplit("::").next().unwrap_or(full)
}

fn dropped(reason: impl Into<String>, source: Option<tungstenite::Error>) -> Ended {
    let reason = reason.into();
    let error = match source {
        Some(e) => Error::transport(reason.clone(), e),
        None => Error::Transport {
            message: reason.clone(),
            source: None,
        },
    };
    let reason = match std::error::Error::source(&error) {
        Some(s) => format!("{reason}: {s}"),
        None => reason,
    };
    Ended::Dropped { reason, error }
}

fn close_reason(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) if f.code == CloseCode::Normal && f.reason.is_empty() => {
            "the server closed the connection".to_owned()
        }
        Some(f) => format!(
            "the server closed the connection ({}: {})",
            u16::from(f.code),
            f.reason
        ),
        None => "the server closed the connection".to_owned(),
    }
}
