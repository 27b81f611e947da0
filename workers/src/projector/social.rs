//! The social read model (DESIGN.md §4 "Decay and yarn", "Rooms", "Privacy"): `knoten`,
//! `faeden`, `rollen` and `nachrichten`, one arm per event type, each idempotent.
//!
//! Sealed names and message texts are opened here with the role's data key from `rolle_keys`.
//! What cannot be opened (no key, destroyed key, wrong key) is stored as unreadable, never as
//! ciphertext and never as an error: after `UserDeleted` a rebuild from the archive must go
//! through and leave the data unreadable. The projector never writes a key, it only destroys one.

use std::collections::HashMap;

use domain::events::{
    EventType, FadenGesponnen, FadenVerfallen, FadenVerzwirnt, KnotenGeknuepft, KnotenGestaltet,
    KnotenVerfallen, KnotenVerzwirnt, NachrichtGeschrieben, RolleRegistriert, UserDeleted,
};
use domain::privacy::{self, KEY_BYTES, Sealed};
use domain::{Envelope, Payload};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, Value};
use tracing::warn;
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
        let rows = txn
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT rolle_id, key FROM rolle_keys WHERE rolle_id = ANY($1)",
                [ids.clone().into()],
            ))
            .await?;
        for id in ids {
            keys.known.insert(id, None);
        }
        for row in rows {
            let id: Uuid = row.try_get("", "rolle_id")?;
            keys.known.insert(id, as_key(row.try_get("", "key")?));
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
        let row = txn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT key FROM rolle_keys WHERE rolle_id = $1",
                [rolle.into()],
            ))
            .await?;
        let key = match row {
            Some(row) => as_key(row.try_get("", "key")?),
            None => None,
        };
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
            exec(
                txn,
                "UPDATE knoten SET content = $2, design_version = $3, updated_at = $4 \
                 WHERE id = $1 AND design_version < $3",
                [id.into(), p.content.into(), version.into(), ts.into()],
            )
            .await
        }
        EventType::KnotenVerfallen => {
            let _: KnotenVerfallen = decode(env)?;
            exec(
                txn,
                "UPDATE knoten SET decayed_at = $2 WHERE id = $1 AND decayed_at IS NULL",
                [id.into(), ts.into()],
            )
            .await
        }
        EventType::KnotenVerzwirnt => {
            let _: KnotenVerzwirnt = decode(env)?;
            exec(
                txn,
                "UPDATE knoten SET is_yarn = true, yarn_at = coalesce(yarn_at, $2) WHERE id = $1",
                [id.into(), ts.into()],
            )
            .await
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
            exec(
                txn,
                "UPDATE faeden SET decayed_at = $2 WHERE id = $1",
                [id.into(), ts.into()],
            )
            .await
        }
        EventType::FadenVerzwirnt => {
            let _: FadenVerzwirnt = decode(env)?;
            exec(
                txn,
                "UPDATE faeden SET is_yarn = true, yarn_at = coalesce(yarn_at, $2) WHERE id = $1",
                [id.into(), ts.into()],
            )
            .await
        }
        EventType::NachrichtGeschrieben => {
            let p: NachrichtGeschrieben = decode(env)?;
            let key = keys.get(txn, p.author).await?;
            let text = open(key, &p.text, env);
            exec(
                txn,
                "INSERT INTO nachrichten (id, knoten_id, author, text, mentions, created_at, event_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                [
                    p.nachricht_id.into(),
                    id.into(),
                    p.author.into(),
                    text.into(),
                    p.mentions.into(),
                    ts.into(),
                    env.id.to_string().into(),
                ],
            )
            .await
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
