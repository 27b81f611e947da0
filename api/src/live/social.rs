//! Turning an event of the social stream into the change record a viewport shows (neutral
//! records of `live/mod.rs`; `graphql/viewport.rs` makes GraphQL types of them). Events other than
//! `KnotenGeknuepft` carry no point, so the decoder remembers where Knoten are and which Knoten a
//! Faden points at (from the events it saw, else from the projection), and opens message texts
//! with their author's data key (dropped from the cache when the role is deleted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bus::Bus;
use domain::events::{
    EventType, FadenGesponnen, FlagTargetKind, InhaltVerborgen, KnotenGeknuepft, KnotenGestaltet,
    NachrichtGeschrieben,
};
use domain::geo::Point;
use domain::{Actor, AggregateType, Envelope};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    FadenChangeKind, FadenChanged, KnotenChangeKind, KnotenChanged, KnotenCreated, LiveChange,
    NachrichtHidden, NachrichtWritten, SpunFaden,
};
use crate::read;

/// Entries a cache may hold before it starts over.
const CACHE_LIMIT: usize = 200_000;

#[derive(Default)]
struct Caches {
    knoten: HashMap<Uuid, Point>,
    faden: HashMap<Uuid, Uuid>,
    keys: HashMap<Uuid, Option<[u8; 32]>>,
}

/// Decodes social events into live changes. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Decoder {
    bus: Option<Bus>,
    db: Option<DatabaseConnection>,
    caches: Arc<Mutex<Caches>>,
}

fn insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(k, v);
}

impl Decoder {
    pub(crate) fn new(bus: Option<Bus>, db: Option<DatabaseConnection>) -> Self {
        Self {
            bus,
            db,
            caches: Default::default(),
        }
    }

    /// The change `payload` makes to the map, if any.
    pub(crate) async fn decode(&self, payload: &[u8]) -> Option<LiveChange> {
        let env: Envelope = serde_json::from_slice(payload).ok()?;
        let id = env.aggregate_id;
        match env.known_type()? {
            EventType::KnotenGeknuepft => {
                let k = knoten_created(&env)?;
                if let (Ok(p), Ok(mut c)) =
                    (Point::new(k.knoten.lat, k.knoten.lng), self.caches.lock())
                {
                    insert(&mut c.knoten, id, p);
                }
                Some(LiveChange::KnotenCreated(k))
            }
            EventType::KnotenGestaltet => {
                let p: KnotenGestaltet = env.decode().ok()?;
                let point = self.knoten_point(id).await?;
                Some(knoten_change(
                    id,
                    point,
                    KnotenChangeKind::Designed,
                    Some(p.version),
                    Some(p.content),
                    &env,
                ))
            }
            EventType::KnotenVerfallen => {
                let point = self.knoten_point(id).await?;
                Some(knoten_change(
                    id,
                    point,
                    KnotenChangeKind::Decayed,
                    None,
                    None,
                    &env,
                ))
            }
            EventType::KnotenVerzwirnt => {
                let point = self.knoten_point(id).await?;
                Some(knoten_change(
                    id,
                    point,
                    KnotenChangeKind::Twisted,
                    None,
                    None,
                    &env,
                ))
            }
            EventType::NachrichtGeschrieben => {
                let p: NachrichtGeschrieben = env.decode().ok()?;
                let point = self.knoten_point(id).await?;
                let text = match self.key(p.author).await {
                    Some(key) => domain::privacy::open(&key, &p.text).ok(),
                    None => None,
                };
                Some(LiveChange::Nachricht(NachrichtWritten {
                    id: p.nachricht_id,
                    knoten: id,
                    author: p.author,
                    text,
                    mentions: p.mentions,
                    at: env.ts,
                    point,
                }))
            }
            EventType::FadenGesponnen => {
                let p: FadenGesponnen = env.decode().ok()?;
                if let Ok(mut c) = self.caches.lock() {
                    insert(&mut c.faden, id, p.to_knoten);
                }
                let point = self.knoten_point(p.to_knoten).await?;
                Some(LiveChange::FadenChanged(FadenChanged {
                    id,
                    knoten: p.to_knoten,
                    kind: FadenChangeKind::Spun,
                    spun: Some(SpunFaden {
                        typ: p.typ,
                        from_rolle: p.from_rolle,
                        expires_at: p.expires_at,
                    }),
                    at: env.ts,
                    point,
                }))
            }
            t @ (EventType::FadenVerfallen | EventType::FadenVerzwirnt) => {
                let knoten = self.faden_knoten(id).await?;
                let point = self.knoten_point(knoten).await?;
                let kind = if t == EventType::FadenVerfallen {
                    FadenChangeKind::Decayed
                } else {
                    FadenChangeKind::Twisted
                };
                Some(LiveChange::FadenChanged(FadenChanged {
                    id,
                    knoten,
                    kind,
                    spun: None,
                    at: env.ts,
                    point,
                }))
            }
            EventType::InhaltVerborgen => {
                let p: InhaltVerborgen = env.decode().ok()?;
                let point = self.knoten_point(id).await?;
                match p.target.kind {
                    FlagTargetKind::Knoten => Some(knoten_change(
                        id,
                        point,
                        KnotenChangeKind::Hidden,
                        None,
                        None,
                        &env,
                    )),
                    FlagTargetKind::Nachricht => {
                        Some(LiveChange::NachrichtHidden(NachrichtHidden {
                            id: p.target.id,
                            knoten: id,
                            at: env.ts,
                            point,
                        }))
                    }
                    FlagTargetKind::Antrag | FlagTargetKind::Rolle => None,
                }
            }
            EventType::UserDeleted => {
                if let Ok(mut c) = self.caches.lock() {
                    c.keys.insert(id, None);
                }
                None
            }
            _ => None,
        }
    }

