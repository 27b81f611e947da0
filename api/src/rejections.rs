//! Recording refused commands: every refused mutation becomes one `EventRejected` on the Ort's
//! `dlq.rejected` subject (an audit trail of what was refused, and why).
//!
//! Called by the GraphQL edge (`graphql/edge.rs`) once per refused mutation field, never by the
//! error type or a service: refusing and recording stay apart. Knows nothing of GraphQL.

use bus::Bus;
use domain::events::EventRejected;
use domain::{Actor, Meta};
use tracing::warn;
use uuid::Uuid;

use crate::auth::ClientInfo;

/// A command that was refused: which, with what code and reason.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub command: String,
    pub code: String,
    pub reason: String,
    pub field: Option<String>,
    pub aggregate_id: Option<Uuid>,
}

/// Record a refused command on the rejected subject; failures to record are logged, never
/// shown to the caller (the refusal itself is what they need to see).
pub(crate) async fn record(bus: &Bus, client: Option<&ClientInfo>, refusal: Refusal) {
    let command = refusal.command.clone();
    let rejected = EventRejected {
        command: refusal.command,
        code: refusal.code,
        reason: refusal.reason,
        field: refusal.field,
        aggregate_id: refusal.aggregate_id,
    };
    let meta = Meta {
        actor: Actor::System,
        ip_hash: client.and_then(|c| c.ip_hash.clone()),
        ua_hash: client.and_then(|c| c.ua_hash.clone()),
        msg_id: format!("rejected:{}", ulid::Ulid::new()),
    };
    if let Err(e) = bus.publish_rejected(&rejected, meta).await {
        warn!(error = %e, command, "could not record EventRejected");
    }
}
