//! The Webrat's commands: filing, objecting to and voting on Anträge, delegating, peer
//! verification and moderation flags. Facts from outside the aggregate are read from the
//! projections (`read::accounts`, `read::governance`) and put into the command: whether the
//! caller is verified, the caller's home (its Weberei is the Weberei of an Antrag it files),
//! whether a delegate exists, who wrote flagged content.

use bus::{Bus, Stored};
use chrono::{DateTime, Utc};
use domain::antrag::{Abstimmen, Antrag, AntragCommand, Einspruch, Stellen};
use domain::delegation::{Delegation, DelegationCommand, Erstellen, delegation_id};
use domain::events::{
    DelegationErstellt, DelegationWiderrufen, FlagOutcome, FlagRaised, FlagResolved, FlagTarget,
    FlagTargetKind, RolleVerifiziert, StimmeAbgegeben, Vote,
};
use domain::flag::{Aufloesen, Flag, FlagCommand, Melden};
use domain::governance::weberei_of_home;
use domain::rolle::{Rolle, RolleCommand};
use domain::verification::Bestaetigen;
use domain::{Actor, AggregateType, DomainError};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::accounts::{data_key, execute_on, nonce};
use super::{Origin, first_event};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::read;

/// A command's first event, whether it was recorded before (a retry), and the rest.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub stored: Stored,
    pub events: Vec<Stored>,
    pub replayed: bool,
}

async fn execute<A: domain::aggregate::Aggregate>(
    bus: &Bus,
    id: Uuid,
    cmd: &A::Command,
    meta: domain::Meta,
    expect: bus::Expect,
) -> Result<Recorded, ApiError> {
    let done = execute_on::<A>(bus, id, cmd, meta, expect).await?;
    let stored = first_event(&done.events)?.clone();
    Ok(Recorded {
        stored,
        replayed: done.outcome == bus::Outcome::AlreadyDone,
        events: done.events,
    })
}

/// Whether a role is verified (false for unknown and deleted roles).
async fn is_verified(db: &DatabaseConnection, rolle: Uuid) -> Result<bool, ApiError> {
    Ok(read::accounts::role_facts(db, rolle)
        .await?
        .is_some_and(|f| f.verified))
}

/// The caller's data key; UNAUTHENTICATED when its role was deleted.
async fn caller_key(db: &DatabaseConnection, rolle: Uuid) -> Result<[u8; 32], ApiError> {
    data_key(db, rolle)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("this role was deleted".into()))
}

/// An Antrag to file.
#[derive(Debug, Clone)]
pub(crate) struct NewAntrag {
    pub title: String,
    pub content: Option<serde_json::Value>,
    pub deadline: DateTime<Utc>,
}

/// File an Antrag in the caller's Weberei (the Weberei of its home). The id is derived from
/// the caller and the key. A refused deadline is a VALIDATION of field `deadline`.
pub(crate) async fn file_antrag(
    db: &DatabaseConnection,
    bus: &Bus,
    config: &ApiConfig,
    origin: Origin<'_>,
    antrag: NewAntrag,
) -> Result<Recorded, ApiError> {
    let by = origin.caller.rolle_id;
    let me = read::accounts::role_facts(db, by).await?;
    let home = me.and_then(|f| h3o::CellIndex::try_from(f.h3 as u64).ok());
    let weberei = match home {
        Some(home) => weberei_of_home(&home.to_string())?.to_string(),
        None => String::new(),
    };
    let id = origin.derived_id("antrag");
    let cmd = AntragCommand::Stellen(Stellen {
        id,
        title: antrag.title,
        content: antrag.content,
        weavery_h3: weberei,
        deadline: antrag.deadline,
        now: Utc::now(),
        min_deadline: config.min_decision_period,
        by,
        by_verified: me.is_some_and(|f| f.verified),
    });
    execute::<Antrag>(
        bus,
        id,
        &cmd,
        origin.meta("fileAntrag"),
        bus::Expect::NewChain,
    )
    .await
}

