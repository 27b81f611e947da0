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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_is_ascii_and_round_trips() {
        for t in EventType::ALL {
            assert!(t.as_str().is_ascii());
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(EventType::ALL.len(), 37);
        assert_eq!(EventType::parse("KnotenGeknüpft"), None);
    }
}
