//! Event type names (forever: never rename one) and the typed payloads that exist so far.
//! Payload types for the other events arrive with the features that produce them.
//!
//! The payloads are grouped by family and re-exported from here: `social` (Knoten, Faden,
//! a Rolle's registration and deletion), `governance` (the Webrat: Anträge, votes,
//! delegation, peer verification, moderation) and `system` (refused commands, dead letters,
//! the fallback, admin actions).

use serde::{Serialize, de::DeserializeOwned};

use crate::envelope::AggregateType;

mod governance;
mod social;
mod system;

pub use governance::*;
pub use social::*;
pub use system::*;

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
