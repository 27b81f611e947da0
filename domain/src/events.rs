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
