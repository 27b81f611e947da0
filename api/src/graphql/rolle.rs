//! Rollen and accounts: register, sessions, logout, deleting one's role, `me`, the export.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::DomainError;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::Deps;
use super::primitives::{EventReceipt, id, mutation, parse_id, require_caller};
use crate::auth::ClientInfo;
use crate::error::ApiError;
use crate::read::accounts::RolleRow;
use crate::read::{self, h3_hex};
use crate::services::accounts as service;

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

impl From<RolleRow> for RolleNode {
    fn from(r: RolleRow) -> Self {
        Self {
            id: id(r.id),
            name: r.name,
            home_h3: h3_hex(r.h3),
            home_lat: r.lat.unwrap_or_default(),
            home_lng: r.lng.unwrap_or_default(),
            created_at: r.created_at,
            deleted: r.deleted_at.is_some(),
        }
    }
}

/// Batches role look-ups of one request (and across concurrent requests).
pub struct RolleLoader(pub DatabaseConnection);

impl Loader<Uuid> for RolleLoader {
    type Value = RolleNode;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, RolleNode>, Self::Error> {
        let rows = read::accounts::rollen(&self.0, keys)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(|r| (r.id, r.into())).collect())
    }
}

pub(crate) async fn load_rolle(ctx: &Context<'_>, id: Uuid) -> Result<Option<RolleNode>> {
    ctx.data::<DataLoader<RolleLoader>>()?.load_one(id).await
}

/// Several roles in one batch, in the order of `ids` (ids that are not UUIDs or not found are
/// left out).
pub(crate) async fn load_rollen<'a>(
    ctx: &Context<'_>,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<RolleNode>> {
    let ids: Vec<Uuid> = ids
        .into_iter()
        .filter_map(|i| Uuid::parse_str(i).ok())
        .collect();
    let loaded = ctx
        .data::<DataLoader<RolleLoader>>()?
        .load_many(ids.iter().copied())
        .await?;
    Ok(ids.iter().filter_map(|i| loaded.get(i).cloned()).collect())
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
        let rows = read::accounts::live_sessions(&deps.db, caller.rolle_id)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| Session {
                id: id(r.id),
                label: r.label,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                current: r.id == caller.session_id,
            })
            .collect())
    }

    /// Everything this server holds about the caller, opened (DESIGN.md §4 "Privacy": export
    /// gives a person all their data, decrypted), as one JSON document: the role, its sessions,
    /// Knoten, threads, messages, Anträge, votes, objections, delegations (both ways) and flags
    /// raised. Content hidden by moderation is included (it is still the person's). Needs a
    /// session.
    async fn export_my_data(&self, ctx: &Context<'_>) -> Result<Json<serde_json::Value>> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let doc = read::accounts::export(&deps.db, caller.rolle_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                ApiError::from(DomainError::NotFound(
                    "the role is not projected yet: try again in a moment".into(),
                ))
            })?;
        Ok(Json(doc))
    }
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
        Ok(service::revoke_session(&deps.db, &caller, caller.session_id).await?)
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
        Ok(service::revoke_session(&deps.db, &caller, id).await?)
    }

    /// Delete the caller's role (crypto-shredding: its data key is destroyed, its name and
    /// texts become unreadable, every hash chain stays verifiable; an alias stays).
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The confirmation and the idempotency key of this call.")]
        input: DeleteAccountInput,
    ) -> Result<DeleteAccountPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        if !input.confirm {
            let e = DomainError::validation(
                "confirm",
                "must be true: deleting a role cannot be undone",
            );
            return Err(ApiError::Domain(e).into());
        }
        let meta = origin.meta("deleteAccount");
        let event = service::delete_account(&deps.db, &deps.bus, &origin.caller, meta).await?;
        Ok(DeleteAccountPayload {
            event: (&event).into(),
        })
    }
}

async fn register(
    deps: &Deps,
    client: Option<&ClientInfo>,
    input: RegisterInput,
) -> Result<RegisterPayload, ApiError> {
    let name = input.name.trim().to_owned();
    let label = input.device_label.clone();
    let done = service::register(
        &deps.db,
        &deps.bus,
        client,
        service::Registration {
            key: input.idempotency_key,
            name: input.name,
            lat: input.lat,
            lng: input.lng,
            device_label: input.device_label,
        },
    )
    .await?;
    let cell: h3o::CellIndex = done
        .payload
        .home_h3
        .parse()
        .map_err(|_| ApiError::unavailable("bad home cell"))?;
    let centre = h3o::LatLng::from(cell);
    Ok(RegisterPayload {
        rolle: RolleNode {
            id: id(done.id),
            name,
            home_h3: done.payload.home_h3,
            home_lat: centre.lat(),
            home_lng: centre.lng(),
            created_at: done.stored.envelope.ts,
            deleted: false,
        },
        token: done.token,
        session: Session {
            id: id(done.session_id),
            label,
            created_at: done.now,
            last_seen_at: done.now,
            current: true,
        },
        event: (&done.stored).into(),
        replayed: done.replayed,
    })
}
