//! Roles outside GraphQL: creating a role with its data key, and reading a role's data key.
//! The `register` mutation and the demo town (`weberei demo`, `weberei up`) both create roles
//! through [`register_rolle`]; the mutation adds the idempotency key, the session and the
//! payload around it.

use bus::{Bus, ExecuteError, Executed};
use chrono::Utc;
use domain::aggregate::Aggregate;
use domain::rolle::{Registrieren, Rolle, RolleCommand};
use domain::{DomainError, Meta};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::error::ApiError;

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
            db.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO rolle_keys (rolle_id, key) VALUES ($1, $2) ON CONFLICT (rolle_id) DO NOTHING",
                [id.into(), fresh.to_vec().into()],
            ))
            .await?;
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
