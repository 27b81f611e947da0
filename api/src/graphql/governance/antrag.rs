//! The computed fields of an Antrag and the tally so far.

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, ID, Result};
use domain::events::AntragEntschieden;
use domain::governance::{Tally, audit_decision, quorum_reached, tally};
use uuid::Uuid;

use super::loaders::{EinsprucheByAntrag, StimmenByAntrag};
use super::types::{
    AntragAudit, AntragNode, AntragTally, CountedStimme, EinspruchNode, StimmeNode, VoteGql, int,
};
use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::primitives::{parse_id, require_caller};
use crate::graphql::rolle::{RolleNode, load_rolle};
use crate::read;

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
            let delegated = read::governance::count_delegated(&deps.db, id)
                .await
                .map_err(ApiError::from)?;
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
        let counted = read::governance::counted_votes(&deps.db, self.uuid()?)
            .await
            .map_err(ApiError::from)?;
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
async fn tally_so_far(deps: &Deps, antrag: Uuid) -> Result<Tally, ApiError> {
    let direct: Vec<(Uuid, domain::events::Vote)> =
        read::governance::direct_votes(&deps.db, &[antrag])
            .await?
            .into_iter()
            .map(|v| (v.rolle_id, v.vote))
            .collect();
    let delegations = read::governance::active_delegations(&deps.db).await?;
    Ok(tally(
        &direct,
        &delegations,
        deps.config.flags.transitive_delegation,
    ))
}
