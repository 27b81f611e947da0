//! Rollen and accounts: register, sessions, logout, deleting one's role, `me`.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::rolle::{Rolle, RolleCommand};
use domain::{Actor, DomainError, Meta};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::common::{ID_NAMESPACE, execute, meta_for, require_caller};
use super::knoten::EventReceipt;
use super::{ClientInfo, Deps};
use crate::auth;
use crate::error::ApiError;

/// A role: how a person appears on the map. Its home is a coarse H3 cell (never an address).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Rolle", complex)]
pub struct RolleNode {
    /// Stable id (UUID).
    pub id: ID,
    /// Display name; the alias ("Gelöschte Rolle …") once the role was deleted.
    pub name: String,
    /// Home cell (H3, resolution 9, hex): where this role's threads start on the map.
    pub home_h3: String,
    /// Latitude of the home cell's centre.
    pub home_lat: f64,
    /// Longitude of the home cell's centre.
    pub home_lng: f64,
    /// When the role registered.
    pub created_at: DateTime<Utc>,
    /// True once the person deleted the role (its personal data is unreadable from then on).
    pub deleted: bool,
}

const ROLLE_COLUMNS: &str = "id, name, h3, ST_Y(point::geometry) AS lat, ST_X(point::geometry) AS lng, created_at, deleted_at";

fn row_to_rolle(row: &sea_orm::QueryResult) -> Result<RolleNode, sea_orm::DbErr> {
    let id: Uuid = row.try_get("", "id")?;
    let h3: i64 = row.try_get("", "h3")?;
    let deleted: Option<DateTime<Utc>> = row.try_get("", "deleted_at")?;
    Ok(RolleNode {
        id: ID(id.to_string()),
        name: row.try_get("", "name")?,
        home_h3: h3o::CellIndex::try_from(h3 as u64)
            .map(|c| c.to_string())
            .unwrap_or_default(),
        home_lat: row.try_get::<Option<f64>>("", "lat")?.unwrap_or_default(),
        home_lng: row.try_get::<Option<f64>>("", "lng")?.unwrap_or_default(),
        created_at: row.try_get("", "created_at")?,
        deleted: deleted.is_some(),
    })
}

/// Batches role look-ups of one request (and across concurrent requests).
pub struct RolleLoader(pub DatabaseConnection);

impl Loader<Uuid> for RolleLoader {
    type Value = RolleNode;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, RolleNode>, Self::Error> {
        let rows = self
            .0
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("SELECT {ROLLE_COLUMNS} FROM rollen WHERE id = ANY($1)"),
                [keys.to_vec().into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let r = row_to_rolle(row).map_err(ApiError::from)?;
            if let Ok(id) = Uuid::parse_str(&r.id) {
                out.insert(id, r);
            }
        }
        Ok(out)
    }
}

pub(crate) async fn load_rolle(ctx: &Context<'_>, id: Uuid) -> Result<Option<RolleNode>> {
    ctx.data::<DataLoader<RolleLoader>>()?.load_one(id).await
}

/// A logged-in device.
#[derive(SimpleObject, Clone, Debug)]
pub struct Session {
    /// Session id (UUID): pass it to `revokeSession` to end the session.
    pub id: ID,
    /// The label given at register/login, if any (e.g. "Laptop").
    pub label: Option<String>,
    /// When the session was opened (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// Last request with this session (updated at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// True for the session making this request.
    pub current: bool,
}

/// Register a new role.
#[derive(InputObject, Clone, Debug)]
pub struct RegisterInput {
    /// A random key of 16-128 visible ASCII characters (e.g. a UUID), kept secret by the client:
    /// retrying `register` with it after a lost answer returns the same role with a new session.
    pub idempotency_key: String,
    /// Display name, 1 to 60 characters. Sealed in the event log; deleting the role makes it
    /// unreadable there.
    pub name: String,
    /// A point near home (latitude); only its coarse H3 cell is kept.
    pub lat: f64,
    /// A point near home (longitude).
    pub lng: f64,
    /// Optional label for this device's session (max 60 characters).
    pub device_label: Option<String>,
}

