//! Event type names (forever: never rename one) and the typed payloads that exist so far.
//! Payload types for the other events arrive with the features that produce them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::envelope::AggregateType;

macro_rules! event_types {
    ($($name:ident),* $(,)?) => {
        /// Every event type of DESIGN.md §3. The ASCII name is the `type` field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($name),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$name),*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$name => stringify!($name)),* }
            }

            pub fn parse(name: &str) -> Option<EventType> {
                match name { $(stringify!($name) => Some(EventType::$name),)* _ => None }
            }
        }
    };
}

event_types!(
    KnotenGeknuepft,
    KnotenGestaltet,
    KnotenVerfallen,
    KnotenVerzwirnt,
    FadenGesponnen,
    FadenVerfallen,
    FadenVerzwirnt,
    NachrichtGeschrieben,
    AntragGestellt,
    EinspruchEingegangen,
    StimmeAbgegeben,
    DelegationErstellt,
    DelegationWiderrufen,
    DelegationAbgelaufen,
    QuorumErreicht,
    AntragEntschieden,
    RolleRegistriert,
    VerifizierungBestaetigt,
    RolleVerifiziert,
    FlagRaised,
    FlagResolved,
    SpendeInitiated,
    SpendePending,
    SpendeSettled,
    SpendeFailed,
    SpendeReversed,
    EventRejected,
    DLQEvent,
    AdminActionExecuted,
    KostenAktualisiert,
    FallbackActivated,
    PushSubscribed,
    PushUnsubscribed,
    PushBenachrichtigungGesendet,
    UserDeleted,
    KeyRevoked,
    RunbookAktualisiert,
    InhaltVerborgen,
);

/// A typed payload: which event type it is, its schema version, and its aggregate type.
pub trait Payload: Serialize + DeserializeOwned {
    const TYPE: EventType;
    const VERSION: u32;
    const AGGREGATE: AggregateType;
}

/// Knoten kinds (seed §2.2 `knoten_typ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnotenTyp {
    Ideen,
    Event,
    Ressource,
}

impl KnotenTyp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ideen => "ideen",
            Self::Event => "event",
            Self::Ressource => "ressource",
        }
    }
}

/// A Knoten was tied at a point on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenGeknuepft {
    pub title: String,
    pub typ: KnotenTyp,
    /// Free-form structured content of the design area (a JSON object).
    pub content: serde_json::Value,
    pub lat: f64,
    pub lng: f64,
    /// H3 cell at the fine resolution, in the usual hex notation (e.g. `8c1f...`).
    pub h3: String,
    pub expires_at: DateTime<Utc>,
}

impl Payload for KnotenGeknuepft {
    const TYPE: EventType = EventType::KnotenGeknuepft;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// The design area of a Knoten was edited. `version` is the new version (previous + 1); an
/// edit against a stale version is refused, never silently merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenGestaltet {
    pub version: u32,
    /// The whole new content of the design area (a JSON object).
    pub content: serde_json::Value,
}

impl Payload for KnotenGestaltet {
    const TYPE: EventType = EventType::KnotenGestaltet;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// The Knoten reached its expiry without becoming yarn: it leaves the live map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenVerfallen {
    /// The expiry that was reached.
    pub expired_at: DateTime<Utc>,
}

impl Payload for KnotenVerfallen {
    const TYPE: EventType = EventType::KnotenVerfallen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// Threads from enough distinct roles twisted the Knoten into yarn: it never decays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenVerzwirnt {
    /// The distinct roles whose active threads made the yarn (sorted).
    pub roles: Vec<Uuid>,
}

impl Payload for KnotenVerzwirnt {
    const TYPE: EventType = EventType::KnotenVerzwirnt;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// A message in the room of a Knoten (on the Knoten's chain). The text is sealed with the
/// author's data key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NachrichtGeschrieben {
    /// Id of the message (UUID), stable across retries.
    pub nachricht_id: Uuid,
    pub author: Uuid,
    pub text: crate::privacy::Sealed,
    /// Roles mentioned with @name, resolved when the message was written.
    pub mentions: Vec<Uuid>,
}

impl Payload for NachrichtGeschrieben {
    const TYPE: EventType = EventType::NachrichtGeschrieben;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// Moderation hid content on the map (not in DESIGN.md's list: added so the live map can take
/// it off). `FlagResolved { hidden }` is the decision, on the flag's chain in the governance
/// stream; this event records its consequence on the Knoten's chain in the social stream, where
/// viewport subscribers and their cursors follow the map. Appended by the jobs worker (message
/// id `verborgen:<flag id>`), once per flag; the content stays in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InhaltVerborgen {
    /// The flag whose resolution hid it.
    pub flag_id: Uuid,
    /// The Knoten itself or one message in its room.
    pub target: FlagTarget,
}

