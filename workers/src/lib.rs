//! Background workers that turn events into state: the projection worker (JetStream durable
//! pull consumers -> PostgreSQL projections, `events_archive` and `aggregate_heads`, one
//! transaction per batch, chain links checked, dead letters for what cannot be applied).
//! Jobs, DLQ and snapshot workers join here as they are built.
//!
//! Workers must never serve clients or call the API: they read events and write projections;
//! everything they tell the world goes out as events or metrics.

mod archive;
pub mod jobs;
pub mod projection;
mod projector;

pub use archive::ArchiveReader;
pub use jobs::{Clock, JobsConfig, JobsError, JobsReport, JobsWorker, SystemClock};
pub use projection::{ProjectionConfig, ProjectionWorker};
pub use projector::{BatchReport, DeadLetter, Incoming, Projector, ProjectorError};
