//! The event backbone: JetStream streams of an Ort, publishing with msg-id dedup and
//! per-aggregate optimistic concurrency, loading an aggregate's chain, executing commands
//! (load, decide, seal, publish, retry on a stale head), the Redis Streams fallback with its
//! drain, and the two dead-letter subjects.
//!
//! This crate must never touch PostgreSQL or know about projections or GraphQL: it moves
//! events, it does not interpret them beyond the envelope and the aggregate's own rules.

mod command;
mod config;
mod error;
mod fallback;
mod streams;

pub use command::{ExecuteError, Executed, Expect, Outcome};
pub use config::BusConfig;
pub use error::BusError;
pub use fallback::{Fallback, FallbackEntry};
pub use streams::{Appended, Archive, Bus, Stored};
