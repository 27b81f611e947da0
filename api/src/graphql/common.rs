//! What every mutation does the same way: who is calling, the event's meta, executing the
//! command through the bus, and recording refusals.

use async_graphql::Context;
use bus::{ExecuteError, Executed};
use domain::aggregate::Aggregate;
use domain::{Actor, AggregateType, DomainError, Meta};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use super::{ClientInfo, Deps};
use crate::auth::{Caller, InvalidToken};
use crate::error::ApiError;

/// Namespace of ids derived from idempotency keys (UUIDv5), so a retried create hits the
/// same aggregate.
pub(crate) const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c1d_8f0e_2b7a_4e1c_9a57_0d3b_5e2f_7a11);

/// The caller's session, or UNAUTHENTICATED with what to do about it.
pub(crate) fn require_caller(ctx: &Context<'_>) -> Result<Caller, ApiError> {
    if let Some(c) = ctx.data_opt::<Caller>() {
        return Ok(*c);
    }
    if ctx.data_opt::<InvalidToken>().is_some() {
        return Err(ApiError::Unauthenticated(
            "the session token is unknown or revoked: log in again (register creates a new session)".into(),
        ));
    }
    Err(ApiError::Unauthenticated(
        "this needs a session: send `Authorization: Bearer <token>` (the token comes from `register`)".into(),
    ))
}

pub(crate) fn validate_idempotency_key(key: &str) -> Result<&str, ApiError> {
    let ok = (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(key)
    } else {
        Err(DomainError::validation(
            "idempotencyKey",
            "must be 1 to 128 visible ASCII characters (no spaces)",
        )
        .into())
    }
}

/// Meta of an event caused by `caller` through `command` with idempotency key `key`. The msg
/// id is scoped to the caller, so two people's keys never collide.
pub(crate) fn meta_for(
    caller: &Caller,
    client: Option<&ClientInfo>,
    command: &str,
    key: &str,
) -> Meta {
    Meta {
        actor: Actor::Rolle(caller.rolle_id),
        ip_hash: client.and_then(|c| c.ip_hash.clone()),
        ua_hash: client.and_then(|c| c.ua_hash.clone()),
        msg_id: format!("{}:{command}:{key}", caller.rolle_id),
    }
}

/// Execute a command; a domain refusal comes back coded (the error extension records it as
/// `EventRejected`, once, for every refused mutation).
pub(crate) async fn execute<A: Aggregate>(
    deps: &Deps,
    aggregate_type: AggregateType,
    id: Uuid,
    cmd: &A::Command,
    meta: Meta,
    expect_new: bool,
) -> Result<Executed, ApiError> {
    match deps
        .bus
        .execute::<A>(
            aggregate_type,
            id,
            cmd,
            meta,
            chrono::Utc::now(),
            expect_new,
        )
        .await
    {
        Ok(done) => Ok(done),
        Err(ExecuteError::Refused(e)) => Err(ApiError::Domain(e)),
        Err(ExecuteError::Failed(e)) => Err(ApiError::unavailable(e)),
    }
}

/// The data key of a role, if it still exists (it is destroyed when the role is deleted).
pub(crate) async fn data_key(deps: &Deps, rolle: Uuid) -> Result<Option<[u8; 32]>, ApiError> {
    let row = deps
        .db
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
