//! Live fan-out: each API instance follows the social stream itself (an ordered consumer,
//! resuming after the last sequence it saw) and broadcasts decoded changes to its viewport
//! subscribers. Several API instances therefore serve the same live map.
//!
//! Position invariant (the viewport cursor relies on it): [`LiveHub::last_seq`] is stored only
//! *after* the event with that sequence was handed to the broadcast channel, so a receiver that
//! reads `last_seq() == n` and then drains its channel has seen every change up to `n`. The hub
//! starts following right after the stream's last sequence at start-up (not "new messages from
//! some moment"), so its coverage begins at a known position.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use bus::Bus;
use domain::events::EventType;
use domain::geo::Point;
use domain::{Envelope, StreamDomain};
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use crate::config::ApiConfig;
use crate::graphql::KnotenNode;
use crate::tiles::TileHub;

/// One change on the map, with the stream position it came from.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub seq: u64,
    pub change: LiveChange,
}

/// What changed. A new variant needs a [`LiveChange::point`] (where on the map it happened:
/// that decides its tile) and a list in `ViewportDiff` (the match in `viewport.rs` asks for it).
#[derive(Debug, Clone)]
pub enum LiveChange {
    KnotenCreated(KnotenNode),
}

impl LiveChange {
    /// Where the change happened; `None` for changes that belong to no place (never sent to a
    /// viewport).
    pub fn point(&self) -> Option<Point> {
        match self {
            Self::KnotenCreated(k) => Point::new(k.lat, k.lng).ok(),
        }
    }
}

/// Broadcast of live changes. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    last_seq: Arc<AtomicU64>,
    /// True once the hub knows where it started following (its position is meaningful).
    following: Arc<AtomicBool>,
    shutdown: Option<watch::Receiver<bool>>,
    /// The per-process tile grouping, started with the first viewport subscription (it needs
    /// the API's tick settings, which the hub does not know when it is spawned).
    tiles: Arc<OnceLock<TileHub>>,
}

impl LiveHub {
    /// A hub with no feed (for schema export and tests that need no live data).
    pub fn detached() -> Self {
        let (tx, _) = broadcast::channel(16);
        Self {
            tx,
            last_seq: Arc::new(AtomicU64::new(0)),
            following: Arc::new(AtomicBool::new(false)),
            shutdown: None,
            tiles: Arc::new(OnceLock::new()),
        }
    }

    /// Follow the Ort's social stream from now on until `shutdown` turns true.
    pub fn spawn(bus: Bus, shutdown: watch::Receiver<bool>) -> Self {
        let (tx, _) = broadcast::channel(8192);
        let hub = Self {
            tx,
            last_seq: Arc::new(AtomicU64::new(0)),
            following: Arc::new(AtomicBool::new(false)),
            shutdown: Some(shutdown.clone()),
            tiles: Arc::new(OnceLock::new()),
        };
        tokio::spawn(hub.clone().follow(bus, shutdown));
        hub
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    /// The last stream sequence the hub has seen (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::SeqCst)
    }

    /// Whether the hub follows the stream from a known position yet.
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::SeqCst)
    }

    /// The process's tile hub, started on first use with `config`'s tick and queue settings.
    pub(crate) fn tiles(&self, config: &ApiConfig) -> &TileHub {
        self.tiles
            .get_or_init(|| TileHub::spawn(self.clone(), config, self.shutdown.clone()))
    }

    async fn follow(self, bus: Bus, mut shutdown: watch::Receiver<bool>) {
        let name = bus.config().ort.stream_name(StreamDomain::Social);
        let filter = bus.config().ort.stream_filter(StreamDomain::Social);
        while !*shutdown.borrow() {
            let messages = async {
                let mut stream = bus
                    .jetstream()
                    .get_stream(&name)
                    .await
                    .map_err(|e| e.to_string())?;
                if !self.is_following() {
                    // Start right after what the stream holds now: a known position, so that
                    // a replay up to it hands over to this feed without a gap.
                    let last = stream
                        .info()
                        .await
                        .map_err(|e| e.to_string())?
                        .state
                        .last_sequence;
                    self.last_seq.store(last, Ordering::SeqCst);
                }
                let consumer = stream
                    .create_consumer(OrderedConfig {
                        filter_subject: filter.clone(),
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: self.last_seq() + 1,
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                consumer.messages().await.map_err(|e| e.to_string())
            }
            .await;
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "live feed unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            self.following.store(true, Ordering::SeqCst);
            loop {
                let next = tokio::select! {
                    m = messages.next() => m,
                    _ = shutdown.changed() => return,
                };
                let Some(Ok(msg)) = next else {
                    warn!("live feed interrupted; resuming");
                    break;
                };
                let Ok(info) = msg.info() else { continue };
                let seq = info.stream_sequence;
                if let Some(change) = decode(&msg.payload) {
                    // No receivers is fine: nobody is watching right now.
                    let _ = self.tx.send(Arc::new(LiveEvent { seq, change }));
                }
                // After the send: see the position invariant in the module docs.
                self.last_seq.store(seq, Ordering::SeqCst);
            }
        }
    }
}

/// The change an event on the social stream makes to the map, if any. Shared by the live feed
/// and the viewport replay so that both see exactly the same changes.
pub(crate) fn decode(payload: &[u8]) -> Option<LiveChange> {
    let env: Envelope = serde_json::from_slice(payload).ok()?;
    match env.known_type()? {
        EventType::KnotenGeknuepft => match KnotenNode::from_event(&env) {
            Ok(k) => Some(LiveChange::KnotenCreated(k)),
            Err(e) => {
                debug!(error = %e, "undecodable KnotenGeknuepft on the live feed");
                None
            }
        },
        _ => None,
    }
}
