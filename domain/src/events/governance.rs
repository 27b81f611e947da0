//! Payloads of the Webrat: Anträge, votes, delegation, peer verification, moderation
//! (DESIGN.md §4, issue 5). The rules that produce these live in `antrag`, `delegation`,
//! `governance`, `verification` and `flag`; their module docs hold every choice made beyond
//! DESIGN.md. The verification events sit on the Rolle's chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::AggregateType;

use super::{EventType, Payload};

/// A vote on an Antrag (seed: JA, NEIN, ENTHALTUNG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    Ja,
    Nein,
    /// Counts for the quorum only, never for or against.
    Enthaltung,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::Nein => "nein",
            Self::Enthaltung => "enthaltung",
        }
    }
}

/// How an Antrag was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntragStatus {
    /// Quorum reached and more ja than nein.
    Angenommen,
    /// Quorum reached and not more ja than nein (a tie is rejected).
    Abgelehnt,
    /// Participation below the quorum.
    QuorumVerfehlt,
}

impl AntragStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Angenommen => "angenommen",
            Self::Abgelehnt => "abgelehnt",
            Self::QuorumVerfehlt => "quorum_verfehlt",
        }
    }
}

/// A verified role filed an Antrag in a Weberei. The author is `by` (also `meta.actor`).
/// Title and content are public like a Knoten's, so they are not sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AntragGestellt {
    pub by: Uuid,
    pub title: String,
    /// Free-form structured content (a JSON object of at most 16 KiB canonical JSON).
    pub content: serde_json::Value,
    /// The Weberei: H3 cell at [`crate::geo::WEAVERY_RES`], hex.
    pub weavery_h3: String,
    /// Votes and objections are taken before this instant; the decision at or after it.
    pub decision_deadline: DateTime<Utc>,
}

impl Payload for AntragGestellt {
    const TYPE: EventType = EventType::AntragGestellt;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Antrag;
}

/// An objection to an open Antrag. The reason is free text of a person, so it is sealed with
/// the objecting role's data key (`reason.kid == by`) and shredded with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EinspruchEingegangen {
    pub by: Uuid,
    pub reason: crate::privacy::Sealed,
}

impl Payload for EinspruchEingegangen {
    const TYPE: EventType = EventType::EinspruchEingegangen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Antrag;
}

/// A role's direct vote on an Antrag (one per role and Antrag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StimmeAbgegeben {
    pub by: Uuid,
    pub vote: Vote,
}

impl Payload for StimmeAbgegeben {
    const TYPE: EventType = EventType::StimmeAbgegeben;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Antrag;
}

/// At the deadline, participation reached the quorum. Always followed by `AntragEntschieden`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuorumErreicht {
    /// Direct and delegated votes counted (enthaltung included).
    pub participation: u64,
    /// The quorum base: active roles of the Weberei at the deadline.
    pub active_roles: u64,
    pub quorum_percent: u32,
}

impl Payload for QuorumErreicht {
    const TYPE: EventType = EventType::QuorumErreicht;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Antrag;
}

/// One voice counted in a decision.
///
/// `rolle` is the role whose direct vote this is. For a delegated voice, `delegated_from` is the
/// delegator who did not vote and is counted with `rolle`'s vote (with transitive delegation,
/// `rolle` is the first direct voter along the chain). The voice belongs to
/// [`CountedVote::voice`]: `delegated_from` if set, else `rolle`; every voice is counted once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CountedVote {
    pub rolle: Uuid,
    pub vote: Vote,
    pub delegated_from: Option<Uuid>,
}

impl CountedVote {
    /// The role whose voice this is.
    pub fn voice(&self) -> Uuid {
        self.delegated_from.unwrap_or(self.rolle)
    }
}

/// The decision of an Antrag, with everything needed to recompute it
/// (see [`crate::governance::audit_decision`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AntragEntschieden {
    pub status: AntragStatus,
    pub ja: u64,
    pub nein: u64,
    pub enthaltung: u64,
    /// `counted.len()`: direct and delegated votes, enthaltung included.
    pub participation: u64,
    pub active_roles: u64,
    pub quorum_percent: u32,
    /// Whether delegation chains were followed (`FF_TRANSITIVE_DELEGATION`).
    pub transitive: bool,
    /// Every counted voice, sorted by voice.
    pub counted: Vec<CountedVote>,
    /// Delegation cycles among non-voters that left their members uncounted (each starts with
    /// its smallest id; sorted). Only ever non-empty with `transitive`.
    pub cycles: Vec<Vec<Uuid>>,
}

