//! The shape every aggregate has: `apply` folds its events into state, `decide` turns a command
//! into new events or a refusal. Both are pure.

use serde_json::Value;

use crate::envelope::{AggregateType, Envelope};
use crate::error::DomainError;
use crate::events::{EventType, Payload};

/// An aggregate's state, built by folding its chain.
pub trait Aggregate: Default + Clone + Send + 'static {
    /// Which kind of aggregate this is: its chains live under this type's subjects.
    const TYPE: AggregateType;

    type Command;

    /// Fold one event of this aggregate's chain into the state.
    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError>;

    /// Decide a command against the current state.
    fn decide(&self, cmd: &Self::Command) -> Result<Vec<NewEvent>, DomainError>;

    /// State from a chain, oldest first.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Result<Self, DomainError> {
        let mut state = Self::default();
        for e in events {
            state.apply(e)?;
        }
        Ok(state)
    }
}

/// A decided event before it is sealed into an envelope (no id, time, chain link yet).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub version: u32,
    pub aggregate_type: AggregateType,
    pub payload: Value,
}

impl NewEvent {
    pub fn from_payload<P: Payload>(payload: &P) -> Result<Self, DomainError> {
        let payload = serde_json::to_value(payload)
            .map_err(|e| DomainError::validation("payload", e.to_string()))?;
        Ok(Self {
            event_type: P::TYPE,
            version: P::VERSION,
            aggregate_type: P::AGGREGATE,
            payload,
        })
    }
}

/// given / when / then for aggregate tests (cqrs-es `TestFramework` style).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;
    use crate::envelope::{Actor, Meta, Ort};
    use chrono::{DateTime, Utc};
    use ulid::Ulid;
    use uuid::Uuid;

    pub struct Given<A: Aggregate> {
        state: A,
        history: Vec<Envelope>,
    }

    /// Seal decided events into envelopes on a test chain.
    pub fn seal_all(prev: Option<&Envelope>, events: &[NewEvent]) -> Vec<Envelope> {
        let ort = Ort::new("test").unwrap_or_else(|_| unreachable!());
        let mut prev_hash = prev.map(|p| crate::hash::hash_envelope(p).unwrap_or_default());
        let mut out = Vec::new();
        for (n, e) in events.iter().enumerate() {
            let env = Envelope {
                id: Ulid::from_parts(1_800_000_000_000 + n as u64, n as u128),
                event_type: e.event_type.as_str().into(),
                version: e.version,
                aggregate_id: Uuid::nil(),
                aggregate_type: e.aggregate_type,
                prev_hash: prev_hash.clone(),
                ts: DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
                subject: ort.aggregate_subject(e.aggregate_type, Uuid::nil()),
                payload: e.payload.clone(),
                meta: Meta {
                    actor: Actor::System,
                    ip_hash: None,
                    ua_hash: None,
                    msg_id: format!("m{n}"),
                },
            };
            prev_hash = crate::hash::hash_envelope(&env).ok();
            out.push(env);
        }
        out
    }

    pub fn given<A: Aggregate>(events: &[NewEvent]) -> Given<A> {
        let history = seal_all(None, events);
        let state = A::fold(&history).unwrap_or_else(|e| panic!("given events must apply: {e}"));
        Given { state, history }
    }

    impl<A: Aggregate> Given<A> {
        pub fn when(&self, cmd: &A::Command) -> Result<Vec<NewEvent>, DomainError> {
            self.state.decide(cmd)
        }

        pub fn history(&self) -> &[Envelope] {
            &self.history
        }
    }
}
