//! The Webrat's live feed: each API instance follows the governance stream itself (an ordered
//! consumer, like [`crate::live::LiveHub`] does for the social stream) and broadcasts the
//! changes of Anträge as neutral [`WebratChange`] records, placed at their Weberei's centre
//! (the webrat subscriptions in `graphql/governance/` make GraphQL types of them). `webrat` subscribers get them grouped
//! by tile through the feed's own [`TileHub`] (the live map's machinery: one shared diff per
//! tile and tick, bounded queues, resync, heartbeat); `antragChanged` subscribers read the
//! broadcast directly and keep one Antrag's changes.
//!
//! It keeps the hub's position invariant: [`GovernanceFeed::last_seq`] is stored only after the
//! event with that sequence was handed to the broadcast channel, so a receiver that reads
//! `last_seq() == n` and then drains its channel has seen every change up to `n`.
//!
//! Only Antrag events become changes (filed, objection, vote, quorum, decision), and a flag
//! resolved as hidden on an Antrag (HIDDEN: take it off the panel). Delegations and other flags
//! have no place on the map; the moderation panel reads them with queries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bus::Bus;
use chrono::{DateTime, Utc};
use domain::events::{
    AntragEntschieden, AntragGestellt, EinspruchEingegangen, EventType, FlagOutcome, FlagRaised,
    FlagResolved, FlagTargetKind, StimmeAbgegeben, Vote,
};
use domain::geo::Point;
use domain::{AggregateType, DomainError, Envelope, StreamDomain};
use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::config::ApiConfig;
use crate::read;
use crate::tiles::{TileEvent, TileFeed, TileHub};

/// Webereien remembered before the cache starts over.
const CACHE_LIMIT: usize = 100_000;

/// What happened to an Antrag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebratChangeKind {
    Filed,
    Objection,
    Vote,
    QuorumReached,
    Decided,
    Hidden,
}

/// An objection as the feed saw it (the reason opened with the objector's key, if it can be).
#[derive(Debug, Clone)]
pub(crate) struct Objection {
    pub by: Uuid,
    pub reason: Option<String>,
}

/// A change to an Antrag, placed at its Weberei's centre.
#[derive(Debug, Clone)]
pub(crate) struct WebratChange {
    pub antrag_id: Uuid,
    pub kind: WebratChangeKind,
    /// The Weberei (H3 hex) and its centre.
    pub weberei: String,
    pub weberei_lat: f64,
    pub weberei_lng: f64,
    pub at: DateTime<Utc>,
    /// For `Filed`.
    pub filed: Option<AntragGestellt>,
    /// For `Objection`.
    pub objection: Option<Objection>,
    /// For `Vote`: who voted what.
    pub vote: Option<(Uuid, Vote)>,
    /// For `Decided`.
    pub decision: Option<AntragEntschieden>,
}

/// The centre of an H3 cell as `(lat, lng)`.
pub(crate) fn cell_centre(cell: h3o::CellIndex) -> (f64, f64) {
    let c = h3o::LatLng::from(cell);
    (c.lat(), c.lng())
}

/// A Weberei (H3 hex) as `(cell hex, centre lat, centre lng)`.
pub(crate) fn weberei_centre(hex: &str) -> Result<(String, f64, f64), DomainError> {
    let cell = domain::governance::parse_weberei(hex)?;
    let (lat, lng) = cell_centre(cell);
    Ok((cell.to_string(), lat, lng))
}

impl WebratChange {
    pub(crate) fn new(id: Uuid, kind: WebratChangeKind, at: DateTime<Utc>) -> Self {
        Self {
            antrag_id: id,
            kind,
            weberei: String::new(),
            weberei_lat: 0.0,
            weberei_lng: 0.0,
            at,
            filed: None,
            objection: None,
            vote: None,
            decision: None,
        }
    }

    /// Put the change at the centre of Weberei `hex`.
    pub(crate) fn place(&mut self, hex: &str) -> Result<(), DomainError> {
        (self.weberei, self.weberei_lat, self.weberei_lng) = weberei_centre(hex)?;
        Ok(())
    }

    /// Where the change is on the map: its Weberei's centre.
    pub(crate) fn point(&self) -> Option<Point> {
        Point::new(self.weberei_lat, self.weberei_lng).ok()
    }
}

/// One Webrat change with the governance stream position it came from.
#[derive(Debug, Clone)]
pub(crate) struct GovernanceEvent {
    pub seq: u64,
    pub change: WebratChange,
}

impl TileEvent for GovernanceEvent {
    fn seq(&self) -> u64 {
        self.seq
    }

