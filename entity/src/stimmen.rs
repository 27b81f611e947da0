//! `stimmen`: votes. UNIQUE (antrag_id, rolle_id) in the database: one vote per role and Antrag.

use sea_orm::entity::prelude::*;

use crate::enums::Vote;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stimmen")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub antrag_id: Uuid,
    pub rolle_id: Uuid,
    pub vote: Vote,
    /// Set when the vote was counted for a delegator who did not vote (the delegator's id).
    pub delegated_from: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::antraege::Entity",
        from = "Column::AntragId",
        to = "super::antraege::Column::Id"
    )]
    Antrag,
}

impl Related<super::antraege::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Antrag.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
