//! The Webrat's mutations, with their inputs and payloads.

use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use bus::Outcome;
use chrono::{DateTime, Utc};
use domain::AggregateType;
use domain::antrag::{Abstimmen, Antrag, AntragCommand, Einspruch, Stellen};
use domain::delegation::{Delegation, DelegationCommand, Erstellen, delegation_id};
use domain::events::{
    DelegationErstellt, DelegationWiderrufen, FlagTarget, FlagTargetKind, RolleVerifiziert,
};
use domain::flag::{Aufloesen, Flag, FlagCommand, Melden};
use domain::governance::weberei_of_home;
use domain::rolle::{Rolle, RolleCommand};
use domain::verification::Bestaetigen;
use uuid::Uuid;

use crate::error::ApiError;
use crate::graphql::common::{
    ID_NAMESPACE, data_key, execute, meta_for, nonce, validate_idempotency_key,
};
use crate::graphql::knoten::EventReceipt;
use crate::graphql::rolle::parse_id;

use super::queries::load_flag;
use super::types::{
    AntragNode, DelegationNode, EinspruchNode, FlagNode, FlagOutcomeGql, FlagTargetKindGql,
    StimmeNode, VoteGql,
};
use super::{author_of, first_event, rename_field, role_facts, who};

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
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let weberei = match &me.home_h3 {
            Some(home) => weberei_of_home(home)?.to_string(),
            None => String::new(),
        };
        let id = Uuid::new_v5(
            &ID_NAMESPACE,
            format!("antrag:{}:{key}", caller.rolle_id).as_bytes(),
        );
        let now = Utc::now();
        let cmd = AntragCommand::Stellen(Stellen {
            id,
            title: input.title.clone(),
            content: input.content.as_ref().map(|c| c.0.clone()),
            weavery_h3: weberei,
            deadline: input.decision_deadline,
            now,
            min_deadline: deps.config.min_decision_period,
            by: caller.rolle_id,
            by_verified: me.verified,
        });
        let meta = meta_for(&caller, client, "fileAntrag", key);
        let done = execute::<Antrag>(deps, id, &cmd, meta, bus::Expect::NewChain)
            .await
            .map_err(|e| rename_field(e, "deadline", "decisionDeadline"))?;
        let stored = first_event(&done.events)?;
        Ok(FileAntragPayload {
            antrag: AntragNode::from_event(&stored.envelope)?,
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Object to an open Antrag, with a reason. Only verified roles (FORBIDDEN), once per role,
    /// only before the deadline and while undecided (CONFLICT).
    async fn object_to_antrag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Antrag and the reason.")] input: ObjectToAntragInput,
    ) -> Result<ObjectToAntragPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let antrag = parse_id(&input.antrag_id, "antragId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let Some(data_key) = data_key(deps, caller.rolle_id).await? else {
            return Err(ApiError::Unauthenticated("this role was deleted".into()).into());
        };
        let cmd = AntragCommand::Einspruch(Einspruch {
            by: caller.rolle_id,
            reason: input.reason.clone(),
            now: Utc::now(),
            by_verified: me.verified,
            key: data_key,
            nonce: nonce(),
        });
        let meta = meta_for(&caller, client, "objectToAntrag", key);
        let done = execute::<Antrag>(deps, antrag, &cmd, meta, bus::Expect::ExistingChain).await?;
        let stored = first_event(&done.events)?;
        Ok(ObjectToAntragPayload {
            objection: EinspruchNode {
                antrag_id: ID(antrag.to_string()),
                rolle_id: ID(caller.rolle_id.to_string()),
                reason: Some(input.reason.trim().to_owned()),
                created_at: stored.envelope.ts,
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Vote on an open Antrag. Only verified roles (FORBIDDEN), only before the deadline
    /// (CONFLICT), once per role (a second vote is a CONFLICT).
    async fn cast_stimme(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Antrag and the vote.")] input: CastStimmeInput,
    ) -> Result<CastStimmePayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let antrag = parse_id(&input.antrag_id, "antragId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let cmd = AntragCommand::Abstimmen(Abstimmen {
            by: caller.rolle_id,
            vote: input.vote.into(),
            now: Utc::now(),
            by_verified: me.verified,
        });
        let meta = meta_for(&caller, client, "castStimme", key);
        let done = execute::<Antrag>(deps, antrag, &cmd, meta, bus::Expect::ExistingChain).await?;
        let stored = first_event(&done.events)?;
        let p: domain::events::StimmeAbgegeben = stored.envelope.decode()?;
        Ok(CastStimmePayload {
            stimme: StimmeNode {
                antrag_id: ID(antrag.to_string()),
                rolle_id: ID(p.by.to_string()),
                vote: p.vote.into(),
                created_at: stored.envelope.ts,
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
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
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let to = parse_id(&input.to, "to")?;
        let to_exists = role_facts(&deps.db, to).await?.exists;
        let now = Utc::now();
        let cmd = DelegationCommand::Erstellen(Erstellen {
            from: caller.rolle_id,
            to,
            valid_until: input.valid_until,
            now,
            to_exists,
        });
        let meta = meta_for(&caller, client, "delegate", key);
        let id = delegation_id(caller.rolle_id);
        let done = execute::<Delegation>(deps, id, &cmd, meta, bus::Expect::ExistingChain)
            .await
            .map_err(|e| rename_field(e, "valid_until", "validUntil"))?;
        let created = done
            .events
            .iter()
            .find(|s| s.envelope.event_type == "DelegationErstellt");
        let (valid_until, created_at, replaced) = match created {
            Some(s) => {
                let p: DelegationErstellt = s.envelope.decode()?;
                (p.valid_until, s.envelope.ts, p.replaces)
            }
            None => (
                domain::envelope::truncate_millis(input.valid_until),
                now,
                None,
            ),
        };
        Ok(DelegatePayload {
            delegation: DelegationNode {
                from_id: ID(caller.rolle_id.to_string()),
                to_id: ID(to.to_string()),
                valid_until,
                created_at,
                revoked_at: None,
                ended_at: None,
                ended_reason: None,
                active: valid_until > Utc::now(),
            },
            replaced_id: replaced.map(|r| ID(r.to_string())),
            event: created.map(Into::into),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Revoke the caller's delegation (CONFLICT when none is in force).
    async fn revoke_delegation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The idempotency key of this call.")] input: RevokeDelegationInput,
    ) -> Result<RevokeDelegationPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let cmd = DelegationCommand::Widerrufen { now: Utc::now() };
        let meta = meta_for(&caller, client, "revokeDelegation", key);
        let id = delegation_id(caller.rolle_id);
        let done = execute::<Delegation>(deps, id, &cmd, meta, bus::Expect::ExistingChain).await?;
        let stored = first_event(&done.events)?;
        let p: DelegationWiderrufen = stored.envelope.decode()?;
        Ok(RevokeDelegationPayload {
            revoked_to_id: ID(p.to.to_string()),
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
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
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let target = parse_id(&input.rolle_id, "rolleId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let cmd = RolleCommand::Bestaetigen(Bestaetigen {
            target,
            by: caller.rolle_id,
            by_verified: me.verified,
        });
        let meta = meta_for(&caller, client, "confirmVerification", key);
        let done = execute::<Rolle>(deps, target, &cmd, meta, bus::Expect::ExistingChain).await?;
        let stored = first_event(&done.events)?;
        let verified = done
            .events
            .iter()
            .find(|s| s.envelope.event_type == "RolleVerifiziert");
        if let Some(v) = verified {
            let _: RolleVerifiziert = v.envelope.decode()?;
        }
        Ok(ConfirmVerificationPayload {
            rolle_id: ID(target.to_string()),
            verified: verified.is_some(),
            event: stored.into(),
            verified_event: verified.map(Into::into),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Report content (a Knoten, a message, an Antrag or a role): opens a moderation thread in
    /// the Webrat. Any role may report; NOT_FOUND for content that does not exist.
    async fn raise_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The content and the reason.")] input: RaiseFlagInput,
    ) -> Result<RaiseFlagPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let target_id = parse_id(&input.target_id, "targetId")?;
        let kind: FlagTargetKind = input.target_kind.into();
        let author = author_of(&deps.db, &deps.bus, kind, target_id).await?;
        let Some(data_key) = data_key(deps, caller.rolle_id).await? else {
            return Err(ApiError::Unauthenticated("this role was deleted".into()).into());
        };
        let id = Uuid::new_v5(
            &ID_NAMESPACE,
            format!("flag:{}:{key}", caller.rolle_id).as_bytes(),
        );
        let cmd = FlagCommand::Melden(Melden {
            target: FlagTarget {
                kind,
                id: target_id,
            },
            reason: input.reason.clone(),
            by: caller.rolle_id,
            author_of_target: author,
            key: data_key,
            nonce: nonce(),
        });
        let meta = meta_for(&caller, client, "raiseFlag", key);
        let done = execute::<Flag>(deps, id, &cmd, meta, bus::Expect::NewChain).await?;
        let stored = first_event(&done.events)?;
        let p: domain::events::FlagRaised = stored.envelope.decode()?;
        Ok(RaiseFlagPayload {
            flag: FlagNode {
                id: ID(id.to_string()),
                target_kind: input.target_kind,
                target_id: ID(p.target.id.to_string()),
                reason: Some(input.reason.trim().to_owned()),
                raised_by_id: ID(p.by.to_string()),
                author_of_target_id: p.author_of_target.map(|a| ID(a.to_string())),
                created_at: stored.envelope.ts,
                outcome: None,
                resolution_reason: None,
                resolved_by_id: None,
                resolved_at: None,
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Resolve a flag: keep or hide the content. Only a verified role that neither wrote the
    /// content nor raised the flag (FORBIDDEN); once (CONFLICT).
    async fn resolve_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The flag, the outcome and the reason.")] input: ResolveFlagInput,
    ) -> Result<ResolveFlagPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let flag_id = parse_id(&input.flag_id, "flagId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let Some(data_key) = data_key(deps, caller.rolle_id).await? else {
            return Err(ApiError::Unauthenticated("this role was deleted".into()).into());
        };
        let cmd = FlagCommand::Aufloesen(Aufloesen {
            outcome: input.outcome.into(),
            reason: input.reason.clone(),
            by: caller.rolle_id,
            by_verified: me.verified,
            key: data_key,
            nonce: nonce(),
        });
        let meta = meta_for(&caller, client, "resolveFlag", key);
        let history = deps
            .bus
            .history(AggregateType::Flag, flag_id)
            .await
            .map_err(ApiError::from)?;
        let done = execute::<Flag>(deps, flag_id, &cmd, meta, bus::Expect::ExistingChain).await?;
        let stored = first_event(&done.events)?;
        let p: domain::events::FlagResolved = stored.envelope.decode()?;
        let raised = history
            .iter()
            .find(|s| s.envelope.event_type == "FlagRaised")
            .ok_or_else(|| ApiError::unavailable("a resolved flag without FlagRaised"))?;
        let r: domain::events::FlagRaised = raised.envelope.decode()?;
        // The reporter's reason comes from the projection (the API does not open other roles'
        // sealed texts here).
        let reason = load_flag(&deps.db, flag_id).await?.and_then(|f| f.reason);
        Ok(ResolveFlagPayload {
            flag: FlagNode {
                id: ID(flag_id.to_string()),
                target_kind: r.target.kind.into(),
                target_id: ID(r.target.id.to_string()),
                reason,
                raised_by_id: ID(r.by.to_string()),
                author_of_target_id: r.author_of_target.map(|a| ID(a.to_string())),
                created_at: raised.envelope.ts,
                outcome: Some(match p.outcome {
                    domain::events::FlagOutcome::Kept => FlagOutcomeGql::Kept,
                    domain::events::FlagOutcome::Hidden => FlagOutcomeGql::Hidden,
                }),
                resolution_reason: Some(input.reason.trim().to_owned()),
                resolved_by_id: Some(ID(p.by.to_string())),
                resolved_at: Some(stored.envelope.ts),
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }
}
