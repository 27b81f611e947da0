//! `events_archive`: every processed event, append-only (UPDATE/DELETE raise), partitioned by
//! month on `ts`.
//!
//! Written by hand, the one entity that is not generated: the table has no primary key in
//! PostgreSQL (a partitioned table cannot have one without `ts`); `id` is marked as the key here because SeaORM needs one and `events_archive_keys`
//! makes it unique. Insert the `events_archive_keys` row in the same transaction, first.
//! Never use this entity's update or delete: the database refuses them.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events_archive")]
pub struct Model {
    /// Event id (ULID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `meta.msg_id` (the Nats-Msg-Id / idempotency key).
    pub msg_id: String,
    /// Event type name, e.g. `KnotenGeknuepft`.
    #[sea_orm(column_name = "type")]
    pub event_type: String,
    pub version: i32,
    pub aggregate_id: Uuid,
    pub aggregate_type: String,
    pub prev_hash: Option<String>,
    pub hash: String,
    pub ts: DateTimeWithTimeZone,
    pub subject: String,
    pub stream: String,
    pub stream_seq: i64,
    /// The whole envelope as received; its hash is over its RFC 8785 canonical form.
    #[sea_orm(column_type = "JsonBinary")]
    pub envelope: Json,
    pub archived_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
