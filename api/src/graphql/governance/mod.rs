//! The Webrat (DESIGN.md §4 "Governance", "Peer verification", "Moderation"): Anträge with their
//! objections, votes, tally and audit; 1:1 delegation; peer verification; moderation threads.
//!
//! Facts from outside the aggregate are read from the projections and put into the command:
//! whether the caller is verified (`rollen.verified_at`), the caller's home (its Weberei is
//! the Weberei of an Antrag it files), whether a delegate exists, who wrote flagged content.
//!
//! Choices beyond DESIGN.md:
//! - Any verified role of the Ort may vote on and object to any Antrag; the domain leaves this
//!   to the caller and the quorum base is the Weberei's active roles either way.
//! - "The tally so far" counts the direct votes of the projection and the delegations active
//!   now whose delegators are verified, with the same rules as the decision
//!   (`governance::tally`); once decided, the recorded numbers are shown.
//! - The audit is rebuilt from what the projection recorded of the decision
//!   (`antrag_counted_votes` and the counts on `antraege`) and checked with
//!   `governance::audit_decision`, so anyone can recompute it from the API.
//! - A moderation thread is all flags on one piece of content; it is open while any of its
//!   flags is unresolved, and its outcome is that of its latest resolution. Hidden content is
//!   not shown as a thread's target (it disappears from every query).

mod antrag;
mod loaders;
mod mutations;
mod queries;
mod subscriptions;
mod types;

pub use loaders::{AntragLoader, EinsprucheByAntrag, StimmenByAntrag, VerificationLoader};
pub use mutations::GovernanceMutation;
pub use queries::GovernanceQuery;
pub(crate) use queries::{AntragConnection, ModerationThreadConnection};
pub use subscriptions::{AntragChange, AntragChangeKind, GovernanceSubscription};
pub use types::{AntragNode, EinspruchNode, StimmeNode};

use async_graphql::{Context, Result};
use bus::Stored;
use domain::events::FlagTargetKind;
use domain::{Actor, AggregateType, DomainError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::graphql::common::require_caller;
use crate::graphql::{ClientInfo, Deps};

// ---------------------------------------------------------------------------------------------
// Helpers

pub(super) fn who<'a>(
    ctx: &'a Context<'_>,
) -> Result<(Caller, &'a Deps, Option<&'a ClientInfo>), ApiError> {
    let caller = require_caller(ctx)?;
    let deps = ctx
        .data::<Deps>()
        .map_err(|e| ApiError::unavailable(e.message))?;
    Ok((caller, deps, ctx.data_opt::<ClientInfo>()))
}

pub(super) fn first_event(events: &[Stored]) -> Result<&Stored, ApiError> {
    events
        .first()
        .ok_or_else(|| ApiError::unavailable("the command produced no event"))
}

/// The domain names its fields in snake_case after its own words; the client sent camelCase.
pub(super) fn rename_field(e: ApiError, from: &str, to: &str) -> ApiError {
    match e {
        ApiError::Domain(DomainError::Validation { field, message }) if field == from => {
            ApiError::Domain(DomainError::Validation {
                field: to.to_owned(),
                message,
            })
        }
        other => other,
    }
}

/// What the projection knows of a role.
pub(super) struct RoleFacts {
    /// Registered and not deleted.
    exists: bool,
    verified: bool,
    /// Home cell (resolution 9), hex.
    home_h3: Option<String>,
}

pub(super) async fn role_facts(db: &DatabaseConnection, id: Uuid) -> Result<RoleFacts, ApiError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT h3, verified_at IS NOT NULL AS verified FROM rollen WHERE id = $1 AND deleted_at IS NULL",
            [id.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(RoleFacts {
            exists: false,
            verified: false,
            home_h3: None,
        });
    };
    let h3: i64 = row.try_get("", "h3")?;
    Ok(RoleFacts {
        exists: true,
        verified: row.try_get("", "verified")?,
        home_h3: h3o::CellIndex::try_from(h3 as u64)
            .ok()
            .map(|c| c.to_string()),
    })
}

/// The role that wrote flagged content (`None` for content the system made); NOT_FOUND when
/// there is no such content.
pub(super) async fn author_of(
    db: &DatabaseConnection,
    bus: &bus::Bus,
    kind: FlagTargetKind,
    id: Uuid,
) -> Result<Option<Uuid>, ApiError> {
    let (sql, what) = match kind {
        FlagTargetKind::Knoten => (
            "SELECT created_by AS author FROM knoten WHERE id = $1",
            "Knoten",
        ),
        FlagTargetKind::Nachricht => ("SELECT author FROM nachrichten WHERE id = $1", "Nachricht"),
        FlagTargetKind::Antrag => (
            "SELECT created_by AS author FROM antraege WHERE id = $1",
            "Antrag",
        ),
        FlagTargetKind::Rolle => (
            "SELECT id AS author FROM rollen WHERE id = $1 AND deleted_at IS NULL",
            "Rolle",
        ),
    };
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [id.into()],
        ))
        .await?;
    if let Some(r) = row {
        return Ok(r.try_get("", "author")?);
    }
    // Content tied a moment ago may not be projected yet: its own chain says who made it. (A
    // message lives on its Knoten's chain, which its id does not name: projection only.)
    let aggregate = match kind {
        FlagTargetKind::Knoten => Some(AggregateType::Knoten),
        FlagTargetKind::Antrag => Some(AggregateType::Antrag),
        FlagTargetKind::Nachricht | FlagTargetKind::Rolle => None,
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

#[cfg(test)]
mod tests {
    use async_graphql::ID;
    use chrono::DateTime;

    use super::queries::{decode_cursor, encode_cursor};
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_validation_error() {
        let ts = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap_or_default();
        let id = ID(Uuid::from_u128(7).to_string());
        let c = encode_cursor(ts, &id);
        let (t, i) = decode_cursor(&c, "after").ok().unwrap_or_default();
        assert_eq!((t, i), (ts, Uuid::from_u128(7)));
        assert!(matches!(
            decode_cursor("nope", "after"),
            Err(ApiError::Domain(DomainError::Validation { .. }))
        ));
    }

    #[test]
    fn domain_field_names_become_the_clients_names() {
        let e = rename_field(
            DomainError::validation("valid_until", "past").into(),
            "valid_until",
            "validUntil",
        );
        assert!(
            matches!(e, ApiError::Domain(DomainError::Validation { ref field, .. }) if field == "validUntil")
        );
    }
}
