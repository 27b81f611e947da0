//! Live fan-out: each API instance follows the social stream itself (an ordered consumer,
//! resuming after the last sequence it saw) and broadcasts decoded changes; the process's
//! [`TileHub`] groups them per tile for the viewport subscribers. Several API instances
//! therefore serve the same live map. The Webrat's feed follows the governance stream beside
//! it the same way, with a tile hub of its own (`live/governance.rs`).
//!
//! `live/` produces neutral change records (plain data: ids, points, payloads). It must never
//! build GraphQL types: `graphql/viewport.rs` and the webrat subscription convert the records.
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
use domain::StreamDomain;
use domain::geo::Point;
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tracing::warn;

use chrono::{DateTime, Utc};
use domain::events::{FadenTyp, KnotenGeknuepft};
use uuid::Uuid;

use crate::config::ApiConfig;
use crate::tiles::{TileEvent, TileFeed, TileHub};

pub(crate) mod governance;
pub(crate) mod replay;
pub(crate) mod social;

use governance::GovernanceFeed;
use social::Decoder;

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
    KnotenCreated(KnotenCreated),
    /// Designed, faded, twisted into yarn or hidden.
    KnotenChanged(KnotenChanged),
    /// A thread spun, renewed, faded or twisted (located at its Knoten).
    FadenChanged(FadenChanged),
    /// A new message in a Knoten's room (located at the Knoten).
    Nachricht(NachrichtWritten),
    /// Moderation hid a message (located at its Knoten).
    NachrichtHidden(NachrichtHidden),
}

/// A Knoten as its `KnotenGeknuepft` event describes it.
#[derive(Debug, Clone)]
pub struct KnotenCreated {
    pub id: Uuid,
    pub knoten: KnotenGeknuepft,
    /// The event's time: when it was tied.
    pub at: DateTime<Utc>,
    /// The role that tied it (`None`: the system).
    pub creator: Option<Uuid>,
}

/// What happened to a Knoten already on the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnotenChangeKind {
    Designed,
    Decayed,
    Twisted,
    Hidden,
}

/// A change to a Knoten already on the map, at its point.
#[derive(Debug, Clone)]
pub struct KnotenChanged {
    pub id: Uuid,
    pub kind: KnotenChangeKind,
    pub point: Point,
    /// For `Designed`: the new version and content.
    pub design_version: Option<u32>,
    pub content: Option<serde_json::Value>,
    pub at: DateTime<Utc>,
}

/// What happened to a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FadenChangeKind {
    Spun,
    Decayed,
    Twisted,
}

/// A thread as spun (or renewed).
#[derive(Debug, Clone, Copy)]
pub struct SpunFaden {
    pub typ: FadenTyp,
    pub from_rolle: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// A change to a thread, at its Knoten's point.
#[derive(Debug, Clone)]
pub struct FadenChanged {
    pub id: Uuid,
    pub knoten: Uuid,
    pub kind: FadenChangeKind,
    /// For `Spun`.
    pub spun: Option<SpunFaden>,
    pub at: DateTime<Utc>,
    pub point: Point,
}

/// A new room message, opened with its author's key (`text: None` when it cannot be opened).
#[derive(Debug, Clone)]
pub struct NachrichtWritten {
    pub id: Uuid,
    pub knoten: Uuid,
    pub author: Uuid,
    pub text: Option<String>,
    pub mentions: Vec<Uuid>,
    pub at: DateTime<Utc>,
    pub point: Point,
}

/// A room message moderation hid.
#[derive(Debug, Clone)]
pub struct NachrichtHidden {
    pub id: Uuid,
    pub knoten: Uuid,
    pub at: DateTime<Utc>,
    pub point: Point,
}

impl LiveChange {
    /// Where the change happened; `None` for changes that belong to no place (never sent to a
    /// viewport).
    pub fn point(&self) -> Option<Point> {
        match self {
            Self::KnotenCreated(k) => Point::new(k.knoten.lat, k.knoten.lng).ok(),
            Self::KnotenChanged(k) => Some(k.point),
            Self::FadenChanged(f) => Some(f.point),
            Self::Nachricht(n) => Some(n.point),
            Self::NachrichtHidden(n) => Some(n.point),
        }
    }
}

impl TileEvent for LiveEvent {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn point(&self) -> Option<Point> {
        self.change.point()
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
    tiles: Arc<OnceLock<TileHub<LiveEvent>>>,
    decoder: Decoder,
    /// The Webrat's feed: the governance stream, followed beside the social one.
    governance: GovernanceFeed,
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
            decoder: Decoder::new(None, None),
            governance: GovernanceFeed::detached(),
        }
    }

