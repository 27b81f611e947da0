//! The social read model (DESIGN.md §4 "Decay and yarn", "Rooms", "Privacy"): `knoten`,
//! `faeden`, `rollen` and `nachrichten`, one arm per event type, each idempotent.
//!
//! Sealed names and message texts are opened here with the role's data key from `rolle_keys`.
//! What cannot be opened (no key, destroyed key, wrong key) is stored as unreadable, never as
//! ciphertext and never as an error: after `UserDeleted` a rebuild from the archive must go
//! through and leave the data unreadable. The projector never writes a key, it only destroys one.
//!
//! Raw SQL kept here (everything else goes through the `entity` crate): the PostGIS points of
//! `knoten` and `rollen` (`ST_MakePoint`), the multi-row `unnest` inserts of [`Pending`] (the
//! batch path), the Faden upsert that renews from `EXCLUDED`, and `UserDeleted`'s
//! crypto-shredding, one statement over four tables so that it cannot half happen.

use std::collections::HashMap;

use domain::events::{
    EventType, FadenGesponnen, FadenVerfallen, FadenVerzwirnt, InhaltVerborgen, KnotenGeknuepft,
    KnotenGestaltet, KnotenVerfallen, KnotenVerzwirnt, NachrichtGeschrieben, RolleRegistriert,
    UserDeleted,
};
use domain::privacy::{self, KEY_BYTES, Sealed};
use domain::{Envelope, Payload};
use entity::{faeden, flags, knoten, nachrichten, rolle_keys};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Statement, Value,
};
use tracing::warn;

use super::rows::insert_new;
use uuid::Uuid;

/// The name a role is shown with when its sealed name cannot be opened.
pub(super) const UNREADABLE_NAME: &str = "[unlesbar]";

type Key = [u8; KEY_BYTES];

/// Whether this module projects events of type `t`.
pub(super) fn projects(t: EventType) -> bool {
    use EventType::*;
    matches!(
        t,
        KnotenGeknuepft
            | KnotenGestaltet
            | KnotenVerfallen
            | KnotenVerzwirnt
            | FadenGesponnen
            | FadenVerfallen
            | FadenVerzwirnt
            | NachrichtGeschrieben
            | InhaltVerborgen
            | RolleRegistriert
            | UserDeleted
    )
}

/// The data keys one batch needs, read once per batch and kept in step with the `UserDeleted`
/// events of the batch itself (a message after the deletion in the same batch stays unreadable).
#[derive(Default)]
pub(super) struct Keys {
    /// `None`: no key, or destroyed.
    known: HashMap<Uuid, Option<Key>>,
}

impl Keys {
    /// One query for the keys of every role whose data the batch opens.
    pub(super) async fn prefetch<'a>(
        txn: &DatabaseTransaction,
        envs: impl Iterator<Item = &'a Envelope>,
    ) -> Result<Self, DbErr> {
        let mut ids: Vec<Uuid> = envs.filter_map(key_owner).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut keys = Self::default();
        if ids.is_empty() {
            return Ok(keys);
        }
        let rows: Vec<(Uuid, Option<Vec<u8>>)> = rolle_keys::Entity::find()
            .select_only()
            .columns([rolle_keys::Column::RolleId, rolle_keys::Column::Key])
            .filter(super::any_of(rolle_keys::Column::RolleId, ids.clone()))
            .into_tuple()
            .all(txn)
            .await?;
        for id in ids {
            keys.known.insert(id, None);
        }
        for (id, key) in rows {
            keys.known.insert(id, as_key(key));
        }
        Ok(keys)
    }

    /// The live key of `rolle`; asks the database only for a role the prefetch did not cover.
    pub(super) async fn get(
        &mut self,
        txn: &DatabaseTransaction,
        rolle: Uuid,
    ) -> Result<Option<Key>, DbErr> {
        if let Some(key) = self.known.get(&rolle) {
            return Ok(*key);
        }
        let key: Option<Option<Vec<u8>>> = rolle_keys::Entity::find_by_id(rolle)
            .select_only()
            .column(rolle_keys::Column::Key)
            .into_tuple()
            .one(txn)
            .await?;
        let key = key.and_then(as_key);
        self.known.insert(rolle, key);
        Ok(key)
    }

    fn destroy(&mut self, rolle: Uuid) {
        self.known.insert(rolle, None);
    }
}

/// Whose key opening this event's sealed data needs, if any.
fn key_owner(env: &Envelope) -> Option<Uuid> {
    match env.known_type()? {
        EventType::RolleRegistriert => Some(env.aggregate_id),
        EventType::NachrichtGeschrieben => env.payload.get("author")?.as_str()?.parse().ok(),
        _ => super::governance::key_owner(env),
    }
}