/// Object to an open Antrag; the reason is sealed with the caller's data key.
pub(crate) async fn object_to_antrag(
    db: &DatabaseConnection,
    bus: &Bus,
    origin: Origin<'_>,
    antrag: Uuid,
    reason: String,
) -> Result<Recorded, ApiError> {
    let by = origin.caller.rolle_id;
    let by_verified = is_verified(db, by).await?;
    let key = caller_key(db, by).await?;
    let cmd = AntragCommand::Einspruch(Einspruch {
        by,
        reason,
        now: Utc::now(),
        by_verified,
        key,
        nonce: nonce(),
    });
    let meta = origin.meta("objectToAntrag");
    execute::<Antrag>(bus, antrag, &cmd, meta, bus::Expect::ExistingChain).await
}

/// Vote on an open Antrag.
pub(crate) async fn cast_stimme(
    db: &DatabaseConnection,
    bus: &Bus,
    origin: Origin<'_>,
    antrag: Uuid,
    vote: Vote,
) -> Result<(Recorded, StimmeAbgegeben), ApiError> {
    let by = origin.caller.rolle_id;
    let cmd = AntragCommand::Abstimmen(Abstimmen {
        by,
        vote,
        now: Utc::now(),
        by_verified: is_verified(db, by).await?,
    });
    let meta = origin.meta("castStimme");
    let done = execute::<Antrag>(bus, antrag, &cmd, meta, bus::Expect::ExistingChain).await?;
    let p = done.stored.envelope.decode()?;
    Ok((done, p))
}

/// What delegating did.
#[derive(Debug, Clone)]
pub(crate) struct Delegated {
    /// `DelegationErstellt` with its payload; `None` when the very same delegation was in force.
    pub created: Option<(Stored, DelegationErstellt)>,
    pub now: DateTime<Utc>,
    pub replayed: bool,
}

/// Delegate the caller's vote to `to` until `valid_until` (a refused date is a VALIDATION of
/// field `valid_until`).
pub(crate) async fn delegate(
    db: &DatabaseConnection,
    bus: &Bus,
    origin: Origin<'_>,
    to: Uuid,
    valid_until: DateTime<Utc>,
) -> Result<Delegated, ApiError> {
    let from = origin.caller.rolle_id;
    let to_exists = read::accounts::role_facts(db, to).await?.is_some();
    let now = Utc::now();
    let cmd = DelegationCommand::Erstellen(Erstellen {
        from,
        to,
        valid_until,
        now,
        to_exists,
    });
    let meta = origin.meta("delegate");
    let done = execute_on::<Delegation>(
        bus,
        delegation_id(from),
        &cmd,
        meta,
        bus::Expect::ExistingChain,
    )
    .await?;
    let created = match done
        .events
        .iter()
        .find(|s| s.envelope.event_type == "DelegationErstellt")
    {
        Some(s) => Some((s.clone(), s.envelope.decode()?)),
        None => None,
    };
    Ok(Delegated {
        created,
        now,
        replayed: done.outcome == bus::Outcome::AlreadyDone,
    })
}

/// Revoke the caller's delegation (CONFLICT when none is in force).
pub(crate) async fn revoke_delegation(
    bus: &Bus,
    origin: Origin<'_>,
) -> Result<(Recorded, DelegationWiderrufen), ApiError> {
    let cmd = DelegationCommand::Widerrufen { now: Utc::now() };
    let meta = origin.meta("revokeDelegation");
    let id = delegation_id(origin.caller.rolle_id);
    let done = execute::<Delegation>(bus, id, &cmd, meta, bus::Expect::ExistingChain).await?;
    let p = done.stored.envelope.decode()?;
    Ok((done, p))
}

/// Confirm role `target` (peer verification). The second confirmation adds `RolleVerifiziert`,
/// returned as the second element.
pub(crate) async fn confirm_verification(
    db: &DatabaseConnection,
    bus: &Bus,
    origin: Origin<'_>,
    target: Uuid,
) -> Result<(Recorded, Option<Stored>), ApiError> {
    let by = origin.caller.rolle_id;
    let cmd = RolleCommand::Bestaetigen(Bestaetigen {
        target,
        by,
        by_verified: is_verified(db, by).await?,
    });
    let meta = origin.meta("confirmVerification");
    let done = execute::<Rolle>(bus, target, &cmd, meta, bus::Expect::ExistingChain).await?;
    let verified = done
        .events
        .iter()
        .find(|s| s.envelope.event_type == "RolleVerifiziert")
        .cloned();
    if let Some(v) = &verified {
        let _: RolleVerifiziert = v.envelope.decode()?;
    }
    Ok((done, verified))
}