    async fn knoten_point(&self, id: Uuid) -> Option<Point> {
        if let Some(p) = self
            .caches
            .lock()
            .ok()
            .and_then(|c| c.knoten.get(&id).copied())
        {
            return Some(p);
        }
        let mut found = None;
        if let Some(db) = &self.db
            && let Ok(Some((lat, lng))) = read::knoten::point(db, id).await
        {
            found = Point::new(lat, lng).ok();
        }
        // Not projected yet: the Knoten's first event says where it is.
        if found.is_none()
            && let Some(bus) = &self.bus
            && let Ok(chain) = bus.history(AggregateType::Knoten, id).await
            && let Some(first) = chain.first()
            && let Ok(k) = first.envelope.decode::<KnotenGeknuepft>()
        {
            found = Point::new(k.lat, k.lng).ok();
        }
        if let (Some(p), Ok(mut c)) = (found, self.caches.lock()) {
            insert(&mut c.knoten, id, p);
        }
        found
    }

    async fn faden_knoten(&self, id: Uuid) -> Option<Uuid> {
        if let Some(k) = self
            .caches
            .lock()
            .ok()
            .and_then(|c| c.faden.get(&id).copied())
        {
            return Some(k);
        }
        let mut found = None;
        if let Some(db) = &self.db
            && let Ok(k) = read::social::faden_knoten(db, id).await
        {
            found = k;
        }
        if found.is_none()
            && let Some(bus) = &self.bus
            && let Ok(chain) = bus.history(AggregateType::Faden, id).await
            && let Some(first) = chain.first()
            && let Ok(p) = first.envelope.decode::<FadenGesponnen>()
        {
            found = Some(p.to_knoten);
        }
        if let (Some(k), Ok(mut c)) = (found, self.caches.lock()) {
            insert(&mut c.faden, id, k);
        }
        found
    }

    async fn key(&self, rolle: Uuid) -> Option<[u8; 32]> {
        if let Some(k) = self
            .caches
            .lock()
            .ok()
            .and_then(|c| c.keys.get(&rolle).copied())
        {
            return k;
        }
        let db = self.db.as_ref()?;
        let key = read::accounts::data_key(db, rolle).await.ok()??;
        if let Ok(mut c) = self.caches.lock() {
            insert(&mut c.keys, rolle, Some(key));
        }
        Some(key)
    }
}

/// The Knoten a `KnotenGeknuepft` event ties.
pub(crate) fn knoten_created(env: &Envelope) -> Option<KnotenCreated> {
    Some(KnotenCreated {
        id: env.aggregate_id,
        knoten: env.decode().ok()?,
        at: env.ts,
        creator: match env.meta.actor {
            Actor::Rolle(id) => Some(id),
            Actor::System => None,
        },
    })
}

fn knoten_change(
    id: Uuid,
    point: Point,
    kind: KnotenChangeKind,
    design_version: Option<u32>,
    content: Option<serde_json::Value>,
    env: &Envelope,
) -> LiveChange {
    LiveChange::KnotenChanged(KnotenChanged {
        id,
        kind,
        point,
        design_version,
        content,
        at: env.ts,
    })
}
