//! Roles, their data keys and sessions: `rollen` (as read by the API), the API's own tables
//! `rolle_keys` and `sessions`, and the one-statement export of everything about a role.
//!
//! SeaORM throughout, except where PostGIS reads the home point (`ST_X`/`ST_Y`: the entity maps
//! `rollen.point` as a `String` sqlx cannot decode, so `rollen` is never loaded whole) and the
//! export (one `json_build_object` statement over ten tables: one consistent snapshot).

use chrono::{DateTime, Utc};
use entity::{rolle_keys, rollen, sessions};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::utc;

/// A role as the map shows it. `lat`/`lng` are its home cell's centre.
#[derive(Debug, Clone)]
pub(crate) struct RolleRow {
    pub id: Uuid,
    pub name: String,
    pub h3: i64,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Roles by id (deleted ones included: they show under their alias).
pub(crate) async fn rollen(db: &DatabaseConnection, ids: &[Uuid]) -> Result<Vec<RolleRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, name, h3, ST_Y(point::geometry) AS lat, ST_X(point::geometry) AS lng, \
             created_at, deleted_at FROM rollen WHERE id = ANY($1)",
            [ids.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(RolleRow {
                id: r.try_get("", "id")?,
                name: r.try_get("", "name")?,
                h3: r.try_get("", "h3")?,
                lat: r.try_get("", "lat")?,
                lng: r.try_get("", "lng")?,
                created_at: r.try_get("", "created_at")?,
                deleted_at: r.try_get("", "deleted_at")?,
            })
        })
        .collect()
}

/// Where a role stands in peer verification.
#[derive(Debug, Clone)]
pub(crate) struct VerificationRow {
    pub id: Uuid,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Vec<Uuid>,
    pub confirmations: Vec<Uuid>,
    pub is_admin: bool,
}

pub(crate) async fn verifications(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> Result<Vec<VerificationRow>, DbErr> {
    let rows: Vec<VerificationTuple> = rollen::Entity::find()
        .select_only()
        .columns([
            rollen::Column::Id,
            rollen::Column::VerifiedAt,
            rollen::Column::VerifiedBy,
            rollen::Column::VerificationConfirmations,
            rollen::Column::IsAdmin,
        ])
        .filter(rollen::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, verified_at, verified_by, confirmations, is_admin)| VerificationRow {
                id,
                verified_at: verified_at.map(utc),
                verified_by,
                confirmations,
                is_admin,
            },
        )
        .collect())
}

type DateTimeTz = sea_orm::prelude::DateTimeWithTimeZone;

/// `(id, verified_at, verified_by, verification_confirmations, is_admin)`.
type VerificationTuple = (Uuid, Option<DateTimeTz>, Vec<Uuid>, Vec<Uuid>, bool);

/// What the projection knows of a role that exists (registered, not deleted).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoleFacts {
    pub verified: bool,
    /// Home cell (resolution 9).
    pub h3: i64,
}

pub(crate) async fn role_facts(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<RoleFacts>, DbErr> {
    let row: Option<(i64, Option<DateTimeTz>)> = rollen::Entity::find_by_id(id)
        .select_only()
        .columns([rollen::Column::H3, rollen::Column::VerifiedAt])
        .filter(rollen::Column::DeletedAt.is_null())
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map(|(h3, verified_at)| RoleFacts {
        verified: verified_at.is_some(),
        h3,
    }))
}

/// The data key of a role, if it still exists (it is destroyed when the role is deleted).
pub(crate) async fn data_key(
    db: &DatabaseConnection,
    rolle: Uuid,
) -> Result<Option<[u8; 32]>, DbErr> {
    let key = rolle_keys::Entity::find_by_id(rolle)
        .filter(rolle_keys::Column::Key.is_not_null())
        .one(db)
        .await?
        .and_then(|k| k.key);
    Ok(key.and_then(|k| k.try_into().ok()))
}