    /// The centre of the Antrag's Weberei.
    fn point(&self) -> Option<Point> {
        self.change.point()
    }
}

/// Decodes governance events into Webrat changes. Cheap to clone.
#[derive(Clone)]
pub(crate) struct GovernanceDecoder {
    bus: Option<Bus>,
    db: Option<DatabaseConnection>,
    /// Antrag id -> its Weberei (hex).
    webereien: Arc<Mutex<HashMap<Uuid, String>>>,
}

impl GovernanceDecoder {
    fn new(bus: Option<Bus>, db: Option<DatabaseConnection>) -> Self {
        Self {
            bus,
            db,
            webereien: Default::default(),
        }
    }

    /// The change `payload` makes to the Webrat, if any.
    pub(crate) async fn decode(&self, payload: &[u8]) -> Option<WebratChange> {
        let env: Envelope = serde_json::from_slice(payload).ok()?;
        if env.known_type()? == EventType::FlagResolved {
            return self.hidden_antrag(&env).await;
        }
        let id = env.aggregate_id;
        let kind = match env.known_type()? {
            EventType::AntragGestellt => WebratChangeKind::Filed,
            EventType::EinspruchEingegangen => WebratChangeKind::Objection,
            EventType::StimmeAbgegeben => WebratChangeKind::Vote,
            EventType::QuorumErreicht => WebratChangeKind::QuorumReached,
            EventType::AntragEntschieden => WebratChangeKind::Decided,
            _ => return None,
        };
        let mut change = WebratChange::new(id, kind, env.ts);
        match kind {
            WebratChangeKind::Filed => {
                let p: AntragGestellt = env.decode().ok()?;
                self.remember(id, p.weavery_h3.clone());
                change.filed = Some(p);
            }
            WebratChangeKind::Objection => {
                let p: EinspruchEingegangen = env.decode().ok()?;
                let reason = match self.key(p.by).await {
                    Some(key) => domain::privacy::open(&key, &p.reason).ok(),
                    None => None,
                };
                change.objection = Some(Objection { by: p.by, reason });
            }
            WebratChangeKind::Vote => {
                let p: StimmeAbgegeben = env.decode().ok()?;
                change.vote = Some((p.by, p.vote));
            }
            WebratChangeKind::QuorumReached | WebratChangeKind::Hidden => {}
            WebratChangeKind::Decided => {
                let p: AntragEntschieden = env.decode().ok()?;
                change.decision = Some(p);
            }
        }
        let weberei = self.weberei(id).await?;
        change.place(&weberei).ok()?;
        Some(change)
    }

    /// A flag resolved as hidden on an Antrag: the Antrag leaves the panel.
    async fn hidden_antrag(&self, env: &Envelope) -> Option<WebratChange> {
        let p: FlagResolved = env.decode().ok()?;
        if p.outcome != FlagOutcome::Hidden {
            return None;
        }
        let (kind, target) = self.flag_target(env.aggregate_id).await?;
        if kind != FlagTargetKind::Antrag {
            return None;
        }
        let mut change = WebratChange::new(target, WebratChangeKind::Hidden, env.ts);
        let weberei = self.weberei(target).await?;
        change.place(&weberei).ok()?;
        Some(change)
    }

    /// What a flag is about: from the projection, else from its chain's `FlagRaised`.
    async fn flag_target(&self, flag: Uuid) -> Option<(FlagTargetKind, Uuid)> {
        if let Some(db) = &self.db
            && let Ok(Some(target)) = read::governance::flag_target(db, flag).await
        {
            return Some(target);
        }
        let chain = self
            .bus
            .as_ref()?
            .history(AggregateType::Flag, flag)
            .await
            .ok()?;
        let raised: FlagRaised = chain.first()?.envelope.decode().ok()?;
        Some((raised.target.kind, raised.target.id))
    }

    fn remember(&self, id: Uuid, weberei: String) {
        if let Ok(mut c) = self.webereien.lock() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(id, weberei);
        }
    }

    /// The Antrag's Weberei: seen before, else from the projection, else from its chain.
    async fn weberei(&self, id: Uuid) -> Option<String> {
        if let Some(w) = self.webereien.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Some(w);
        }
        let mut found = None;
        if let Some(db) = &self.db
            && let Ok(Some(h3)) = read::governance::antrag_weberei(db, id).await
        {
            found = h3o::CellIndex::try_from(h3 as u64)
                .ok()
                .map(|c| c.to_string());
        }
        if found.is_none()
            && let Some(bus) = &self.bus
            && let Ok(chain) = bus.history(AggregateType::Antrag, id).await
            && let Some(first) = chain.first()
            && let Ok(p) = first.envelope.decode::<AntragGestellt>()
        {
            found = Some(p.weavery_h3);
        }
        if let Some(w) = &found {
            self.remember(id, w.clone());
        }
        found
    }

    async fn key(&self, rolle: Uuid) -> Option<[u8; 32]> {
        read::accounts::data_key(self.db.as_ref()?, rolle)
            .await
            .ok()?
    }
}

