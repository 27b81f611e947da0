//! The Webrat's live feed: each API instance follows the governance stream itself (an ordered
//! consumer, like [`crate::live::LiveHub`] does for the social stream) and broadcasts the
//! changes of Anträge, placed at their Weberei's centre. `webrat` subscribers get them grouped
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

use async_graphql::ID;
use bus::Bus;
use domain::events::{
    AntragEntschieden, AntragGestellt, EinspruchEingegangen, EventType, FlagOutcome, FlagRaised,
    FlagResolved, FlagTargetKind, StimmeAbgegeben,
};
use domain::geo::Point;
use domain::{AggregateType, Envelope, StreamDomain};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::config::ApiConfig;
use crate::graphql::{AntragChange, AntragChangeKind, AntragNode};
use crate::tiles::{TileEvent, TileFeed, TileHub};

/// Webereien remembered before the cache starts over.
const CACHE_LIMIT: usize = 100_000;

/// One Webrat change with the governance stream position it came from.
#[derive(Debug, Clone)]
pub(crate) struct GovernanceEvent {
    pub seq: u64,
    pub change: AntragChange,
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
    pub(crate) async fn decode(&self, payload: &[u8]) -> Option<AntragChange> {
        let env: Envelope = serde_json::from_slice(payload).ok()?;
        if env.known_type()? == EventType::FlagResolved {
            return self.hidden_antrag(&env).await;
        }
        let id = env.aggregate_id;
        let kind = match env.known_type()? {
            EventType::AntragGestellt => AntragChangeKind::Filed,
            EventType::EinspruchEingegangen => AntragChangeKind::Objection,
            EventType::StimmeAbgegeben => AntragChangeKind::Vote,
            EventType::QuorumErreicht => AntragChangeKind::QuorumReached,
            EventType::AntragEntschieden => AntragChangeKind::Decided,
            _ => return None,
        };
        let mut change = AntragChange::new(id, kind, env.ts);
        match kind {
            AntragChangeKind::Filed => {
                let p: AntragGestellt = env.decode().ok()?;
                self.remember(id, p.weavery_h3.clone());
                change.antrag = AntragNode::from_event(&env).ok();
            }
            AntragChangeKind::Objection => {
                let p: EinspruchEingegangen = env.decode().ok()?;
                let reason = match self.key(p.by).await {
                    Some(key) => domain::privacy::open(&key, &p.reason).ok(),
                    None => None,
                };
                change.objection = Some(crate::graphql::EinspruchNode {
                    antrag_id: ID(id.to_string()),
                    rolle_id: ID(p.by.to_string()),
                    reason,
                    created_at: env.ts,
                });
            }
            AntragChangeKind::Vote => {
                let p: StimmeAbgegeben = env.decode().ok()?;
                change.stimme = Some(crate::graphql::StimmeNode {
                    antrag_id: ID(id.to_string()),
                    rolle_id: ID(p.by.to_string()),
                    vote: p.vote.into(),
                    created_at: env.ts,
                });
            }
            AntragChangeKind::QuorumReached
            | AntragChangeKind::Hidden
            | AntragChangeKind::Resync => {}
            AntragChangeKind::Decided => {
                let p: AntragEntschieden = env.decode().ok()?;
                change.set_decision(&p);
            }
        }
        let weberei = self.weberei(id).await?;
        change.place(&weberei).ok()?;
        Some(change)
    }

    /// A flag resolved as hidden on an Antrag: the Antrag leaves the panel.
    async fn hidden_antrag(&self, env: &Envelope) -> Option<AntragChange> {
        let p: FlagResolved = env.decode().ok()?;
        if p.outcome != FlagOutcome::Hidden {
            return None;
        }
        let (kind, target) = self.flag_target(env.aggregate_id).await?;
        if kind != FlagTargetKind::Antrag {
            return None;
        }
        let mut change = AntragChange::new(target, AntragChangeKind::Hidden, env.ts);
        let weberei = self.weberei(target).await?;
        change.place(&weberei).ok()?;
        Some(change)
    }

    /// What a flag is about: from the projection, else from its chain's `FlagRaised`.
    async fn flag_target(&self, flag: Uuid) -> Option<(FlagTargetKind, Uuid)> {
        if let Some(db) = &self.db
            && let Ok(Some(row)) = db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT target_kind, target_id FROM flags WHERE id = $1",
                    [flag.into()],
                ))
                .await
            && let (Ok(kind), Ok(id)) = (
                row.try_get::<String>("", "target_kind"),
                row.try_get::<Uuid>("", "target_id"),
            )
            && let Some(kind) = FlagTargetKind::parse(&kind)
        {
            return Some((kind, id));
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
            && let Ok(Some(row)) = db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT weavery_h3 FROM antraege WHERE id = $1",
                    [id.into()],
                ))
                .await
            && let Ok(h3) = row.try_get::<i64>("", "weavery_h3")
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
        let row = self
            .db
            .as_ref()?
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT key FROM rolle_keys WHERE rolle_id = $1 AND key IS NOT NULL",
                [rolle.into()],
            ))
            .await
            .ok()??;
        row.try_get::<Vec<u8>>("", "key").ok()?.try_into().ok()
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
    fn send(&self, seq: u64, change: AntragChange) {
        // No receivers is fine: nobody is watching right now.
        let _ = self.tx.send(Arc::new(GovernanceEvent { seq, change }));
    }

    /// As the follower does: send the change at `seq`, then move the position to it.
    #[cfg(test)]
    pub(crate) fn emit(&self, seq: u64, change: AntragChange) {
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