impl Payload for InhaltVerborgen {
    const TYPE: EventType = EventType::InhaltVerborgen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// Faden kinds (seed §2.2 `faden_typ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FadenTyp {
    Interesse,
    Beitrag,
    Mitarbeit,
}

impl FadenTyp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interesse => "interesse",
            Self::Beitrag => "beitrag",
            Self::Mitarbeit => "mitarbeit",
        }
    }
}

/// A role spun a thread to a Knoten, or renewed it (the same triple again, same chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FadenGesponnen {
    pub from_rolle: Uuid,
    pub to_knoten: Uuid,
    pub typ: FadenTyp,
    pub expires_at: DateTime<Utc>,
}

impl Payload for FadenGesponnen {
    const TYPE: EventType = EventType::FadenGesponnen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Faden;
}

/// The thread reached its expiry without becoming yarn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FadenVerfallen {
    pub expired_at: DateTime<Utc>,
}

impl Payload for FadenVerfallen {
    const TYPE: EventType = EventType::FadenVerfallen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Faden;
}

/// The thread was twisted into the yarn of its Knoten: it never decays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FadenVerzwirnt {
    pub knoten: Uuid,
}

impl Payload for FadenVerzwirnt {
    const TYPE: EventType = EventType::FadenVerzwirnt;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Faden;
}

/// A person registered a role. The name is sealed with the role's data key from the first
/// event on; the home is an H3 cell (coarse on purpose: privacy by design).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolleRegistriert {
    pub name: crate::privacy::Sealed,
    /// Home cell at [`crate::geo::HOME_RES`], hex.
    pub home_h3: String,
}

impl Payload for RolleRegistriert {
    const TYPE: EventType = EventType::RolleRegistriert;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Rolle;
}

/// The person deleted their role: its data key is destroyed (crypto-shredding); an alias
/// stays for the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDeleted {
    /// Pseudonym shown instead of the name from now on.
    pub alias: String,
}

impl Payload for UserDeleted {
    const TYPE: EventType = EventType::UserDeleted;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Rolle;
}

/// A refused command, recorded on `wg.<ort>.dlq.rejected` for transparency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRejected {
    /// The command that was refused, e.g. `createKnoten`.
    pub command: String,
    /// The GraphQL code the caller saw (VALIDATION, FORBIDDEN, CONFLICT, NOT_FOUND).
    pub code: String,
    pub reason: String,
    pub field: Option<String>,
    pub aggregate_id: Option<Uuid>,
}

impl Payload for EventRejected {
    const TYPE: EventType = EventType::EventRejected;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::System;
}

/// Something a worker could not process, on `wg.<ort>.dlq.dead`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlqEvent {
    /// Short machine-readable cause: `not_json`, `bad_envelope`, `hash_mismatch`,
    /// `projection_error`, ...
    pub reason: String,
    pub detail: String,
    pub stream: String,
    pub stream_seq: u64,
    pub subject: String,
    /// The original message as received (UTF-8 lossy if it was not text).
    pub original: String,
}

impl Payload for DlqEvent {
    const TYPE: EventType = EventType::DLQEvent;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::System;
}

/// JetStream refused or did not answer; events go to the Redis fallback until it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackActivated {
    pub reason: String,
    /// The first event that went to the fallback.
    pub first_event_id: String,
}

impl Payload for FallbackActivated {
    const TYPE: EventType = EventType::FallbackActivated;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::System;
}

// ---------------------------------------------------------------------------------------------
// Webrat: Anträge, votes, delegation, peer verification, moderation (DESIGN.md §4, issue 5).
// The rules that produce these live in `antrag`, `delegation`, `governance`, `verification` and
// `flag`; their module docs hold every choice made beyond DESIGN.md.

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

/// An admin did something only an admin may do (`weberei admin verify|grant`, a bank CSV
/// import, re-publishing a dead letter, ...). Recorded on the system stream; its envelope id is
/// what `RolleVerifiziert::by_admin_action` refers to. See `verification::admin_action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminActionExecuted {
    /// A snake_case action name, e.g. `verify_rolle`, `grant_admin`.
    pub action: String,
    /// What the action was about (a Rolle for `verify_rolle` and `grant_admin`), if anything.
    pub target: Option<Uuid>,
    /// Free detail for the audit trail (not personal data).
    pub detail: String,
}

impl Payload for AdminActionExecuted {
    const TYPE: EventType = EventType::AdminActionExecuted;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::System;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_is_ascii_and_round_trips() {
        for t in EventType::ALL {
            assert!(t.as_str().is_ascii());
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(EventType::ALL.len(), 38);
        assert_eq!(EventType::parse("KnotenGeknüpft"), None);
    }

    #[test]
    fn flag_target_kinds_parse_back_from_their_names_and_nothing_else() {
        for k in FlagTargetKind::ALL {
            assert_eq!(FlagTargetKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(FlagTargetKind::parse("Knoten"), None);
        assert_eq!(FlagTargetKind::parse(""), None);
    }
}