/// Broadcast of Webrat changes. Cheap to clone.
#[derive(Clone)]
pub(crate) struct GovernanceFeed {
    tx: broadcast::Sender<Arc<GovernanceEvent>>,
    last_seq: Arc<AtomicU64>,
    following: Arc<AtomicBool>,
    decoder: GovernanceDecoder,
    shutdown: Option<watch::Receiver<bool>>,
    /// The per-process tile grouping of `webrat` subscribers, started with the first one (it
    /// needs the API's tick settings).
    tiles: Arc<OnceLock<TileHub<GovernanceEvent>>>,
}

impl GovernanceFeed {
    /// A feed that never delivers (schema export, tests without live data).
    pub(crate) fn detached() -> Self {
        let (tx, _) = broadcast::channel(16);
        Self {
            tx,
            last_seq: Arc::new(AtomicU64::new(0)),
            following: Arc::new(AtomicBool::new(false)),
            decoder: GovernanceDecoder::new(None, None),
            shutdown: None,
            tiles: Arc::new(OnceLock::new()),
        }
    }

    /// Follow the Ort's governance stream from now on until `shutdown` turns true.
    pub(crate) fn spawn(bus: Bus, db: DatabaseConnection, shutdown: watch::Receiver<bool>) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let feed = Self {
            tx,
            last_seq: Arc::new(AtomicU64::new(0)),
            following: Arc::new(AtomicBool::new(false)),
            decoder: GovernanceDecoder::new(Some(bus.clone()), Some(db)),
            shutdown: Some(shutdown.clone()),
            tiles: Arc::new(OnceLock::new()),
        };
        tokio::spawn(feed.clone().follow(bus, shutdown));
        feed
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<GovernanceEvent>> {
        self.tx.subscribe()
    }

    /// Whether the feed follows the stream from a known position yet.
    pub(crate) fn is_following(&self) -> bool {
        self.following.load(Ordering::SeqCst)
    }

    /// Decodes events the same way for the live feed and for replays.
    pub(crate) fn decoder(&self) -> &GovernanceDecoder {
        &self.decoder
    }

    /// The process's tile hub of the Webrat, started on first use with `config`'s tick and
    /// queue settings.
    pub(crate) fn tiles(&self, config: &ApiConfig) -> &TileHub<GovernanceEvent> {
        self.tiles
            .get_or_init(|| TileHub::spawn(self.clone(), config, self.shutdown.clone()))
    }

    /// Hand a change to the broadcast. The caller moves the position afterwards (the position
    /// invariant above).
    fn send(&self, seq: u64, change: WebratChange) {
        // No receivers is fine: nobody is watching right now.
        let _ = self.tx.send(Arc::new(GovernanceEvent { seq, change }));
    }

    /// As the follower does: send the change at `seq`, then move the position to it.
    #[cfg(test)]
    pub(crate) fn emit(&self, seq: u64, change: WebratChange) {
        self.send(seq, change);
        self.last_seq.store(seq, Ordering::SeqCst);
    }

    async fn follow(self, bus: Bus, shutdown: watch::Receiver<bool>) {
        let feed = &self;
        crate::live::follow_stream(
            &bus,
            StreamDomain::Governance,
            "Webrat feed",
            &self.last_seq,
            &self.following,
            shutdown,
            |seq, payload| {
                let feed = feed.clone();
                async move {
                    if let Some(change) = feed.decoder.decode(&payload).await {
                        feed.send(seq, change);
                    }
                }
            },
        )
        .await;
    }
}

impl TileFeed for GovernanceFeed {
    type Event = GovernanceEvent;
    const NAME: &'static str = "webrat";
    const SUBSCRIBERS_METRIC: &'static str = "wg_webrat_subscribers";
    const RESYNCS_METRIC: &'static str = "wg_webrat_resyncs_total";

    fn subscribe(&self) -> broadcast::Receiver<Arc<GovernanceEvent>> {
        self.tx.subscribe()
    }

    /// The last governance stream sequence the feed has seen (0 before the first).
    fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    // The Webrat's tile hub (the live map's machinery with this feed).

    use std::time::Duration;

    use h3o::Resolution;

    use super::*;
    use crate::tiles::{Delivery, TileSubscription};

