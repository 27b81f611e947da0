//! Turning an event of the social stream into the change a viewport shows. Events other than
//! `KnotenGeknuepft` carry no point, so the decoder remembers where Knoten are and which Knoten a
//! Faden points at (from the events it saw, else from the projection), and opens message texts
//! with their author's data key (dropped from the cache when the role is deleted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::{ID, Json};
use bus::Bus;
use domain::events::{
    EventType, FadenGesponnen, FadenTyp, FlagTargetKind, InhaltVerborgen, KnotenGestaltet,
    NachrichtGeschrieben,
};
use domain::geo::Point;
use domain::{AggregateType, Envelope};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::graphql::{
    FadenChange, FadenChangeKind, FadenNode, HiddenNachricht, KnotenChange, KnotenChangeKind,
    KnotenNode, NachrichtNode,
};
use crate::live::LiveChange;

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
                let k = KnotenNode::from_event(&env).ok()?;
                if let (Ok(p), Ok(mut c)) = (Point::new(k.lat, k.lng), self.caches.lock()) {
                    insert(&mut c.knoten, id, p);
                }
                Some(LiveChange::KnotenCreated(k))
            }
            EventType::KnotenGestaltet => {
                let p: KnotenGestaltet = env.decode().ok()?;
                let point = self.knoten_point(id).await?;
                Some(LiveChange::KnotenChanged(knoten_change(
                    id,
                    point,
                    KnotenChangeKind::Designed,
                    Some(p.version),
                    Some(p.content),
                    &env,
                )))
            }
            EventType::KnotenVerfallen => {
                let point = self.knoten_point(id).await?;
                Some(LiveChange::KnotenChanged(knoten_change(
                    id,
                    point,
                    KnotenChangeKind::Decayed,
                    None,
                    None,
                    &env,
                )))
            }
            EventType::KnotenVerzwirnt => {
                let point = self.knoten_point(id).await?;
                Some(LiveChange::KnotenChanged(knoten_change(
                    id,
                    point,
                    KnotenChangeKind::Twisted,
                    None,
                    None,
                    &env,
                )))
            }
            EventType::NachrichtGeschrieben => {
                let p: NachrichtGeschrieben = env.decode().ok()?;
                let point = self.knoten_point(id).await?;
                let text = match self.key(p.author).await {
                    Some(key) => domain::privacy::open(&key, &p.text).ok(),
                    None => None,
                };
                let n = NachrichtNode {
                    id: ID(p.nachricht_id.to_string()),
                    knoten_id: ID(id.to_string()),
                    author_id: ID(p.author.to_string()),
                    text,
                    mention_ids: p.mentions.iter().map(|m| ID(m.to_string())).collect(),
                    created_at: env.ts,
                };
                Some(LiveChange::Nachricht(n, point))
            }
            EventType::FadenGesponnen => {
                let p: FadenGesponnen = env.decode().ok()?;
                if let Ok(mut c) = self.caches.lock() {
                    insert(&mut c.faden, id, p.to_knoten);
                }
                let point = self.knoten_point(p.to_knoten).await?;
                let faden = FadenNode {
                    id: ID(id.to_string()),
                    typ: faden_typ(p.typ),
                    from_rolle_id: ID(p.from_rolle.to_string()),
                    to_knoten_id: ID(p.to_knoten.to_string()),
                    created_at: env.ts,
                    renewed_at: None,
                    expires_at: p.expires_at,
                    is_yarn: false,
                };
                Some(LiveChange::FadenChanged(
                    FadenChange {
                        id: ID(id.to_string()),
                        knoten_id: ID(p.to_knoten.to_string()),
                        kind: FadenChangeKind::Spun,
                        faden: Some(faden),
                        at: env.ts,
                    },
                    point,
                ))
            }
            t @ (EventType::FadenVerfallen | EventType::FadenVerzwirnt) => {
                let knoten = self.faden_knoten(id).await?;
                let point = self.knoten_point(knoten).await?;
                let kind = if t == EventType::FadenVerfallen {
                    FadenChangeKind::Decayed
                } else {
                    FadenChangeKind::Twisted
                };
                Some(LiveChange::FadenChanged(
                    FadenChange {
                        id: ID(id.to_string()),
                        knoten_id: ID(knoten.to_string()),
                        kind,
                        faden: None,
                        at: env.ts,
                    },
                    point,
                ))
            }
            EventType::InhaltVerborgen => {
                let p: InhaltVerborgen = env.decode().ok()?;
                let point = self.knoten_point(id).await?;
                match p.target.kind {
                    FlagTargetKind::Knoten => Some(LiveChange::KnotenChanged(knoten_change(
                        id,
                        point,
                        KnotenChangeKind::Hidden,
                        None,
                        None,
                        &env,
                    ))),
                    FlagTargetKind::Nachricht => Some(LiveChange::NachrichtHidden(
                        HiddenNachricht {
                            id: ID(p.target.id.to_string()),
                            knoten_id: ID(id.to_string()),
                            at: env.ts,
                        },
                        point,
                    )),
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
            && let Ok(Some(row)) = db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT ST_Y(point::geometry) AS lat, ST_X(point::geometry) AS lng FROM knoten WHERE id = $1",
                    [id.into()],
                ))
                .await
        {
            let lat: Option<f64> = row.try_get("", "lat").ok();
            let lng: Option<f64> = row.try_get("", "lng").ok();
            found = lat.zip(lng).and_then(|(lat, lng)| Point::new(lat, lng).ok());
        }
        // Not projected yet: the Knoten's first event says where it is.
        if found.is_none()
            && let Some(bus) = &self.bus
            && let Ok(chain) = bus.history(AggregateType::Knoten, id).await
            && let Some(first) = chain.first()
            && let Ok(k) = KnotenNode::from_event(&first.envelope)
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
            && let Ok(Some(row)) = db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT to_knoten FROM faeden WHERE id = $1",
                    [id.into()],
                ))
                .await
        {
            found = row.try_get::<Uuid>("", "to_knoten").ok();
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
        let row = db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT key FROM rolle_keys WHERE rolle_id = $1 AND key IS NOT NULL",
                [rolle.into()],
            ))
            .await
            .ok()??;
        let key: [u8; 32] = row.try_get::<Vec<u8>>("", "key").ok()?.try_into().ok()?;
        if let Ok(mut c) = self.caches.lock() {
            insert(&mut c.keys, rolle, Some(key));
        }
        Some(key)
    }
}

fn faden_typ(t: FadenTyp) -> crate::graphql::FadenTypGql {
    match t {
        FadenTyp::Interesse => crate::graphql::FadenTypGql::Interesse,
        FadenTyp::Beitrag => crate::graphql::FadenTypGql::Beitrag,
        FadenTyp::Mitarbeit => crate::graphql::FadenTypGql::Mitarbeit,
    }
}

fn knoten_change(
    id: Uuid,
    point: Point,
    kind: KnotenChangeKind,
    design_version: Option<u32>,
    content: Option<serde_json::Value>,
    env: &Envelope,
) -> KnotenChange {
    KnotenChange {
        id: ID(id.to_string()),
        kind,
        lat: point.lat(),
        lng: point.lng(),
        design_version: design_version.map(|v| v as i32),
        content: content.map(Json),
        at: env.ts,
    }
}
