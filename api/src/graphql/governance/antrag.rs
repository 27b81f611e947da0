//! The computed fields of an Antrag and the tally so far.

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, ID, Result};
use domain::events::{AntragEntschieden, CountedVote};
use domain::governance::{Tally, audit_decision, quorum_reached, tally};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::common::require_caller;
use crate::graphql::rolle::{RolleNode, load_rolle, parse_id};

use super::loaders::{EinsprucheByAntrag, StimmenByAntrag};
use super::types::{
    AntragAudit, AntragNode, AntragTally, CountedStimme, EinspruchNode, StimmeNode, VoteGql, int,
    parse_vote, to_u64,
};

#[ComplexObject]
impl AntragNode {
    /// The role that filed it.
    async fn creator(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        match &self.creator_id {
            Some(id) => load_rolle(ctx, parse_id(id, "creatorId")?).await,
            None => Ok(None),
        }
    }

    /// Objections, oldest first.
    async fn objections(&self, ctx: &Context<'_>) -> Result<Vec<EinspruchNode>> {
        Ok(ctx
            .data::<DataLoader<EinsprucheByAntrag>>()?
            .load_one(self.uuid()?)
            .await?
            .unwrap_or_default())
    }

    /// Direct votes, oldest first (delegated voices appear in `tally` and `audit`).
    async fn votes(&self, ctx: &Context<'_>) -> Result<Vec<StimmeNode>> {
        Ok(ctx
            .data::<DataLoader<StimmenByAntrag>>()?
            .load_one(self.uuid()?)
            .await?
            .unwrap_or_default())
    }

    /// The caller's own direct vote (null without a session or vote).
    async fn my_vote(&self, ctx: &Context<'_>) -> Result<Option<VoteGql>> {
        let Ok(caller) = require_caller(ctx) else {
            return Ok(None);
        };
        let me = ID(caller.rolle_id.to_string());
        let votes = ctx
            .data::<DataLoader<StimmenByAntrag>>()?
            .load_one(self.uuid()?)
            .await?
            .unwrap_or_default();
        Ok(votes.into_iter().find(|v| v.rolle_id == me).map(|v| v.vote))
    }

    /// The tally: so far (direct votes and the delegations active now) while open, the
    /// recorded numbers once decided.
    async fn tally(&self, ctx: &Context<'_>) -> Result<AntragTally> {
        let deps = ctx.data::<Deps>()?;
        let id = self.uuid()?;
        if let Some(r) = self.recorded {
            let delegated = count_delegated(&deps.db, id).await?;
            return Ok(AntragTally {
                ja: int(r.ja),
                nein: int(r.nein),
                enthaltung: int(r.enthaltung),
                participation: int(r.participation),
                delegated: int(delegated),
                decided: true,
            });
        }
        let t = tally_so_far(deps, id).await?;
        Ok(AntragTally::so_far(&t))
    }

    /// The audit of the decision (null while open): every counted voice with `delegatedFrom`,
    /// the facts used, and whether recounting reproduces the recorded result.
    async fn audit(&self, ctx: &Context<'_>) -> Result<Option<AntragAudit>> {
        let (Some(r), Some(status)) = (self.recorded, self.status.to_domain()) else {
            return Ok(None);
        };
        let deps = ctx.data::<Deps>()?;
        let counted = counted_votes(&deps.db, self.uuid()?).await?;
        let decision = AntragEntschieden {
            status,
            ja: r.ja,
            nein: r.nein,
            enthaltung: r.enthaltung,
            participation: r.participation,
            active_roles: r.active_roles,
            quorum_percent: r.quorum_percent,
            transitive: deps.config.flags.transitive_delegation,
            counted: counted.clone(),
            cycles: Vec::new(),
        };
        let quorum = quorum_reached(r.participation, r.active_roles, r.quorum_percent);
        let mut check = audit_decision(&decision);
        if check.is_ok()
            && let Some(recorded) = self.quorum_reached
            && recorded != quorum
        {
            check = Err(format!(
                "the counted votes {} the quorum; recorded is that it was {}",
                if quorum { "reach" } else { "miss" },
                if recorded { "reached" } else { "missed" }
            ));
        }
        Ok(Some(AntragAudit {
            status: self.status,
            ja: int(r.ja),
            nein: int(r.nein),
            enthaltung: int(r.enthaltung),
            participation: int(r.participation),
            active_roles: int(r.active_roles),
            quorum_percent: int(u64::from(r.quorum_percent)),
            quorum_reached: self.quorum_reached.unwrap_or(quorum),
            decided_at: self.decided_at,
            counted: counted
                .iter()
                .map(|c| CountedStimme {
                    voice_id: ID(c.voice().to_string()),
                    rolle_id: ID(c.rolle.to_string()),
                    vote: c.vote.into(),
                    delegated_from_id: c.delegated_from.map(|d| ID(d.to_string())),
                })
                .collect(),
            recomputed: check.is_ok(),
            discrepancy: check.err(),
        }))
    }
}

/// The direct votes of the projection and the delegations active now, counted as at the
/// deadline.
pub(super) async fn tally_so_far(deps: &Deps, antrag: Uuid) -> Result<Tally, ApiError> {
    let votes = deps
        .db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT rolle_id, vote::text AS vote FROM stimmen WHERE antrag_id = $1 AND delegated_from IS NULL",
            [antrag.into()],
        ))
        .await?;
    let mut direct = Vec::with_capacity(votes.len());
    for v in &votes {
        direct.push((
            v.try_get::<Uuid>("", "rolle_id")?,
            parse_vote(&v.try_get::<String>("", "vote")?)?,
        ));
    }
    let delegations = active_delegations(&deps.db).await?;
    Ok(tally(
        &direct,
        &delegations,
        deps.config.flags.transitive_delegation,
    ))
}

/// `(from, to)` of every delegation in force now whose delegator may vote (verified, not
/// deleted).
pub(super) async fn active_delegations(
    db: &DatabaseConnection,
) -> Result<Vec<(Uuid, Uuid)>, ApiError> {
    let rows = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT d.from_rolle, d.to_rolle FROM delegationen d JOIN rollen r ON r.id = d.from_rolle \
             WHERE d.revoked_at IS NULL AND d.ended_at IS NULL AND d.valid_until > now() \
             AND r.verified_at IS NOT NULL AND r.deleted_at IS NULL",
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push((r.try_get("", "from_rolle")?, r.try_get("", "to_rolle")?));
    }
    Ok(out)
}

pub(super) async fn counted_votes(
    db: &DatabaseConnection,
    antrag: Uuid,
) -> Result<Vec<CountedVote>, ApiError> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT rolle, vote::text AS vote, delegated_from FROM antrag_counted_votes \
             WHERE antrag_id = $1 ORDER BY voice",
            [antrag.into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(CountedVote {
            rolle: r.try_get("", "rolle")?,
            vote: parse_vote(&r.try_get::<String>("", "vote")?)?,
            delegated_from: r.try_get("", "delegated_from")?,
        });
    }
    Ok(out)
}

pub(super) async fn count_delegated(
    db: &DatabaseConnection,
    antrag: Uuid,
) -> Result<u64, ApiError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM antrag_counted_votes WHERE antrag_id = $1 AND delegated_from IS NOT NULL",
            [antrag.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => to_u64(Some(r.try_get::<i64>("", "n")?)),
        None => 0,
    })
}