/// The role that wrote flaggable content (`None` for content the system made); NOT_FOUND when
/// there is no such content. Content tied a moment ago may not be projected yet: its own chain
/// says who made it (a message lives on its Knoten's chain, which its id does not name:
/// projection only).
pub(crate) async fn author_of(
    db: &DatabaseConnection,
    bus: &Bus,
    kind: FlagTargetKind,
    id: Uuid,
) -> Result<Option<Uuid>, ApiError> {
    if let Some(author) = read::governance::author_of(db, kind, id).await? {
        return Ok(author);
    }
    let (aggregate, what) = match kind {
        FlagTargetKind::Knoten => (Some(AggregateType::Knoten), "Knoten"),
        FlagTargetKind::Antrag => (Some(AggregateType::Antrag), "Antrag"),
        FlagTargetKind::Nachricht => (None, "Nachricht"),
        FlagTargetKind::Rolle => (None, "Rolle"),
    };
    if let Some(aggregate) = aggregate
        && let Some(first) = bus.history(aggregate, id).await?.first()
    {
        return Ok(match first.envelope.meta.actor {
            Actor::Rolle(author) => Some(author),
            Actor::System => None,
        });
    }
    Err(DomainError::NotFound(format!("there is no {what} {id}")).into())
}

/// What raising a flag did.
#[derive(Debug, Clone)]
pub(crate) struct Raised {
    pub id: Uuid,
    pub done: Recorded,
    pub payload: FlagRaised,
}

/// Report content: a new flag (its id derived from the caller and the key), the reason sealed
/// with the caller's data key.
pub(crate) async fn raise_flag(
    db: &DatabaseConnection,
    bus: &Bus,
    origin: Origin<'_>,
    target: FlagTarget,
    reason: String,
) -> Result<Raised, ApiError> {
    let by = origin.caller.rolle_id;
    let author = author_of(db, bus, target.kind, target.id).await?;
    let key = caller_key(db, by).await?;
    let id = origin.derived_id("flag");
    let cmd = FlagCommand::Melden(Melden {
        target,
        reason,
        by,
        author_of_target: author,
        key,
        nonce: nonce(),
    });
    let done = execute::<Flag>(
        bus,
        id,
        &cmd,
        origin.meta("raiseFlag"),
        bus::Expect::NewChain,
    )
    .await?;
    let payload = done.stored.envelope.decode()?;
    Ok(Raised { id, done, payload })
}

/// What resolving a flag did, with what the flag was raised as.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub done: Recorded,
    pub payload: FlagResolved,
    /// The flag's `FlagRaised`.
    pub raised: Stored,
    pub raised_payload: FlagRaised,
    /// The reporter's reason, from the projection (the API does not open other roles' sealed
    /// texts here).
    pub reason: Option<String>,
}

/// Resolve a flag: keep or hide the content; the reason is sealed with the caller's data key.
pub(crate) async fn resolve_flag(
    db: &DatabaseConnection,
    bus: &Bus,
    origin: Origin<'_>,
    flag: Uuid,
    outcome: FlagOutcome,
    reason: String,
) -> Result<Resolved, ApiError> {
    let by = origin.caller.rolle_id;
    let by_verified = is_verified(db, by).await?;
    let key = caller_key(db, by).await?;
    let cmd = FlagCommand::Aufloesen(Aufloesen {
        outcome,
        reason,
        by,
        by_verified,
        key,
        nonce: nonce(),
    });
    let meta = origin.meta("resolveFlag");
    let history = bus.history(AggregateType::Flag, flag).await?;
    let done = execute::<Flag>(bus, flag, &cmd, meta, bus::Expect::ExistingChain).await?;
    let payload = done.stored.envelope.decode()?;
    let raised = history
        .into_iter()
        .find(|s| s.envelope.event_type == "FlagRaised")
        .ok_or_else(|| ApiError::unavailable("a resolved flag without FlagRaised"))?;
    let raised_payload = raised.envelope.decode()?;
    let reason = read::governance::flag(db, flag)
        .await?
        .and_then(|f| f.reason);
    Ok(Resolved {
        done,
        payload,
        raised,
        raised_payload,
        reason,
    })
}