/// The new role and a session token for it.
#[derive(SimpleObject, Clone, Debug)]
pub struct RegisterPayload {
    /// The registered role (on a replay: the role registered before with this key).
    pub rolle: RolleNode,
    /// Opaque bearer token: send `Authorization: Bearer <token>` (HTTP) or
    /// `{"authorization": "Bearer <token>"}` in `connection_init` (WebSocket). Shown once.
    pub token: String,
    /// The session the token opens (a new one on every call, also on a replay).
    pub session: Session,
    /// The `RolleRegistriert` event.
    pub event: EventReceipt,
    /// True when this key had registered before: the same role, a new session.
    pub replayed: bool,
}

/// Delete the caller's role.
#[derive(InputObject, Clone, Debug)]
pub struct DeleteAccountInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// Must be true: deleting destroys the role's data key; its name and messages become
    /// unreadable everywhere, for good.
    pub confirm: bool,
}

/// The result of `deleteAccount`.
#[derive(SimpleObject, Clone, Debug)]
pub struct DeleteAccountPayload {
    /// The `UserDeleted` event.
    pub event: EventReceipt,
}

#[derive(Default)]
pub struct RolleQuery;

#[Object]
impl RolleQuery {
    /// The caller's role (null without a session).
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        let Ok(caller) = require_caller(ctx) else {
            return Ok(None);
        };
        load_rolle(ctx, caller.rolle_id).await
    }

    /// A role by id.
    async fn rolle(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Id of the role (UUID).")] id: ID,
    ) -> Result<Option<RolleNode>> {
        let id = parse_id(&id, "id")?;
        load_rolle(ctx, id).await
    }

    /// The caller's live sessions (devices), newest first.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let rows = deps
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id, label, created_at, last_seen_at FROM sessions WHERE rolle_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC",
                [caller.rolle_id.into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut out = Vec::new();
        for r in rows {
            let id: Uuid = r.try_get("", "id").map_err(ApiError::from)?;
            out.push(Session {
                id: ID(id.to_string()),
                label: r.try_get("", "label").map_err(ApiError::from)?,
                created_at: r.try_get("", "created_at").map_err(ApiError::from)?,
                last_seen_at: r.try_get("", "last_seen_at").map_err(ApiError::from)?,
                current: id == caller.session_id,
            });
        }
        Ok(out)
    }

    /// Everything this server holds about the caller, opened (DESIGN.md §4 "Privacy": export
    /// gives a person all their data, decrypted), as one JSON document: the role, its sessions,
    /// Knoten, threads, messages, Anträge, votes, objections, delegations (both ways) and flags
    /// raised. Content hidden by moderation is included (it is still the person's). Needs a
    /// session.
    async fn export_my_data(&self, ctx: &Context<'_>) -> Result<Json<serde_json::Value>> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let row = deps
            .db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                EXPORT_SQL,
                [caller.rolle_id.into()],
            ))
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                ApiError::from(DomainError::NotFound(
                    "the role is not projected yet: try again in a moment".into(),
                ))
            })?;
        let doc: serde_json::Value = row.try_get("", "doc").map_err(ApiError::from)?;
        Ok(Json(doc))
    }
}

/// One statement, so the export is one consistent snapshot. `$1` is the role.
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

pub(crate) fn parse_id(id: &ID, field: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        DomainError::validation(field, format!("{:?} is not an id (UUID)", id.as_str())).into()
    })
}

#[derive(Default)]
pub struct RolleMutation;

