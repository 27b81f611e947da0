//! The workers crate: the background processes that turn events into state and time into
//! events.
//!
//! - [`ProjectionWorker`] (`projection`, `projector/`): JetStream durable pull consumers ->
//!   PostgreSQL projections, `events_archive` and `aggregate_heads`, one transaction per batch,
//!   chain links checked, dead letters for what cannot be applied.
//! - [`JobsWorker`] (`jobs/`): the timers of DESIGN.md §4 (decay and yarn, decision deadlines,
//!   delegation expiry, hidden content on the map), each one a command through `bus`.
//! - [`ArchiveReader`] (`archive`): the archived part of a chain, for `bus` once JetStream's
//!   max_age has dropped it.
//!
//! The DLQ and snapshot workers (DESIGN.md §6) join here when they are built.
//!
//! This crate must never serve clients (no HTTP besides what the binary wires for metrics and
//! health) and never call the `api` crate: workers read events and projections, write
//! projections, and everything they tell the world goes out as events or metrics. The
//! projector is the only writer of the projection tables, the archive and the chain heads.

mod archive;
pub mod jobs;
pub mod projection;
mod projector;

pub use archive::ArchiveReader;
pub use jobs::{Clock, JobsConfig, JobsError, JobsReport, JobsWorker, SystemClock};
pub use projection::{ProjectionConfig, ProjectionWorker};
pub use projector::{BatchReport, DeadLetter, Incoming, Projector, ProjectorError};
