//! `aggregate_heads`: the head of each aggregate's hash chain, advanced by the projection worker
//! in the same transaction as the archive row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "aggregate_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub aggregate_id: Uuid,
    pub aggregate_type: String,
    /// `hash` of the last event; the next event's `prev_hash` must equal it.
    pub last_hash: String,
    pub last_event_id: String,
    /// JetStream stream sequence of the last event.
    pub last_seq: i64,
    pub stream: String,
    pub event_count: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
