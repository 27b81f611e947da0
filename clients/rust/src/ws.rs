//! Subscriptions over WebSocket with the graphql-transport-ws protocol, resumable after a
//! dropped connection.
//!
//! One connection per subscription. The session token goes in the `connection_init`
//! payload as `{"authorization": "Bearer <token>"}`. Every diff of a resumable subscription
//! (`viewport`, `webrat`) carries a `cursor`; when the connection drops, the subscription
//! reconnects with exponential backoff and jitter and subscribes again with `after` = the
//! cursor of the last diff it handed to the caller, so the caller sees no gap and no
//! duplicate. (Before the first diff there is no cursor: a subscription started without
//! `after` that drops before any diff arrived resumes with its original variables and can
//! miss what happened while it was disconnected.)

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use graphql_client::GraphQLQuery;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::{Error, ErrorCode};
use crate::operation::SubscriptionOperation;

/// The WebSocket subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// The id of the (single) subscription on each connection.
const SUBSCRIPTION_ID: &str = "1";
/// Diffs buffered between the connection task and the caller.
const BUFFER: usize = 32;
/// A connection that delivered for this long counts as healthy: the next drop starts the
/// backoff from the beginning.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);

/// How a subscription reconnects after its connection dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Delay before the first reconnect attempt (before jitter).
    pub initial_delay: Duration,
    /// Upper bound of the delay.
    pub max_delay: Duration,
    /// Factor between consecutive delays.
    pub multiplier: f64,
    /// Give up after this many failed attempts in a row (`None`: never give up).
    pub max_attempts: Option<u32>,
    /// Timeout of one connect + `connection_ack`.
    pub connect_timeout: Duration,
    /// A `ping` is sent after this much silence; twice this without any message from the
    /// server counts as a dropped connection.
    pub keepalive: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(15),
            multiplier: 2.0,
            max_attempts: None,
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(15),
        }
    }
}

impl ReconnectPolicy {
    /// The delay before attempt `attempt` (1-based): exponential, capped, with "equal
    /// jitter" (uniform in [d/2, d]) so that many clients do not reconnect in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let base = self.initial_delay.as_secs_f64() * exp;
        let capped = base.min(self.max_delay.as_secs_f64()).max(0.0);
        let jittered = if capped > 0.0 {
            rand::rng().random_range(capped / 2.0..=capped)
        } else {
            0.0
        };
        Duration::from_secs_f64(jittered)
    }
}

/// The state of a subscription's connection, observable with [`Subscription::state`].
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    /// Opening the first connection.
    Connecting,
    /// Connected and subscribed.
    Connected,
    /// The connection dropped; the next attempt starts after `delay`.
    Reconnecting {
        /// Failed attempts in a row so far (1 for the first retry).
        attempt: u32,
        delay: Duration,
        /// Why the previous connection ended.
        reason: String,
    },
    /// The subscription ended (completed by the server, closed, failed for good).
    Closed,
}

/// Shared WebSocket settings of a client.
pub(crate) struct WsConfig {
    pub(crate) url: String,
    policy: ReconnectPolicy,
    user_agent: String,
    tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl WsConfig {
    pub(crate) fn new(url: String, policy: ReconnectPolicy, user_agent: String) -> WsConfig {
        WsConfig {
            url,
            policy,
            user_agent,
            tls: std::sync::OnceLock::new(),
        }
    }

    /// rustls with the ring provider and the webpki roots (for `wss://`), built once.
    fn connector(&self) -> Result<Connector, Error> {
        if !self.url.starts_with("wss://") {
            return Ok(Connector::Plain);
        }
        let config = self.tls.get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
        });
        match config {
            Ok(c) => Ok(Connector::Rustls(c.clone())),
            Err(e) => Err(Error::Protocol {
                message: format!("TLS setup failed: {e}"),
            }),
        }
    }
}

enum Control {
    /// Drop the connection now (as a network failure would) and resume.
    Reconnect,
    /// Complete the subscription and close the connection.
    Close,
}

/// A live subscription: a [`Stream`] of the operation's data. Dropping it closes the
/// connection.
pub struct Subscription<S: SubscriptionOperation> {
    /// Each item with the cursor it carries.
    items: mpsc::Receiver<Item<S>>,
    state: watch::Receiver<ConnectionState>,
    /// The cursor of the last item yielded (or the `after` it started with).
    cursor: Option<String>,
    control: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<()>,
    _operation: PhantomData<fn() -> S>,
}

