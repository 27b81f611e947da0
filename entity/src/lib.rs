//! SeaORM entities for Weberei's PostgreSQL tables: the projections (rollen, knoten, faeden,
//! antraege, stimmen, delegationen, zahlungen, nachrichten, einsprueche, antrag_counted_votes,
//! flags, rolle_activity), the append-only `events_archive` with its `events_archive_keys`, the
//! hash-chain `aggregate_heads`, and the API-owned `rolle_keys` and `sessions`.
//!
//! Everything in `generated/` is written by `sea-orm-cli generate entity` (pinned in
//! `entity/codegen`) from a freshly migrated database: `cargo run -p weberei-entity-codegen`
//! regenerates it, and `--check` (also the test `entity/codegen/tests/drift.rs`) fails when the
//! committed files differ from what the migrations produce. Never edit `generated/` by hand; the
//! schema is owned by the `migration` crate.
//!
//! This crate must never hold business rules, do I/O of its own, or derive GraphQL (or other
//! API) types: the API converts `Model`s into its own types by hand.
//!
//! What the generator cannot express, and how the code deals with it:
//! - The PostGIS `point` columns of `rollen` and `knoten` are generated as `String` with the
//!   custom column type `geography`, which sqlx cannot decode into a `String`. So never load
//!   those two tables with all columns (`Entity::find().all()`): select the columns you need
//!   (`select_only().columns([...])`), and read and write the point with SQL in the read model of
//!   that domain (`ST_X(point::geometry)`, `ST_SetSRID(ST_MakePoint($lon, $lat), 4326)::geography`).
//! - Timestamps are `DateTimeWithTimeZone` (`chrono::DateTime<FixedOffset>`, always UTC here):
//!   convert with `.with_timezone(&Utc)` and `DateTime<Utc>::into()`.
//! - `events_archive` is partitioned by month and has no primary key in PostgreSQL (it would have
//!   to include `ts`); SeaORM needs one, so that entity is the one written by hand
//!   (`events_archive.rs`, `id` as the key; `events_archive_keys` makes it unique).
//! - The schema has no foreign keys between projections (events may arrive in any order across
//!   aggregates), so there are no generated `Relation`s: join in queries where needed.

mod generated;

pub mod events_archive;
pub use generated::*;

/// The entities under short names, as `sea-orm-cli` writes them, plus the hand-written archive.
pub mod prelude {
    pub use crate::events_archive::Entity as EventsArchive;
    pub use crate::generated::prelude::*;
}