fn as_key(bytes: Option<Vec<u8>>) -> Option<Key> {
    // The table's CHECK keeps every key at 32 bytes; anything else counts as no key.
    bytes?.try_into().ok()
}

/// The plaintext, or `None` if it cannot be opened with `key`.
pub(super) fn open(key: Option<Key>, sealed: &Sealed, env: &Envelope) -> Option<String> {
    let key = key?;
    match privacy::open(&key, sealed) {
        Ok(text) => Some(text),
        Err(e) => {
            // A live key that does not open the text: sealed for someone else, or altered.
            warn!(event = %env.id, kid = %sealed.kid, error = %e, "sealed text does not open with its role's key");
            None
        }
    }
}

pub(super) fn decode<P: Payload>(env: &Envelope) -> Result<P, DbErr> {
    env.decode()
        .map_err(|e| DbErr::Custom(format!("{} payload: {e}", P::TYPE.as_str())))
}

pub(super) async fn exec<const N: usize>(
    txn: &DatabaseTransaction,
    sql: &str,
    values: [Value; N],
) -> Result<(), DbErr> {
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await?;
    Ok(())
}

pub(super) fn cell(hex: &str, what: &str) -> Result<h3o::CellIndex, DbErr> {
    hex.parse()
        .map_err(|e| DbErr::Custom(format!("{what} h3 {hex}: {e}")))
}