    /// Follow the Ort's social stream from now on until `shutdown` turns true. `db` lets it
    /// place changes whose event carries no point and open message texts.
    pub fn spawn(
        bus: Bus,
        db: sea_orm::DatabaseConnection,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let (tx, _) = broadcast::channel(8192);
        let hub = Self {
            tx,
            last_seq: Arc::new(AtomicU64::new(0)),
            following: Arc::new(AtomicBool::new(false)),
            shutdown: Some(shutdown.clone()),
            tiles: Arc::new(OnceLock::new()),
            decoder: Decoder::new(Some(bus.clone()), Some(db.clone())),
            governance: GovernanceFeed::spawn(bus.clone(), db, shutdown.clone()),
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

    /// Decodes events the same way for the live feed and for replays.
    pub(crate) fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The Webrat's feed (governance stream).
    pub(crate) fn governance(&self) -> &GovernanceFeed {
        &self.governance
    }

    /// Whether the hub follows the stream from a known position yet.
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::SeqCst)
    }

    /// The process's tile hub of the live map, started on first use with `config`'s tick and
    /// queue settings.
    pub(crate) fn tiles(&self, config: &ApiConfig) -> &TileHub<LiveEvent> {
        self.tiles
            .get_or_init(|| TileHub::spawn(self.clone(), config, self.shutdown.clone()))
    }

    async fn follow(self, bus: Bus, shutdown: watch::Receiver<bool>) {
        let hub = &self;
        follow_stream(
            &bus,
            StreamDomain::Social,
            "live feed",
            &self.last_seq,
            &self.following,
            shutdown,
            |seq, payload| {
                let hub = hub.clone();
                async move {
                    if let Some(change) = hub.decoder.decode(&payload).await {
                        // No receivers is fine: nobody is watching right now.
                        let _ = hub.tx.send(Arc::new(LiveEvent { seq, change }));
                    }
                }
            },
        )
        .await;
    }
}

impl TileFeed for LiveHub {
    type Event = LiveEvent;
    const NAME: &'static str = "viewport";
    const SUBSCRIBERS_METRIC: &'static str = "wg_viewport_subscribers";
    const RESYNCS_METRIC: &'static str = "wg_viewport_resyncs_total";

    fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::SeqCst)
    }
}

/// Follow `domain`'s stream of the Ort from a known position (the stream's last sequence when it
/// first connects), resuming after `last_seq` on every interruption, until `shutdown` turns
/// true. `on_event` runs before `last_seq` moves to that event (the position invariant above).
pub(crate) async fn follow_stream<Fut>(
    bus: &Bus,
    domain: StreamDomain,
    label: &str,
    last_seq: &AtomicU64,
    following: &AtomicBool,
    mut shutdown: watch::Receiver<bool>,
    mut on_event: impl FnMut(u64, bytes::Bytes) -> Fut,
) where
    Fut: std::future::Future<Output = ()> + Send,
{
    let name = bus.config().ort.stream_name(domain);
    let filter = bus.config().ort.stream_filter(domain);
    while !*shutdown.borrow() {
        let messages = async {
            let mut stream = bus
                .jetstream()
                .get_stream(&name)
                .await
                .map_err(|e| e.to_string())?;
            if !following.load(Ordering::SeqCst) {
                // Start right after what the stream holds now: a known position, so that a
                // replay up to it hands over to this feed without a gap.
                let last = stream
                    .info()
                    .await
                    .map_err(|e| e.to_string())?
                    .state
                    .last_sequence;
                last_seq.store(last, Ordering::SeqCst);
            }
            let consumer = stream
                .create_consumer(OrderedConfig {
                    filter_subject: filter.clone(),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: last_seq.load(Ordering::SeqCst) + 1,
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
                warn!(error = %e, "{label} unavailable; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        following.store(true, Ordering::SeqCst);
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = shutdown.changed() => return,
            };
            let Some(Ok(msg)) = next else {
                warn!("{label} interrupted; resuming");
                break;
            };
            let Ok(info) = msg.info() else { continue };
            let seq = info.stream_sequence;
            on_event(seq, msg.payload.clone()).await;
            last_seq.store(seq, Ordering::SeqCst);
        }
    }
}
