//! What every mutation does the same way: who is calling, the event's meta, executing the
//! command through the bus, and recording refusals.

use async_graphql::Context;
use bus::Executed;
use domain::aggregate::Aggregate;
use domain::{Actor, DomainError, Meta};
use uuid::Uuid;

use super::{ClientInfo, Deps};
use crate::auth::{Caller, InvalidToken};
use crate::error::ApiError;

pub(crate) use crate::accounts::ID_NAMESPACE;

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
    id: Uuid,
    cmd: &A::Command,
    meta: Meta,
    expect: bus::Expect,
) -> Result<Executed, ApiError> {
    crate::accounts::execute_on::<A>(&deps.bus, id, cmd, meta, expect).await
}

/// The data key of a role, if it still exists (it is destroyed when the role is deleted).
pub(crate) async fn data_key(deps: &Deps, rolle: Uuid) -> Result<Option<[u8; 32]>, ApiError> {
    crate::accounts::data_key(&deps.db, rolle).await
}

/// A fresh random nonce for sealing.
pub(crate) fn nonce() -> [u8; 24] {
    crate::accounts::nonce()
}