/// Apply one event of a type for which [`projects`] is true.
pub(super) async fn project(
    txn: &DatabaseTransaction,
    env: &Envelope,
    event_type: EventType,
    keys: &mut Keys,
) -> Result<(), DbErr> {
    let id = env.aggregate_id;
    let ts = env.ts;
    match event_type {
        EventType::KnotenGeknuepft => {
            let p: KnotenGeknuepft = decode(env)?;
            let cell = cell(&p.h3, "KnotenGeknuepft")?;
            let actor = match env.meta.actor {
                domain::Actor::Rolle(id) => Some(id),
                domain::Actor::System => None,
            };
            exec(
                txn,
                "INSERT INTO knoten (id, typ, title, content, point, h3, created_by, created_at, expires_at, is_yarn, design_version, updated_at) \
                 VALUES ($1, $2::knoten_typ, $3, $4, ST_SetSRID(ST_MakePoint($5, $6), 4326)::geography, $7, $8, $9, $10, false, 0, $9) \
                 ON CONFLICT (id) DO NOTHING",
                [
                    id.into(),
                    p.typ.as_str().into(),
                    p.title.into(),
                    p.content.into(),
                    p.lng.into(),
                    p.lat.into(),
                    domain::geo::cell_to_i64(cell).into(),
                    actor.into(),
                    ts.into(),
                    p.expires_at.into(),
                ],
            )
            .await
        }
        EventType::KnotenGestaltet => {
            let p: KnotenGestaltet = decode(env)?;
            let version = i32::try_from(p.version).map_err(|_| {
                DbErr::Custom(format!(
                    "KnotenGestaltet version {} out of range",
                    p.version
                ))
            })?;
            // Versions only move forward, so applying an old edit again cannot undo a newer one.
            knoten::Entity::update_many()
                .col_expr(knoten::Column::Content, Expr::value(p.content))
                .col_expr(knoten::Column::DesignVersion, Expr::value(version))
                .col_expr(knoten::Column::UpdatedAt, Expr::value(ts))
                .filter(knoten::Column::Id.eq(id))
                .filter(knoten::Column::DesignVersion.lt(version))
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::KnotenVerfallen => {
            let _: KnotenVerfallen = decode(env)?;
            knoten::Entity::update_many()
                .col_expr(knoten::Column::DecayedAt, Expr::value(ts))
                .filter(knoten::Column::Id.eq(id))
                .filter(knoten::Column::DecayedAt.is_null())
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::KnotenVerzwirnt => {
            let _: KnotenVerzwirnt = decode(env)?;
            knoten::Entity::update_many()
                .col_expr(knoten::Column::IsYarn, Expr::value(true))
                .col_expr(
                    knoten::Column::YarnAt,
                    Expr::col(knoten::Column::YarnAt).if_null(ts),
                )
                .filter(knoten::Column::Id.eq(id))
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::FadenGesponnen => {
            let p: FadenGesponnen = decode(env)?;
            // The same (role, knoten, typ) again is the same Faden: renewed, and revived if it
            // had decayed; it keeps its first created_at.
            exec(
                txn,
                "INSERT INTO faeden (id, from_rolle, to_knoten, typ, created_at, expires_at, is_yarn) \
                 VALUES ($1, $2, $3, $4::faden_typ, $5, $6, false) \
                 ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at, \
                     renewed_at = EXCLUDED.created_at, decayed_at = NULL",
                [
                    id.into(),
                    p.from_rolle.into(),
                    p.to_knoten.into(),
                    p.typ.as_str().into(),
                    ts.into(),
                    p.expires_at.into(),
                ],
            )
            .await
        }
        EventType::FadenVerfallen => {
            let _: FadenVerfallen = decode(env)?;
            faeden::Entity::update_many()
                .col_expr(faeden::Column::DecayedAt, Expr::value(ts))
                .filter(faeden::Column::Id.eq(id))
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::FadenVerzwirnt => {
            let _: FadenVerzwirnt = decode(env)?;
            faeden::Entity::update_many()
                .col_expr(faeden::Column::IsYarn, Expr::value(true))
                .col_expr(
                    faeden::Column::YarnAt,
                    Expr::col(faeden::Column::YarnAt).if_null(ts),
                )
                .filter(faeden::Column::Id.eq(id))
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::NachrichtGeschrieben => {
            let p: NachrichtGeschrieben = decode(env)?;
            let key = keys.get(txn, p.author).await?;
            let text = open(key, &p.text, env);
            insert_new(
                txn,
                nachrichten::Entity::insert(nachrichten::ActiveModel {
                    id: Set(p.nachricht_id),
                    knoten_id: Set(id),
                    author: Set(p.author),
                    text: Set(text),
                    mentions: Set(p.mentions),
                    created_at: Set(ts.into()),
                    event_id: Set(env.id.to_string()),
                    ..Default::default()
                }),
                Some(nachrichten::Column::Id),
            )
            .await
        }
        EventType::InhaltVerborgen => {
            // The content itself was hidden by `FlagResolved` (governance projector); this
            // records that the map was told, so the jobs worker appends it only once.
            let p: InhaltVerborgen = decode(env)?;
            flags::Entity::update_many()
                .col_expr(flags::Column::MapHiddenAt, Expr::value(ts))
                .filter(flags::Column::Id.eq(p.flag_id))
                .filter(flags::Column::MapHiddenAt.is_null())
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::RolleRegistriert => {
            let p: RolleRegistriert = decode(env)?;
            let key = keys.get(txn, id).await?;
            let name = open(key, &p.name, env).unwrap_or_else(|| UNREADABLE_NAME.to_owned());
            let home = cell(&p.home_h3, "RolleRegistriert")?;
            let centre = h3o::LatLng::from(home);
            exec(
                txn,
                "INSERT INTO rollen (id, name, h3, point, verified_by, created_at) \
                 VALUES ($1, $2, $3, ST_SetSRID(ST_MakePoint($4, $5), 4326)::geography, '{}', $6) \
                 ON CONFLICT (id) DO NOTHING",
                [
                    id.into(),
                    name.into(),
                    domain::geo::cell_to_i64(home).into(),
                    centre.lng().into(),
                    centre.lat().into(),
                    ts.into(),
                ],
            )
            .await
        }
        EventType::UserDeleted => {
            let p: UserDeleted = decode(env)?;
            keys.destroy(id);
            // Crypto-shredding and its consequences in one statement: the key goes (a destroyed
            // row is written if there was none, so no key can be stored for this role later), the
            // alias replaces the name, the texts go, the sessions end.
            exec(
                txn,
                "WITH shredded AS ( \
                     INSERT INTO rolle_keys (rolle_id, key, created_at, destroyed_at) \
                     VALUES ($1, NULL, $2, $2) \
                     ON CONFLICT (rolle_id) DO UPDATE \
                         SET key = NULL, destroyed_at = coalesce(rolle_keys.destroyed_at, EXCLUDED.destroyed_at) \
                     RETURNING 1), \
                 renamed AS (UPDATE rollen SET name = $3, deleted_at = $2 WHERE id = $1 RETURNING 1), \
                 silenced AS (UPDATE nachrichten SET text = NULL WHERE author = $1 RETURNING 1), \
                 revoked AS ( \
                     UPDATE sessions SET revoked_at = $2 WHERE rolle_id = $1 AND revoked_at IS NULL \
                     RETURNING 1) \
                 SELECT 1",
                [id.into(), ts.into(), p.alias.into()],
            )
            .await
        }
        _ => Ok(()),
    }
}

/// New Knoten and spun Fäden of a batch, gathered into one multi-row statement per table.
/// Both commute with each other; the projector flushes before any other event, so every event
/// still sees the effects of those before it. The same row twice flushes first (one
/// `INSERT ... ON CONFLICT DO UPDATE` may not touch a row twice).
#[derive(Default)]
pub(super) struct Pending {
    knoten: KnotenRows,
    faeden: FadenRows,
}

#[derive(Default)]
struct KnotenRows {
    ids: Vec<Uuid>,
    typ: Vec<String>,
    title: Vec<String>,
    content: Vec<String>,
    lng: Vec<f64>,
    lat: Vec<f64>,
    h3: Vec<i64>,
    /// '' for a system actor (arrays carry no NULLs here).
    created_by: Vec<String>,
    ts: Vec<chrono::DateTime<chrono::Utc>>,
    expires_at: Vec<chrono::DateTime<chrono::Utc>>,
    seen: std::collections::HashSet<Uuid>,
}

#[derive(Default)]
struct FadenRows {
    ids: Vec<Uuid>,
    from_rolle: Vec<Uuid>,
    to_knoten: Vec<Uuid>,
    typ: Vec<String>,
    ts: Vec<chrono::DateTime<chrono::Utc>>,
    expires_at: Vec<chrono::DateTime<chrono::Utc>>,
    seen: std::collections::HashSet<Uuid>,
}

impl Pending {
    /// Whether events of type `t` go through [`Pending::push`] instead of [`project`].
    pub(super) fn takes(t: EventType) -> bool {
        matches!(t, EventType::KnotenGeknuepft | EventType::FadenGesponnen)
    }

    /// Gather one event of a type for which [`Pending::takes`] is true.
    pub(super) async fn push(
        &mut self,
        txn: &DatabaseTransaction,
        env: &Envelope,
        t: EventType,
    ) -> Result<(), DbErr> {
        let id = env.aggregate_id;
        match t {
            EventType::KnotenGeknuepft => {
                let p: KnotenGeknuepft = decode(env)?;
                let cell = cell(&p.h3, "KnotenGeknuepft")?;
                if self.knoten.seen.contains(&id) {
                    self.flush(txn).await?;
                }
                let k = &mut self.knoten;
                k.seen.insert(id);
                k.ids.push(id);
                k.typ.push(p.typ.as_str().to_owned());
                k.title.push(p.title);
                k.content.push(p.content.to_string());
                k.lng.push(p.lng);
                k.lat.push(p.lat);
                k.h3.push(domain::geo::cell_to_i64(cell));
                k.created_by.push(match env.meta.actor {
                    domain::Actor::Rolle(id) => id.to_string(),
                    domain::Actor::System => String::new(),
                });
                k.ts.push(env.ts);
                k.expires_at.push(p.expires_at);
            }
            EventType::FadenGesponnen => {
                let p: FadenGesponnen = decode(env)?;
                if self.faeden.seen.contains(&id) {
                    self.flush(txn).await?;
                }
                let f = &mut self.faeden;
                f.seen.insert(id);
                f.ids.push(id);
                f.from_rolle.push(p.from_rolle);
                f.to_knoten.push(p.to_knoten);
                f.typ.push(p.typ.as_str().to_owned());
                f.ts.push(env.ts);
                f.expires_at.push(p.expires_at);
            }
            other => {
                return Err(DbErr::Custom(format!(
                    "{} is not gathered into batches",
                    other.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Write what was gathered (one statement per table) and start over.
    pub(super) async fn flush(&mut self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        let k = std::mem::take(&mut self.knoten);
        if !k.ids.is_empty() {
            // Same statement as the single-row arm in `project`, over arrays.
            exec(
                txn,
                "INSERT INTO knoten (id, typ, title, content, point, h3, created_by, created_at, expires_at, is_yarn, design_version, updated_at) \
                 SELECT id, typ::knoten_typ, title, content::jsonb, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography, h3, \
                        NULLIF(created_by, '')::uuid, ts, expires_at, false, 0, ts \
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::int8[], \
                             $8::text[], $9::timestamptz[], $10::timestamptz[]) \
                      AS x(id, typ, title, content, lng, lat, h3, created_by, ts, expires_at) \
                 ON CONFLICT (id) DO NOTHING",
                [
                    k.ids.into(),
                    k.typ.into(),
                    k.title.into(),
                    k.content.into(),
                    k.lng.into(),
                    k.lat.into(),
                    k.h3.into(),
                    k.created_by.into(),
                    k.ts.into(),
                    k.expires_at.into(),
                ],
            )
            .await?;
        }
        let f = std::mem::take(&mut self.faeden);
        if !f.ids.is_empty() {
            exec(
                txn,
                "INSERT INTO faeden (id, from_rolle, to_knoten, typ, created_at, expires_at, is_yarn) \
                 SELECT id, from_rolle, to_knoten, typ::faden_typ, ts, expires_at, false \
                 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::timestamptz[]) \
                      AS x(id, from_rolle, to_knoten, typ, ts, expires_at) \
                 ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at, \
                     renewed_at = EXCLUDED.created_at, decayed_at = NULL",
                [
                    f.ids.into(),
                    f.from_rolle.into(),
                    f.to_knoten.into(),
                    f.typ.into(),
                    f.ts.into(),
                    f.expires_at.into(),
                ],
            )
            .await?;
        }
        Ok(())
    }
}