impl Payload for AntragEntschieden {
    const TYPE: EventType = EventType::AntragEntschieden;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Antrag;
}

/// A role delegated its vote to `to` until `valid_until` (on the chain
/// `delegation::delegation_id(from)`). `replaces` is the delegate of the delegation this one
/// replaced, if one was active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegationErstellt {
    pub from: Uuid,
    pub to: Uuid,
    pub valid_until: DateTime<Utc>,
    pub replaces: Option<Uuid>,
}

impl Payload for DelegationErstellt {
    const TYPE: EventType = EventType::DelegationErstellt;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Delegation;
}

/// The delegator revoked its active delegation to `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegationWiderrufen {
    pub from: Uuid,
    pub to: Uuid,
}

impl Payload for DelegationWiderrufen {
    const TYPE: EventType = EventType::DelegationWiderrufen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Delegation;
}

/// The delegation from `from` to `to` reached its `valid_until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegationAbgelaufen {
    pub from: Uuid,
    pub to: Uuid,
    pub valid_until: DateTime<Utc>,
}

impl Payload for DelegationAbgelaufen {
    const TYPE: EventType = EventType::DelegationAbgelaufen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Delegation;
}

/// An already-verified role confirmed that this role (the chain's Rolle) is a real person of
/// the Ort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifizierungBestaetigt {
    pub by: Uuid,
}

impl Payload for VerifizierungBestaetigt {
    const TYPE: EventType = EventType::VerifizierungBestaetigt;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Rolle;
}

/// The role is verified: either by two distinct verified roles (`verified_by`, in the order
/// they confirmed; `by_admin_action` is `None`), or by an admin action (`verified_by` is empty
/// and `by_admin_action` is the id of the `AdminActionExecuted` event that ordered it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolleVerifiziert {
    pub verified_by: Vec<Uuid>,
    pub by_admin_action: Option<ulid::Ulid>,
}

impl Payload for RolleVerifiziert {
    const TYPE: EventType = EventType::RolleVerifiziert;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Rolle;
}

/// What kind of content a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagTargetKind {
    Knoten,
    Nachricht,
    Antrag,
    Rolle,
}

impl FlagTargetKind {
    pub const ALL: [FlagTargetKind; 4] = [Self::Knoten, Self::Nachricht, Self::Antrag, Self::Rolle];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Knoten => "knoten",
            Self::Nachricht => "nachricht",
            Self::Antrag => "antrag",
            Self::Rolle => "rolle",
        }
    }

    /// The kind named by [`FlagTargetKind::as_str`] (as stored in `flags.target_kind`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The flagged content: a Knoten, a message (its `nachricht_id`), an Antrag or a Rolle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlagTarget {
    pub kind: FlagTargetKind,
    pub id: Uuid,
}

/// A role flagged content: this opens a moderation thread in the Webrat. The reason is sealed
/// with the flagging role's data key (`reason.kid == by`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagRaised {
    pub by: Uuid,
    pub target: FlagTarget,
    pub reason: crate::privacy::Sealed,
    /// The role that wrote the content (for a Rolle: the role itself); `None` if the system
    /// did. That role may not resolve the flag.
    pub author_of_target: Option<Uuid>,
}

impl Payload for FlagRaised {
    const TYPE: EventType = EventType::FlagRaised;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Flag;
}

/// How a moderation thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagOutcome {
    /// The content stays visible.
    Kept,
    /// The content disappears from queries and the live map; it stays in the archive.
    Hidden,
}

impl FlagOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::Hidden => "hidden",
        }
    }
}

/// A verified role other than the content's author and the flag's raiser resolved the flag.
/// The reason is sealed with the resolving role's data key (`reason.kid == by`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagResolved {
    pub by: Uuid,
    pub outcome: FlagOutcome,
    pub reason: crate::privacy::Sealed,
}

impl Payload for FlagResolved {
    const TYPE: EventType = EventType::FlagResolved;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Flag;
}
