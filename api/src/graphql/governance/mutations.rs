//! The Webrat's mutations, with their inputs and payloads.

use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::events::{FlagTarget, FlagTargetKind};

use super::moderation::{FlagNode, FlagOutcomeGql, FlagTargetKindGql};
use super::types::{AntragNode, DelegationNode, EinspruchNode, StimmeNode, VoteGql};
use crate::graphql::primitives::{EventReceipt, id, mutation, parse_id, rename_field};
use crate::services::governance::{self as service, NewAntrag};

// ---------------------------------------------------------------------------------------------
// Mutations: inputs and payloads

/// File an Antrag in the caller's Weberei (the Weberei of its home).
#[derive(InputObject, Clone, Debug)]
pub struct FileAntragInput {
    /// Client-chosen key (1-128 visible ASCII characters): the same key always yields the same
    /// Antrag and never a second one.
    pub idempotency_key: String,
    /// Title, 1 to 200 characters after trimming.
    pub title: String,
    /// Optional structured content (a JSON object, at most 16 KiB).
    pub content: Option<Json<serde_json::Value>>,
    /// Votes and objections are taken until this instant; at least the server's minimum
    /// decision period (`24 h` by default) from now.
    pub decision_deadline: DateTime<Utc>,
}

/// The result of `fileAntrag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct FileAntragPayload {
    /// The Antrag as filed.
    pub antrag: AntragNode,
    /// The `AntragGestellt` event.
    pub event: EventReceipt,
    /// True when this key had been used before: the original result, nothing new.
    pub replayed: bool,
}

/// Object to an open Antrag.
#[derive(InputObject, Clone, Debug)]
pub struct ObjectToAntragInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The Antrag.
    pub antrag_id: ID,
    /// Why, 1 to 2000 characters (sealed with your data key in the log).
    pub reason: String,
}

/// The result of `objectToAntrag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ObjectToAntragPayload {
    /// The objection.
    pub objection: EinspruchNode,
    /// The `EinspruchEingegangen` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Vote on an open Antrag (once).
#[derive(InputObject, Clone, Debug)]
pub struct CastStimmeInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The Antrag.
    pub antrag_id: ID,
    /// JA, NEIN or ENTHALTUNG. A role votes once; a second vote is a CONFLICT.
    pub vote: VoteGql,
}

/// The result of `castStimme`.
#[derive(SimpleObject, Clone, Debug)]
pub struct CastStimmePayload {
    /// The vote as recorded.
    pub stimme: StimmeNode,
    /// The `StimmeAbgegeben` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Delegate your vote to another role (replaces your current delegation).
#[derive(InputObject, Clone, Debug)]
pub struct DelegateInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The delegate: a registered role other than you.
    pub to: ID,
    /// The delegation lapses at this instant (must be in the future).
    pub valid_until: DateTime<Utc>,
}

/// The result of `delegate`.
#[derive(SimpleObject, Clone, Debug)]
pub struct DelegatePayload {
    /// The delegation now in force.
    pub delegation: DelegationNode,
    /// Id of the delegate of the delegation this one replaced, if one was in force.
    pub replaced_id: Option<ID>,
    /// The `DelegationErstellt` event; null when the very same delegation was already in force.
    pub event: Option<EventReceipt>,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Revoke your delegation.
#[derive(InputObject, Clone, Debug)]
pub struct RevokeDelegationInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
}

/// The result of `revokeDelegation`.
#[derive(SimpleObject, Clone, Debug)]
pub struct RevokeDelegationPayload {
    /// Id of the delegate of the revoked delegation.
    pub revoked_to_id: ID,
    /// The `DelegationWiderrufen` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Confirm that another role is a real person of the Ort.
#[derive(InputObject, Clone, Debug)]
pub struct ConfirmVerificationInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The role to confirm (not yourself; you must be verified).
    pub rolle_id: ID,
}

/// The result of `confirmVerification`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ConfirmVerificationPayload {
    /// Id of the confirmed role.
    pub rolle_id: ID,
    /// True when this confirmation was the second and verified the role.
    pub verified: bool,
    /// The `VerifizierungBestaetigt` event.
    pub event: EventReceipt,
    /// The `RolleVerifiziert` event, when this confirmation verified the role.
    pub verified_event: Option<EventReceipt>,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Report content to the Webrat's moderation.