/// Store a data key for a role unless it has one (or had one: a destroyed key stays destroyed).
pub(crate) async fn insert_data_key(
    db: &DatabaseConnection,
    rolle: Uuid,
    key: [u8; 32],
) -> Result<(), DbErr> {
    let row = rolle_keys::ActiveModel {
        rolle_id: ActiveValue::Set(rolle),
        key: ActiveValue::Set(Some(key.to_vec())),
        ..Default::default()
    };
    rolle_keys::Entity::insert(row)
        .on_conflict(
            OnConflict::column(rolle_keys::Column::RolleId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The live session with this token hash as `(session id, role id)`; touches `last_seen_at` at
/// most once a minute.
pub(crate) async fn touch_session(
    db: &DatabaseConnection,
    token_hash: &str,
) -> Result<Option<(Uuid, Uuid)>, DbErr> {
    let touched = sessions::Entity::update_many()
        .col_expr(
            sessions::Column::LastSeenAt,
            Expr::cust(
                "CASE WHEN last_seen_at < now() - interval '1 minute' THEN now() ELSE last_seen_at END",
            ),
        )
        .filter(sessions::Column::TokenHash.eq(token_hash))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec_with_returning(db)
        .await?;
    Ok(touched.into_iter().next().map(|s| (s.id, s.rolle_id)))
}

/// A new session row.
pub(crate) struct NewSession {
    pub id: Uuid,
    pub rolle_id: Uuid,
    pub token_hash: String,
    pub now: DateTime<Utc>,
    pub ua_hash: Option<String>,
    pub label: Option<String>,
}

pub(crate) async fn insert_session(db: &DatabaseConnection, s: NewSession) -> Result<(), DbErr> {
    let row = sessions::ActiveModel {
        id: ActiveValue::Set(s.id),
        rolle_id: ActiveValue::Set(s.rolle_id),
        token_hash: ActiveValue::Set(s.token_hash),
        created_at: ActiveValue::Set(s.now.into()),
        last_seen_at: ActiveValue::Set(s.now.into()),
        revoked_at: ActiveValue::NotSet,
        ua_hash: ActiveValue::Set(s.ua_hash),
        label: ActiveValue::Set(s.label),
    };
    sessions::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Revoke one live session of a role; whether it was live.
pub(crate) async fn revoke_session(
    db: &DatabaseConnection,
    rolle_id: Uuid,
    session_id: Uuid,
) -> Result<bool, DbErr> {
    let r = sessions::Entity::update_many()
        .col_expr(
            sessions::Column::RevokedAt,
            Expr::current_timestamp().into(),
        )
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RolleId.eq(rolle_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Revoke every live session of a role.
pub(crate) async fn revoke_all_sessions(
    db: &DatabaseConnection,
    rolle_id: Uuid,
) -> Result<(), DbErr> {
    sessions::Entity::update_many()
        .col_expr(
            sessions::Column::RevokedAt,
            Expr::current_timestamp().into(),
        )
        .filter(sessions::Column::RolleId.eq(rolle_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// A live session of a role.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    pub id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A role's live sessions, newest first.
pub(crate) async fn live_sessions(
    db: &DatabaseConnection,
    rolle_id: Uuid,
) -> Result<Vec<SessionRow>, DbErr> {
    let rows = sessions::Entity::find()
        .filter(sessions::Column::RolleId.eq(rolle_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .order_by_desc(sessions::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionRow {
            id: r.id,
            label: r.label,
            created_at: utc(r.created_at),
            last_seen_at: utc(r.last_seen_at),
        })
        .collect())
}

/// Everything about a role as one JSON document (one statement: one consistent snapshot), or
/// `None` when the role is not projected.
pub(crate) async fn export(
    db: &DatabaseConnection,
    rolle: Uuid,
) -> Result<Option<serde_json::Value>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            EXPORT_SQL,
            [rolle.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "doc")).transpose()
}

/// `$1` is the role. Raw SQL: one `json_build_object` over ten tables (and PostGIS for the
/// points) is one snapshot; SeaORM would need ten queries.
const EXPORT_SQL: &str = "SELECT json_build_object(
    'exportedAt', now(),
    'rolle', (SELECT json_build_object('id', id, 'name', name, 'createdAt', created_at,
        'homeLat', ST_Y(point::geometry), 'homeLng', ST_X(point::geometry),
        'verifiedAt', verified_at, 'verifiedBy', verified_by) FROM rollen WHERE id = $1),
    'sessions', (SELECT coalesce(json_agg(json_build_object('id', id, 'label', label,
        'createdAt', created_at, 'lastSeenAt', last_seen_at, 'revokedAt', revoked_at)
        ORDER BY created_at), '[]'::json) FROM sessions WHERE rolle_id = $1),
    'knoten', (SELECT coalesce(json_agg(json_build_object('id', id, 'typ', typ, 'title', title,
        'content', content, 'lat', ST_Y(point::geometry), 'lng', ST_X(point::geometry),
        'createdAt', created_at, 'expiresAt', expires_at, 'isYarn', is_yarn,
        'decayedAt', decayed_at, 'hiddenAt', hidden_at) ORDER BY created_at), '[]'::json)
        FROM knoten WHERE created_by = $1),
    'faeden', (SELECT coalesce(json_agg(json_build_object('id', id, 'toKnoten', to_knoten,
        'typ', typ, 'createdAt', created_at, 'expiresAt', expires_at, 'isYarn', is_yarn,
        'decayedAt', decayed_at) ORDER BY created_at), '[]'::json)
        FROM faeden WHERE from_rolle = $1),
    'nachrichten', (SELECT coalesce(json_agg(json_build_object('id', id, 'knotenId', knoten_id,
        'text', text, 'mentions', mentions, 'createdAt', created_at, 'hiddenAt', hidden_at)
        ORDER BY created_at), '[]'::json) FROM nachrichten WHERE author = $1),
    'antraege', (SELECT coalesce(json_agg(json_build_object('id', id, 'title', title,
        'content', content, 'status', status, 'createdAt', created_at,
        'decisionDeadline', decision_deadline, 'hiddenAt', hidden_at) ORDER BY created_at),
        '[]'::json) FROM antraege WHERE created_by = $1),
    'stimmen', (SELECT coalesce(json_agg(json_build_object('antragId', antrag_id, 'vote', vote,
        'createdAt', created_at) ORDER BY created_at), '[]'::json)
        FROM stimmen WHERE rolle_id = $1),
    'einsprueche', (SELECT coalesce(json_agg(json_build_object('antragId', antrag_id,
        'reason', reason, 'createdAt', created_at) ORDER BY created_at), '[]'::json)
        FROM einsprueche WHERE by = $1),
    'delegationen', (SELECT coalesce(json_agg(json_build_object('id', id, 'from', from_rolle,
        'to', to_rolle, 'validUntil', valid_until, 'createdAt', created_at,
        'endedAt', ended_at, 'endedReason', ended_reason) ORDER BY created_at), '[]'::json)
        FROM delegationen WHERE from_rolle = $1 OR to_rolle = $1),
    'flagsRaised', (SELECT coalesce(json_agg(json_build_object('id', id,
        'targetKind', target_kind, 'targetId', target_id, 'reason', reason,
        'createdAt', created_at, 'outcome', outcome) ORDER BY created_at), '[]'::json)
        FROM flags WHERE raised_by = $1)
) AS doc";