    /// The Webrat's hub: ticks every 10 ms, no heartbeat in a test's time.
    fn webrat_hub(feed: &GovernanceFeed, queue: usize) -> &TileHub<GovernanceEvent> {
        feed.tiles(&ApiConfig {
            ws_tick: Duration::from_millis(10),
            heartbeat: Duration::from_secs(3600),
            ws_queue: queue,
            ..ApiConfig::default()
        })
    }

    /// A vote on Antrag `n` of the Weberei at (lat, lng).
    fn antrag_change(n: u128, lat: f64, lng: f64) -> WebratChange {
        let mut change = WebratChange::new(
            uuid::Uuid::from_u128(n),
            WebratChangeKind::Vote,
            chrono::Utc::now(),
        );
        let weberei = Point::new(lat, lng).unwrap().cell(domain::geo::WEAVERY_RES);
        change.place(&weberei.to_string()).unwrap();
        change
    }

    async fn next_delivery<E>(sub: &TileSubscription<E>) -> Delivery<E> {
        tokio::time::timeout(Duration::from_secs(2), sub.next())
            .await
            .expect("no delivery")
    }

    #[tokio::test]
    async fn two_webrat_subscribers_of_one_tile_share_one_diff_and_another_tile_gets_nothing() {
        let feed = GovernanceFeed::detached();
        let hub = webrat_hub(&feed, 64);
        let change = antrag_change(1, 50.98, 11.32);
        let tile = change.point().unwrap().cell(Resolution::Six);
        let (a, at_a) = hub.register(vec![tile]);
        let (b, _) = hub.register(vec![tile]);
        let munich = Point::new(48.14, 11.58).unwrap().cell(Resolution::Six);
        let (elsewhere, _) = hub.register(vec![munich]);
        assert_eq!(at_a, 0, "registered before the first tick");
        // Nothing has awaited since the hub was started (this runtime has one thread, so its
        // tick task has not run yet): the change reaches it all the same.
        feed.emit(1, change);
        let (Delivery::Changes { upto: 1, tiles: ta }, Delivery::Changes { upto: 1, tiles: tb }) =
            (next_delivery(&a).await, next_delivery(&b).await)
        else {
            panic!("both subscribers get the change at position 1");
        };
        assert_eq!((ta.len(), tb.len()), (1, 1));
        assert!(Arc::ptr_eq(&ta[0], &tb[0]), "one diff for the tile, shared");
        assert_eq!(ta[0].events.len(), 1);
        assert_eq!(ta[0].events[0].seq, 1);
        assert_eq!(
            ta[0].events[0].change.antrag_id.to_string(),
            uuid::Uuid::from_u128(1).to_string()
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(200), elsewhere.next())
                .await
                .is_err(),
            "a change in Weimar reached a subscriber in Munich"
        );
        // The next registration starts after what the ticks have covered.
        let (_, at) = hub.register(vec![tile]);
        assert_eq!(at, 1);
    }

    #[tokio::test]
    async fn a_slow_webrat_subscriber_gets_resync_while_a_fast_one_stays_live() {
        let feed = GovernanceFeed::detached();
        let hub = webrat_hub(&feed, 2);
        let tile = antrag_change(0, 50.98, 11.32)
            .point()
            .unwrap()
            .cell(Resolution::Seven);
        let (fast, _) = hub.register(vec![tile]);
        let (slow, _) = hub.register(vec![tile]);
        for seq in 1..=5 {
            feed.emit(seq, antrag_change(u128::from(seq), 50.98, 11.32));
            // One tick per change: the fast subscriber reads each one as it comes.
            match next_delivery(&fast).await {
                Delivery::Changes { upto, tiles } => {
                    assert_eq!(upto, seq);
                    let seqs: Vec<u64> = tiles
                        .iter()
                        .flat_map(|t| t.events.iter().map(|e| e.seq))
                        .collect();
                    assert_eq!(seqs, vec![seq]);
                }
                other => panic!("the fast subscriber got {other:?}"),
            }
        }
        // The slow one read nothing: its queue of two overflowed, and all that is left is one
        // notice covering everything it lost.
        match next_delivery(&slow).await {
            Delivery::Resync { upto: 5 } => {}
            other => panic!("the slow subscriber got {other:?}"),
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slow.next())
                .await
                .is_err(),
            "more than the resync notice was queued"
        );
        // After the notice it is live again, like the fast one.
        feed.emit(6, antrag_change(6, 50.98, 11.32));
        for sub in [&fast, &slow] {
            match next_delivery(sub).await {
                Delivery::Changes { upto: 6, tiles } => assert_eq!(tiles[0].events[0].seq, 6),
                other => panic!("{other:?}"),
            }
        }
    }
}
