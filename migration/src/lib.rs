//! Schema migrations for Weberei's PostgreSQL database: extensions (PostGIS, pg_trgm), enum
//! types, the projection tables, the partitioned append-only `events_archive`, the
//! per-aggregate hash-chain heads, the social tables (messages, per-role data keys, sessions)
//! and the Webrat's (decisions and their audit, objections, delegation history, flags).
//!
//! Every migration has a working `down`, and down-then-up must leave the same schema (tested in
//! `tests/`). This crate must never hold business rules or write rows other than what the
//! schema itself needs, and must never run as a side effect of anything but an explicit
//! `weberei migrate` (or a test database being prepared).
//!
//! Most DDL is raw SQL: the projection worker writes these tables with raw SQL, so the DDL is
//! kept in the same language and reads like the schema it produces; SeaQuery cannot express
//! PostGIS types, trigram indexes, partitioning or plpgsql anyway.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_extensions;
mod m20261127_000002_enums;
mod m20261127_000003_core_tables;
mod m20261127_000004_events_archive;
mod m20261127_000005_aggregate_heads;
mod m20261127_000006_social;
mod m20261127_000007_governance;
mod m20261127_000008_map_hidden;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_extensions::Migration),
            Box::new(m20261127_000002_enums::Migration),
            Box::new(m20261127_000003_core_tables::Migration),
            Box::new(m20261127_000004_events_archive::Migration),
            Box::new(m20261127_000005_aggregate_heads::Migration),
            Box::new(m20261127_000006_social::Migration),
            Box::new(m20261127_000007_governance::Migration),
            Box::new(m20261127_000008_map_hidden::Migration),
        ]
    }
}