impl<S: SubscriptionOperation> std::fmt::Debug for Subscription<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("state", &*self.state.borrow())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<S> Subscription<S>
where
    S: SubscriptionOperation,
    S::Variables: Send + 'static,
    S::ResponseData: Send + 'static,
{
    pub(crate) async fn start(
        config: Arc<WsConfig>,
        token: Option<String>,
        variables: S::Variables,
    ) -> Result<Subscription<S>, Error> {
        let body =
            serde_json::to_value(S::build_query(variables)).map_err(|e| Error::Protocol {
                message: format!("encoding the variables failed: {e}"),
            })?;
        let initial_after = S::AFTER_VARIABLE
            .and_then(|v| body.get("variables")?.get(v)?.as_str().map(str::to_owned));
        let (items_tx, items) = mpsc::channel(BUFFER);
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);

        let (control, control_rx) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        let task = Task::<S> {
            config,
            token,
            body,
            items: items_tx,
            state: state_tx,
            cursor: initial_after.clone(),
            control: control_rx,
            _operation: PhantomData,
        };
        let task = tokio::spawn(task.run(first_tx));
        match first_rx.await {
            Ok(Ok(())) => Ok(Subscription {
                items,
                state,
                cursor: initial_after,
                control,
                task,
                _operation: PhantomData,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Protocol {
                message: "the subscription task ended before connecting".to_owned(),
            }),
        }
    }
}

impl<S: SubscriptionOperation> Subscription<S> {
    /// Connection state changes (cheap to clone; `changed().await` to wait for the next).
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// The cursor of the last diff this stream yielded (or the `after` it started with).
    /// Subscribing again with it as `after` resumes right after that diff. (The automatic
    /// reconnect resumes after the last diff received, which may be buffered and not yet
    /// yielded: either way nothing is skipped or repeated.)
    pub fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }

    /// Drop the connection at once, without a close handshake, as a network failure would,
    /// and reconnect (e.g. after the device changed networks). The subscription resumes
    /// after [`Subscription::cursor`].
    pub fn reconnect(&self) {
        let _ = self.control.send(Control::Reconnect);
    }

    /// Complete the subscription and close the connection; the stream ends after the
    /// diffs already received.
    pub fn close(&self) {
        let _ = self.control.send(Control::Close);
    }
}

impl<S: SubscriptionOperation> Stream for Subscription<S> {
    type Item = Result<S::ResponseData, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.items.poll_recv(cx) {
            Poll::Ready(Some((item, cursor))) => {
                if cursor.is_some() {
                    self.cursor = cursor;
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: SubscriptionOperation> Drop for Subscription<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// One item for the caller and the cursor it carries.
type Item<S> = (
    Result<<S as GraphQLQuery>::ResponseData, Error>,
    Option<String>,
);

/// How one connection ended.
enum Ended {
    /// Do not reconnect: completed, closed by the caller, or the caller is gone.
    Finished,
    /// Do not reconnect: this error is final.
    Fatal(Error),
    /// Reconnect.
    Dropped { reason: String, error: Error },
}

struct Task<S: SubscriptionOperation> {
    config: Arc<WsConfig>,
    token: Option<String>,
    /// The request body (`query`, `variables`, `operationName`) as JSON.
    body: Value,
    items: mpsc::Sender<Item<S>>,
    state: watch::Sender<ConnectionState>,
    /// The cursor of the last item handed to the caller's channel: where a resubscription
    /// resumes.
    cursor: Option<String>,
    control: mpsc::UnboundedReceiver<Control>,
    _operation: PhantomData<fn() -> S>,
}

impl<S: SubscriptionOperation> Task<S>
where
    S::ResponseData: Send + 'static,
{
    async fn run(mut self, first: oneshot::Sender<Result<(), Error>>) {
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
    /// The [`Subscription`] was dropped.
    CallerGone,
}

/// The operation's name: its type's name (the generated struct is named after it).
fn operation_name<S: GraphQLQuery>() -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let policy = ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            multiplier: 2.0,
            ..ReconnectPolicy::default()
        };
        for _ in 0..200 {
            let d1 = policy.delay(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d4 = policy.delay(4);
            assert!(
                d4 >= Duration::from_millis(400) && d4 <= Duration::from_millis(800),
                "{d4:?}"
            );
            let d30 = policy.delay(30);
            assert!(
                d30 >= Duration::from_secs(1) && d30 <= Duration::from_secs(2),
                "{d30:?}"
            );
            assert!(policy.delay(u32::MAX) <= Duration::from_secs(2));
        }
        // Jitter: not every delay is the same.
        let delays: std::collections::HashSet<_> = (0..50).map(|_| policy.delay(3)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn the_operation_name_is_the_type_name() {
        assert_eq!(operation_name::<crate::Viewport>(), "Viewport");
    }
}