#[derive(InputObject, Clone, Debug)]
pub struct RaiseFlagInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// What kind of content.
    pub target_kind: FlagTargetKindGql,
    /// Its id (for a message: `Nachricht.id`).
    pub target_id: ID,
    /// Why, 1 to 2000 characters (sealed with your data key in the log).
    pub reason: String,
}

/// The result of `raiseFlag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct RaiseFlagPayload {
    /// The flag (open).
    pub flag: FlagNode,
    /// The `FlagRaised` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Resolve a flag: keep or hide the content.
#[derive(InputObject, Clone, Debug)]
pub struct ResolveFlagInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The flag.
    pub flag_id: ID,
    /// KEPT or HIDDEN.
    pub outcome: FlagOutcomeGql,
    /// Why, 1 to 2000 characters (sealed with your data key in the log).
    pub reason: String,
}

/// The result of `resolveFlag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ResolveFlagPayload {
    /// The flag as resolved.
    pub flag: FlagNode,
    /// The `FlagResolved` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(Default)]
pub struct GovernanceMutation;

#[Object]
impl GovernanceMutation {
    /// File an Antrag in the caller's Weberei. Only verified roles (FORBIDDEN otherwise); the
    /// deadline must leave at least the minimum decision period (VALIDATION).
    async fn file_antrag(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The title, content and decision deadline, and the idempotency key of this call."
        )]
        input: FileAntragInput,
    ) -> Result<FileAntragPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let antrag = NewAntrag {
            title: input.title,
            content: input.content.map(|c| c.0),
            deadline: input.decision_deadline,
        };
        let done = service::file_antrag(&deps.db, &deps.bus, &deps.config, origin, antrag)
            .await
            .map_err(|e| rename_field(e, "deadline", "decisionDeadline"))?;
        let p: domain::events::AntragGestellt = done.stored.envelope.decode()?;
        let env = &done.stored.envelope;
        Ok(FileAntragPayload {
            antrag: AntragNode::filed(env.aggregate_id, &p, env.ts)?,
            event: (&done.stored).into(),
            replayed: done.replayed,
        })
    }

    /// Object to an open Antrag, with a reason. Only verified roles (FORBIDDEN), once per role,
    /// only before the deadline and while undecided (CONFLICT).
    async fn object_to_antrag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Antrag and the reason.")] input: ObjectToAntragInput,
    ) -> Result<ObjectToAntragPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let antrag = parse_id(&input.antrag_id, "antragId")?;
        let reason = input.reason.trim().to_owned();
        let done =
            service::object_to_antrag(&deps.db, &deps.bus, origin, antrag, input.reason).await?;
        Ok(ObjectToAntragPayload {
            objection: EinspruchNode {
                antrag_id: id(antrag),
                rolle_id: id(origin.caller.rolle_id),
                reason: Some(reason),
                created_at: done.stored.envelope.ts,
            },
            event: (&done.stored).into(),
            replayed: done.replayed,
        })
    }

    /// Vote on an open Antrag. Only verified roles (FORBIDDEN), only before the deadline
    /// (CONFLICT), once per role (a second vote is a CONFLICT).
    async fn cast_stimme(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Antrag and the vote.")] input: CastStimmeInput,
    ) -> Result<CastStimmePayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let antrag = parse_id(&input.antrag_id, "antragId")?;
        let (done, p) =
            service::cast_stimme(&deps.db, &deps.bus, origin, antrag, input.vote.into()).await?;
        Ok(CastStimmePayload {
            stimme: StimmeNode {
                antrag_id: id(antrag),
                rolle_id: id(p.by),
                vote: p.vote.into(),
                created_at: done.stored.envelope.ts,
            },
            event: (&done.stored).into(),
            replayed: done.replayed,
        })
    }

    /// Delegate the caller's vote to another role until `validUntil` (one delegation per role: a
    /// new one replaces the old). Not to oneself (VALIDATION), to an existing role (NOT_FOUND),
    /// `validUntil` in the future (VALIDATION).
    async fn delegate(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delegate and until when the delegation holds.")] input: DelegateInput,
    ) -> Result<DelegatePayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let to = parse_id(&input.to, "to")?;
        let done = service::delegate(&deps.db, &deps.bus, origin, to, input.valid_until)
            .await
            .map_err(|e| rename_field(e, "valid_until", "validUntil"))?;
        let (valid_until, created_at, replaced) = match &done.created {
            Some((s, p)) => (p.valid_until, s.envelope.ts, p.replaces),
            None => (
                domain::envelope::truncate_millis(input.valid_until),
                done.now,
                None,
            ),
        };
        Ok(DelegatePayload {
            delegation: DelegationNode {
                from_id: id(origin.caller.rolle_id),
                to_id: id(to),
                valid_until,
                created_at,
                revoked_at: None,
                ended_at: None,
                ended_reason: None,
                active: valid_until > Utc::now(),
            },
            replaced_id: replaced.map(id),
            event: done.created.as_ref().map(|(s, _)| s.into()),
            replayed: done.replayed,
        })
    }

    /// Revoke the caller's delegation (CONFLICT when none is in force).
    async fn revoke_delegation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The idempotency key of this call.")] input: RevokeDelegationInput,
    ) -> Result<RevokeDelegationPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let (done, p) = service::revoke_delegation(&deps.bus, origin).await?;
        Ok(RevokeDelegationPayload {
            revoked_to_id: id(p.to),
            event: (&done.stored).into(),
            replayed: done.replayed,
        })
    }

    /// Confirm another role (peer verification): the second distinct verified confirmer
    /// verifies it. Not oneself, only by verified roles (FORBIDDEN); once per confirmer and
    /// not for verified roles (CONFLICT).
    async fn confirm_verification(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The role to confirm.")] input: ConfirmVerificationInput,
    ) -> Result<ConfirmVerificationPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let target = parse_id(&input.rolle_id, "rolleId")?;
        let (done, verified) =
            service::confirm_verification(&deps.db, &deps.bus, origin, target).await?;
        Ok(ConfirmVerificationPayload {
            rolle_id: id(target),
            verified: verified.is_some(),
            event: (&done.stored).into(),
            verified_event: verified.as_ref().map(Into::into),
            replayed: done.replayed,
        })
    }

    /// Report content (a Knoten, a message, an Antrag or a role): opens a moderation thread in
    /// the Webrat. Any role may report; NOT_FOUND for content that does not exist.
    async fn raise_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The content and the reason.")] input: RaiseFlagInput,
    ) -> Result<RaiseFlagPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let target_id = parse_id(&input.target_id, "targetId")?;
        let kind: FlagTargetKind = input.target_kind.into();
        let reason = input.reason.trim().to_owned();
        let target = FlagTarget {
            kind,
            id: target_id,
        };
        let raised = service::raise_flag(&deps.db, &deps.bus, origin, target, input.reason).await?;
        let p = &raised.payload;
        let stored = &raised.done.stored;
        Ok(RaiseFlagPayload {
            flag: FlagNode {
                id: id(raised.id),
                target_kind: input.target_kind,
                target_id: id(p.target.id),
                reason: Some(reason),
                raised_by_id: id(p.by),
                author_of_target_id: p.author_of_target.map(id),
                created_at: stored.envelope.ts,
                outcome: None,
                resolution_reason: None,
                resolved_by_id: None,
                resolved_at: None,
            },
            event: stored.into(),
            replayed: raised.done.replayed,
        })
    }

    /// Resolve a flag: keep or hide the content. Only a verified role that neither wrote the
    /// content nor raised the flag (FORBIDDEN); once (CONFLICT).
    async fn resolve_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The flag, the outcome and the reason.")] input: ResolveFlagInput,
    ) -> Result<ResolveFlagPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let flag_id = parse_id(&input.flag_id, "flagId")?;
        let resolution_reason = input.reason.trim().to_owned();
        let done = service::resolve_flag(
            &deps.db,
            &deps.bus,
            origin,
            flag_id,
            input.outcome.into(),
            input.reason,
        )
        .await?;
        let (p, r) = (&done.payload, &done.raised_payload);
        let stored = &done.done.stored;
        Ok(ResolveFlagPayload {
            flag: FlagNode {
                id: id(flag_id),
                target_kind: r.target.kind.into(),
                target_id: id(r.target.id),
                reason: done.reason.clone(),
                raised_by_id: id(r.by),
                author_of_target_id: r.author_of_target.map(id),
                created_at: done.raised.envelope.ts,
                outcome: Some(match p.outcome {
                    domain::events::FlagOutcome::Kept => FlagOutcomeGql::Kept,
                    domain::events::FlagOutcome::Hidden => FlagOutcomeGql::Hidden,
                }),
                resolution_reason: Some(resolution_reason),
                resolved_by_id: Some(id(p.by)),
                resolved_at: Some(stored.envelope.ts),
            },
            event: stored.into(),
            replayed: done.done.replayed,
        })
    }
}