#[Object]
impl RolleMutation {
    /// Register a role and open a session. Needs no session.
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new role's name and home, and the key that makes retrying safe.")]
        input: RegisterInput,
    ) -> Result<RegisterPayload> {
        let deps = ctx.data::<Deps>()?;
        let client = ctx.data_opt::<ClientInfo>();
        Ok(register(deps, client, input).await?)
    }

    /// End the current session.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        Ok(auth::revoke(&deps.db, caller.rolle_id, caller.session_id)
            .await
            .map_err(ApiError::from)?)
    }

    /// End one of the caller's sessions (e.g. a lost phone). False if it was not live.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Id of the session (`Session.id`).")] id: ID,
    ) -> Result<bool> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let id = parse_id(&id, "id")?;
        Ok(auth::revoke(&deps.db, caller.rolle_id, id)
            .await
            .map_err(ApiError::from)?)
    }

    /// Delete the caller's role (crypto-shredding: its data key is destroyed, its name and
    /// texts become unreadable, every hash chain stays verifiable; an alias stays).
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The confirmation and the idempotency key of this call.")]
        input: DeleteAccountInput,
    ) -> Result<DeleteAccountPayload> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let client = ctx.data_opt::<ClientInfo>();
        let key = super::common::validate_idempotency_key(&input.idempotency_key)?;
        if !input.confirm {
            let e = DomainError::validation(
                "confirm",
                "must be true: deleting a role cannot be undone",
            );
            return Err(ApiError::Domain(e).into());
        }
        let meta = meta_for(&caller, client, "deleteAccount", key);
        let cmd = RolleCommand::Loeschen {
            id: caller.rolle_id,
        };
        let done = execute::<Rolle>(
            deps,
            caller.rolle_id,
            &cmd,
            meta,
            bus::Expect::ExistingChain,
        )
        .await?;
        let event = done.events.first().ok_or_else(|| {
            ApiError::from(DomainError::Conflict("this role is already deleted".into()))
        })?;
        // Sessions end now; the projection also revokes them when it applies UserDeleted.
        deps.db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE sessions SET revoked_at = now() WHERE rolle_id = $1 AND revoked_at IS NULL",
                [caller.rolle_id.into()],
            ))
            .await
            .map_err(ApiError::from)?;
        Ok(DeleteAccountPayload {
            event: event.into(),
        })
    }
}

async fn register(
    deps: &Deps,
    client: Option<&ClientInfo>,
    input: RegisterInput,
) -> Result<RegisterPayload, ApiError> {
    let key = &input.idempotency_key;
    if !(16..=128).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
        let e = DomainError::validation(
            "idempotencyKey",
            "register needs a random key of 16 to 128 visible ASCII characters (e.g. a UUID); keep it secret",
        );
        return Err(ApiError::Domain(e));
    }
    if let Some(label) = &input.device_label
        && label.chars().count() > 60
    {
        let e = DomainError::validation("deviceLabel", "at most 60 characters");
        return Err(ApiError::Domain(e));
    }
    // The key is the client's secret: only its hash goes into ids and the log.
    let key_hash = hex::encode(Sha256::digest(key.as_bytes()));
    let id = Uuid::new_v5(&ID_NAMESPACE, format!("rolle:{key_hash}").as_bytes());
    let meta = Meta {
        actor: Actor::Rolle(id),
        ip_hash: client.and_then(|c| c.ip_hash.clone()),
        ua_hash: client.and_then(|c| c.ua_hash.clone()),
        msg_id: format!("register:{key_hash}"),
    };
    let done = crate::accounts::register_rolle(
        &deps.db,
        &deps.bus,
        crate::accounts::NewRolle {
            id,
            name: input.name.clone(),
            lat: input.lat,
            lng: input.lng,
            meta,
        },
    )
    .await?;
    let stored = done
        .events
        .first()
        .ok_or_else(|| ApiError::unavailable("register produced no event"))?;
    let p: domain::events::RolleRegistriert = stored.envelope.decode()?;
    let cell: h3o::CellIndex = p
        .home_h3
        .parse()
        .map_err(|_| ApiError::unavailable("bad home cell"))?;
    let centre = h3o::LatLng::from(cell);
    let (session_id, token) = auth::create_session(
        &deps.db,
        id,
        client.and_then(|c| c.ua_hash.clone()),
        input.device_label.clone(),
    )
    .await?;
    let now = Utc::now();
    Ok(RegisterPayload {
        rolle: RolleNode {
            id: ID(id.to_string()),
            name: input.name.trim().to_owned(),
            home_h3: p.home_h3,
            home_lat: centre.lat(),
            home_lng: centre.lng(),
            created_at: stored.envelope.ts,
            deleted: false,
        },
        token,
        session: Session {
            id: ID(session_id.to_string()),
            label: input.device_label,
            created_at: now,
            last_seen_at: now,
            current: true,
        },
        event: stored.into(),
        replayed: done.outcome == bus::Outcome::AlreadyDone,
    })
}
