//! Per-domain services: building a command from what the caller asked and the facts the read
//! models hold, and executing it through the bus. The GraphQL resolvers, the demo town
//! (`src/demo.rs`) and the CLI (`src/admin.rs`) all change state through here.
//!
//! A service returns events and domain payloads, never GraphQL types; it reads the database
//! only through `crate::read`, and it never records refusals (the GraphQL edge does).

pub mod accounts;
pub mod admin;
pub(crate) mod governance;
pub(crate) mod knoten;
pub mod rooms;

use bus::Stored;
use domain::{Actor, Meta};

use crate::auth::{Caller, ClientInfo};
use crate::error::ApiError;

/// Meta of an event caused by `caller` through `command` with idempotency key `key`. The msg
/// id is scoped to the caller, so two people's keys never collide.
pub(crate) fn meta_for(
    caller: &Caller,
    client: Option<&ClientInfo>,
    command: &str,
    key: &str,
) -> Meta {
    Meta {
        actor: Actor::Rolle(caller.rolle_id),
        ip_hash: client.and_then(|c| c.ip_hash.clone()),
        ua_hash: client.and_then(|c| c.ua_hash.clone()),
        msg_id: format!("{}:{command}:{key}", caller.rolle_id),
    }
}

/// The first event a command produced.
pub(crate) fn first_event(events: &[Stored]) -> Result<&Stored, ApiError> {
    events
        .first()
        .ok_or_else(|| ApiError::unavailable("the command produced no event"))
}

/// Who asks for a command and with which idempotency key: what every command's ids and meta
/// are derived from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub caller: Caller,
    pub client: Option<&'a ClientInfo>,
    /// A validated idempotency key.
    pub key: &'a str,
}

impl Origin<'_> {
    /// The meta of the event `command` records (see [`meta_for`]).
    pub(crate) fn meta(&self, command: &str) -> Meta {
        meta_for(&self.caller, self.client, command, self.key)
    }

    /// An id derived from the caller and the key: `UUIDv5(ns, "<what>:<rolle>:<key>")`.
    pub(crate) fn derived_id(&self, what: &str) -> uuid::Uuid {
        uuid::Uuid::new_v5(
            &accounts::ID_NAMESPACE,
            format!("{what}:{}:{}", self.caller.rolle_id, self.key).as_bytes(),
        )
    }
}
