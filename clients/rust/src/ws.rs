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
//!
//! This module holds the public handle and its settings; `task` runs the connections behind it.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use graphql_client::GraphQLQuery;
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::Connector;

use crate::error::Error;
use crate::operation::SubscriptionOperation;

mod task;
#[cfg(test)]
mod tests;

use task::Task;

/// The WebSocket subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// Diffs buffered between the connection task and the caller.
const BUFFER: usize = 32;

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

/// One item for the caller and the cursor it carries.
type Item<S> = (
    Result<<S as GraphQLQuery>::ResponseData, Error>,
    Option<String>,
);
