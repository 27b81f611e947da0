//! The pure core of Weberei: the event envelope and its typed payloads, RFC 8785 canonical JSON
//! and the per-aggregate SHA-256 hash chain, the aggregates (`decide` a command into events,
//! `apply` an event to state), the rules, and the H3/geometry helpers.
//!
//! This crate must never do I/O: no network, no database, no clock, no randomness, no async.
//! Facts from outside (now, ids, the caller) are put into a command before it is decided.

pub mod aggregate;
pub mod antrag;
pub mod delegation;
pub mod envelope;
pub mod error;
pub mod events;
pub mod faden;
pub mod flag;
pub mod geo;
pub mod governance;
pub mod hash;
pub mod knoten;
pub mod privacy;
pub mod rolle;
pub mod rules;
pub mod verification;

pub use aggregate::{Aggregate, NewEvent};
pub use envelope::{Actor, AggregateType, Envelope, EventContext, Meta, Ort, StreamDomain};
pub use error::DomainError;
pub use events::{EventType, Payload};
pub use hash::{ChainBreak, canonical_json, hash_envelope, hash_value, verify_chain};
