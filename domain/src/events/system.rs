//! Payloads of the system family: refused commands, dead letters, the Redis fallback
//! switching on, and admin actions (all of aggregate type `System`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::AggregateType;

use super::{EventType, Payload};

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
