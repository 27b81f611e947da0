//! Roles, their data keys and sessions: `rollen` (as read by the API), the API's own tables
//! `rolle_keys` and `sessions`, and the one-statement export of everything about a role.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use uuid::Uuid;

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
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, verified_at, verified_by, verification_confirmations, is_admin \
             FROM rollen WHERE id = ANY($1)",
            [ids.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(VerificationRow {
                id: r.try_get("", "id")?,
                verified_at: r.try_get("", "verified_at")?,
                verified_by: r
                    .try_get::<Option<Vec<Uuid>>>("", "verified_by")?
                    .unwrap_or_default(),
                confirmations: r
                    .try_get::<Option<Vec<Uuid>>>("", "verification_confirmations")?
                    .unwrap_or_default(),
                is_admin: r.try_get::<Option<bool>>("", "is_admin")?.unwrap_or(false),
            })
        })
        .collect()
}

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
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT h3, verified_at IS NOT NULL AS verified FROM rollen WHERE id = $1 AND deleted_at IS NULL",
            [id.into()],
        ))
        .await?;
    row.map(|r| {
        Ok(RoleFacts {
            verified: r.try_get("", "verified")?,
            h3: r.try_get("", "h3")?,
        })
    })
    .transpose()
}

/// The data key of a role, if it still exists (it is destroyed when the role is deleted).
pub(crate) async fn data_key(
    db: &DatabaseConnection,
    rolle: Uuid,
) -> Result<Option<[u8; 32]>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT key FROM rolle_keys WHERE rolle_id = $1 AND key IS NOT NULL",
            [rolle.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let key: Vec<u8> = row.try_get("", "key")?;
    Ok(key.try_into().ok())
}

/// Store a data key for a role unless it has one (or had one: a destroyed key stays destroyed).
pub(crate) async fn insert_data_key(
    db: &DatabaseConnection,
    rolle: Uuid,
    key: [u8; 32],
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO rolle_keys (rolle_id, key) VALUES ($1, $2) ON CONFLICT (rolle_id) DO NOTHING",
        [rolle.into(), key.to_vec().into()],
    ))
    .await?;
    Ok(())
}

/// The live session with this token hash as `(session id, role id)`; touches `last_seen_at` at
/// most once a minute.
pub(crate) async fn touch_session(
    db: &DatabaseConnection,
    token_hash: &str,
) -> Result<Option<(Uuid, Uuid)>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE sessions SET last_seen_at = CASE WHEN last_seen_at < now() - interval '1 minute' THEN now() ELSE last_seen_at END \
             WHERE token_hash = $1 AND revoked_at IS NULL RETURNING id, rolle_id",
            [token_hash.into()],
        ))
        .await?;
    row.map(|r| Ok((r.try_get("", "id")?, r.try_get("", "rolle_id")?)))
        .transpose()
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
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO sessions (id, rolle_id, token_hash, created_at, last_seen_at, ua_hash, label) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        [s.id.into(), s.rolle_id.into(), s.token_hash.into(), s.now.into(), s.ua_hash.into(), s.label.into()],
    ))
    .await?;
    Ok(())
}

/// Revoke one live session of a role; whether it was live.
pub(crate) async fn revoke_session(
    db: &DatabaseConnection,
    rolle_id: Uuid,
    session_id: Uuid,
) -> Result<bool, DbErr> {
    let r = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND rolle_id = $2 AND revoked_at IS NULL",
            [session_id.into(), rolle_id.into()],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Revoke every live session of a role.
pub(crate) async fn revoke_all_sessions(
    db: &DatabaseConnection,
    rolle_id: Uuid,
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE sessions SET revoked_at = now() WHERE rolle_id = $1 AND revoked_at IS NULL",
        [rolle_id.into()],
    ))
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
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, label, created_at, last_seen_at FROM sessions WHERE rolle_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC",
            [rolle_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionRow {
                id: r.try_get("", "id")?,
                label: r.try_get("", "label")?,
                created_at: r.try_get("", "created_at")?,
                last_seen_at: r.try_get("", "last_seen_at")?,
            })
        })
        .collect()
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
