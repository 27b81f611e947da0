//! Roles and sessions: creating a role with its data key ([`register_rolle`], used by the
//! `register` mutation through [`register`] and by the demo town), reading a role's data key,
//! opening and revoking sessions, deleting one's role, and executing any command through the
//! bus ([`execute_on`]).

use bus::{Bus, ExecuteError, Executed, Stored};
use chrono::Utc;
use domain::aggregate::Aggregate;
use domain::events::RolleRegistriert;
use domain::rolle::{Registrieren, Rolle, RolleCommand};
use domain::{DomainError, Meta};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::{self, Caller, ClientInfo};
use crate::error::ApiError;
use crate::read;

/// Namespace of ids derived from idempotency keys (UUIDv5), so a retried create hits the
/// same aggregate.
pub(crate) const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c1d_8f0e_2b7a_4e1c_9a57_0d3b_5e2f_7a11);

/// A role to register. `id` and `meta.msg_id` make it idempotent: registering the same id with
/// the same msg id again returns the earlier `RolleRegistriert` (`Outcome::AlreadyDone`).
#[derive(Debug, Clone)]
pub struct NewRolle {
    pub id: Uuid,
    /// Display name (sealed with the role's data key in the event).
    pub name: String,
    /// A point near home; only its coarse H3 cell is kept.
    pub lat: f64,
    pub lng: f64,
    /// Actor (the role itself), hashes of the client, and the msg id.
    pub meta: Meta,
}

/// Register a role: refuse bad input before anything is stored, create (or reuse) the role's
/// data key in `rolle_keys`, then execute `Registrieren` through the bus. A deleted role's key
/// is gone for good: registering its id again is a CONFLICT.
pub async fn register_rolle(
    db: &DatabaseConnection,
    bus: &Bus,
    rolle: NewRolle,
) -> Result<Executed, ApiError> {
    let id = rolle.id;
    let cmd_with = |data_key: [u8; 32]| {
        RolleCommand::Registrieren(Registrieren {
            id,
            name: rolle.name.clone(),
            lat: rolle.lat,
            lng: rolle.lng,
            key: data_key,
            nonce: nonce(),
        })
    };
    // Refuse bad input before a data key is stored for it.
    Rolle::default().decide(&cmd_with([0u8; 32]))?;
    let data_key = match data_key(db, id).await? {
        Some(k) => k,
        None => {
            let fresh: [u8; 32] = rand::random();
            read::accounts::insert_data_key(db, id, fresh).await?;
            data_key(db, id).await?.ok_or_else(|| {
                ApiError::from(DomainError::Conflict(
                    "this role was deleted; register with a new key".into(),
                ))
            })?
        }
    };
    execute_on::<Rolle>(
        bus,
        id,
        &cmd_with(data_key),
        rolle.meta,
        bus::Expect::NewChain,
    )
    .await
}

/// The data key of a role, if it still exists (it is destroyed when the role is deleted).
pub async fn data_key(db: &DatabaseConnection, rolle: Uuid) -> Result<Option<[u8; 32]>, ApiError> {
    Ok(read::accounts::data_key(db, rolle).await?)
}

/// A fresh random nonce for sealing.
pub(crate) fn nonce() -> [u8; 24] {
    rand::random()
}

/// Execute a command through the bus; a domain refusal comes back as `ApiError::Domain`, a
/// failure of NATS (or the fallback) as UNAVAILABLE.
pub async fn execute_on<A: Aggregate>(
    bus: &Bus,
    id: Uuid,
    cmd: &A::Command,
    meta: Meta,
    expect: bus::Expect,
) -> Result<Executed, ApiError> {
    match bus.execute::<A>(id, cmd, meta, Utc::now(), expect).await {
        Ok(done) => Ok(done),
        Err(ExecuteError::Refused(e)) => Err(ApiError::Domain(e)),
        Err(ExecuteError::Failed(e)) => Err(ApiError::unavailable(e)),
    }
}

/// Self-service registration: the client's secret idempotency key, a name, a home point and an
/// optional device label.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub key: String,
    pub name: String,
    pub lat: f64,
    pub lng: f64,
    pub device_label: Option<String>,
}

/// What registering did: the role's `RolleRegistriert` and a new session.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub id: Uuid,
    pub stored: Stored,
    pub payload: RolleRegistriert,
    pub session_id: Uuid,
    pub token: String,
    pub now: chrono::DateTime<Utc>,
    pub replayed: bool,
}

/// Register a role from its secret key (only the key's hash reaches ids and the log) and open a
/// session; a retry with the same key returns the same role with a new session.
pub(crate) async fn register(
    db: &DatabaseConnection,
    bus: &Bus,
    client: Option<&ClientInfo>,
    input: Registration,
) -> Result<Registered, ApiError> {
    let key = &input.key;
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
        actor: domain::Actor::Rolle(id),
        ip_hash: client.and_then(|c| c.ip_hash.clone()),
        ua_hash: client.and_then(|c| c.ua_hash.clone()),
        msg_id: format!("register:{key_hash}"),
    };
    let done = register_rolle(
        db,
        bus,
        NewRolle {
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
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("register produced no event"))?;
    let payload: RolleRegistriert = stored.envelope.decode()?;
    let (session_id, token) = open_session(
        db,
        id,
        client.and_then(|c| c.ua_hash.clone()),
        input.device_label,
    )
    .await?;
    Ok(Registered {
        id,
        stored,
        payload,
        session_id,
        token,
        now: Utc::now(),
        replayed: done.outcome == bus::Outcome::AlreadyDone,
    })
}

/// Open a session for a role; returns (session id, token). The token is shown once: only its
/// hash is stored.
pub(crate) async fn open_session(
    db: &DatabaseConnection,
    rolle_id: Uuid,
    ua_hash: Option<String>,
    label: Option<String>,
) -> Result<(Uuid, String), ApiError> {
    let (token, token_hash) = auth::new_token();
    let id = Uuid::new_v4();
    read::accounts::insert_session(
        db,
        read::accounts::NewSession {
            id,
            rolle_id,
            token_hash,
            now: Utc::now(),
            ua_hash,
            label,
        },
    )
    .await?;
    Ok((id, token))
}

/// End one of the caller's sessions; whether it was live.
pub(crate) async fn revoke_session(
    db: &DatabaseConnection,
    caller: &Caller,
    session_id: Uuid,
) -> Result<bool, ApiError> {
    Ok(read::accounts::revoke_session(db, caller.rolle_id, session_id).await?)
}

/// Delete the caller's role (`UserDeleted`) and end its sessions now (the projection also
/// revokes them when it applies the event). CONFLICT when it is already deleted.
pub(crate) async fn delete_account(
    db: &DatabaseConnection,
    bus: &Bus,
    caller: &Caller,
    meta: Meta,
) -> Result<Stored, ApiError> {
    let cmd = RolleCommand::Loeschen {
        id: caller.rolle_id,
    };
    let done =
        execute_on::<Rolle>(bus, caller.rolle_id, &cmd, meta, bus::Expect::ExistingChain).await?;
    let event = done.events.into_iter().next().ok_or_else(|| {
        ApiError::from(DomainError::Conflict("this role is already deleted".into()))
    })?;
    read::accounts::revoke_all_sessions(db, caller.rolle_id).await?;
    Ok(event)
}
