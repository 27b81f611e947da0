//! Admin actions (`weberei admin verify|grant <rolle>`): recorded as `AdminActionExecuted` on the
//! system stream, and for `verify` followed by `RolleVerifiziert` on the role's own chain
//! (DESIGN.md §4 "Peer verification": the first roles of an Ort are verified by an admin
//! action). The binary and the tests call these; nothing here is reachable over GraphQL.
//!
//! Idempotency: each action on a target has one chain and one msg id
//! (`admin:<action>:<target>`), so running the same command again returns the recorded event
//! instead of a second one. `verify` decides the role's verification before it records the
//! action, so a role that cannot be verified (unknown, deleted, already verified) leaves nothing
//! behind; after a crash between the two events, running it again reuses the recorded action.

use bus::{Bus, ExecuteError, Outcome, Stored};
use chrono::Utc;
use domain::aggregate::{Aggregate, NewEvent};
use domain::rolle::{Rolle, RolleCommand};
use domain::verification::{ACTION_GRANT_ADMIN, ACTION_VERIFY_ROLLE, admin_action};
use domain::{Actor, AggregateType, DomainError, Envelope, Meta};
use uuid::Uuid;

/// Namespace of the admin action chains (UUIDv5 of `<action>:<target>`). Fixed for ever.
const ADMIN_NAMESPACE: Uuid = Uuid::from_u128(0x3f0b_9a64_d1e2_4c7a_8b15_6e9d_2c40_a7f3);

/// What an admin command did.
#[derive(Debug, Clone)]
pub struct AdminOutcome {
    /// The `AdminActionExecuted` event.
    pub action: Stored,
    /// `RolleVerifiziert`, for `verify`.
    pub verified: Option<Stored>,
    /// True when the action had been recorded before (nothing new was written for it).
    pub replayed: bool,
}

/// Why an admin command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The rules refused it (unknown role, already verified, ...).
    #[error("refused: {0}")]
    Refused(DomainError),
    /// NATS (or the fallback) failed; running the command again is safe.
    #[error("failed: {0}")]
    Failed(bus::BusError),
}

impl From<ExecuteError> for AdminError {
    fn from(e: ExecuteError) -> Self {
        match e {
            ExecuteError::Refused(d) => Self::Refused(d),
            ExecuteError::Failed(b) => Self::Failed(b),
        }
    }
}

/// The chain of one admin action: it records the decided event once.
#[derive(Debug, Clone, Default)]
struct AdminActionChain;

impl Aggregate for AdminActionChain {
    const TYPE: AggregateType = AggregateType::System;

    type Command = NewEvent;

    fn apply(&mut self, _event: &Envelope) -> Result<(), DomainError> {
        Ok(())
    }

    fn decide(&self, cmd: &NewEvent) -> Result<Vec<NewEvent>, DomainError> {
        Ok(vec![cmd.clone()])
    }
}

fn system_meta(msg_id: String) -> Meta {
    Meta {
        actor: Actor::System,
        ip_hash: None,
        ua_hash: None,
        msg_id,
    }
}

async fn record(
    bus: &Bus,
    action: &str,
    target: Uuid,
    detail: &str,
) -> Result<(Stored, bool), AdminError> {
    let event = admin_action(action, Some(target), detail).map_err(AdminError::Refused)?;
    let id = Uuid::new_v5(&ADMIN_NAMESPACE, format!("{action}:{target}").as_bytes());
    let done = bus
        .execute::<AdminActionChain>(
            id,
            &event,
            system_meta(format!("admin:{action}:{target}")),
            Utc::now(),
            bus::Expect::ExistingChain,
        )
        .await?;
    let stored = done.events.into_iter().next().ok_or_else(|| {
        AdminError::Failed(bus::BusError::Unavailable(
            "the admin action produced no event".into(),
        ))
    })?;
    Ok((stored, done.outcome == Outcome::AlreadyDone))
}

/// Verify role `rolle` by an admin action: `AdminActionExecuted { verify_rolle }`, then
/// `RolleVerifiziert { by_admin_action }` on the role's chain.
pub async fn verify_rolle(
    bus: &Bus,
    rolle: Uuid,
    detail: &str,
) -> Result<AdminOutcome, AdminError> {
    // Decide first (with a placeholder id): a refusal must leave no admin action behind.
    let chain = bus
        .history(AggregateType::Rolle, rolle)
        .await
        .map_err(AdminError::Failed)?;
    let state = Rolle::fold(chain.iter().map(|s| &s.envelope)).map_err(AdminError::Refused)?;
    state
        .decide(&RolleCommand::AdminVerifizieren {
            admin_action_id: ulid::Ulid::nil(),
        })
        .map_err(AdminError::Refused)?;
    let (action, replayed) = record(bus, ACTION_VERIFY_ROLLE, rolle, detail).await?;
    let done = bus
        .execute::<Rolle>(
            rolle,
            &RolleCommand::AdminVerifizieren {
                admin_action_id: action.envelope.id,
            },
            system_meta(format!("admin:verify:{}", action.envelope.id)),
            Utc::now(),
            bus::Expect::ExistingChain,
        )
        .await?;
    Ok(AdminOutcome {
        action,
        verified: done.events.into_iter().next(),
        replayed,
    })
}

/// Grant admin rights to role `rolle`: `AdminActionExecuted { grant_admin }` (a projection
/// derives who is an admin from these events). The role must exist and not be deleted.
pub async fn grant_admin(bus: &Bus, rolle: Uuid, detail: &str) -> Result<AdminOutcome, AdminError> {
    let chain = bus
        .history(AggregateType::Rolle, rolle)
        .await
        .map_err(AdminError::Failed)?;
    let state = Rolle::fold(chain.iter().map(|s| &s.envelope)).map_err(AdminError::Refused)?;
    if !state.is_registered() {
        return Err(AdminError::Refused(DomainError::NotFound(format!(
            "there is no Rolle {rolle}"
        ))));
    }
    if state.deleted {
        return Err(AdminError::Refused(DomainError::Conflict(format!(
            "Rolle {rolle} was deleted"
        ))));
    }
    let (action, replayed) = record(bus, ACTION_GRANT_ADMIN, rolle, detail).await?;
    Ok(AdminOutcome {
        action,
        verified: None,
        replayed,
    })
}
