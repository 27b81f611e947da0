//! `rolle_keys`: the per-role data key (32 bytes) that seals a role's personal data in events.
//! The API writes it at register (before publishing `RolleRegistriert`); the projection worker
//! destroys it on `UserDeleted` (`key` NULL, `destroyed_at` set). Never in events, never
//! truncated by a rebuild, never written again once destroyed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rolle_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rolle_id: Uuid,
    /// `None` once destroyed (crypto-shredding).
    pub key: Option<Vec<u8>>,
    pub created_at: DateTimeUtc,
    pub destroyed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
