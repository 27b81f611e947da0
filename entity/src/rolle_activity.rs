//! `rolle_activity`: the projector's record of each role's latest event (any stream), kept
//! apart from `rollen` so that the order in which streams are projected does not matter.
//! `rollen.last_active_at` mirrors it; read that one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rolle_activity")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rolle_id: Uuid,
    pub last_active_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
