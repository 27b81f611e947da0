//! `antrag_counted_votes`: the audit of a decided Antrag, from `AntragEntschieden.counted`.
//! One row per counted voice; anyone can recompute the decision from these rows and the
//! `antraege` row's `active_roles` and `quorum_percent`.

use sea_orm::entity::prelude::*;

use crate::enums::Vote;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "antrag_counted_votes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub antrag_id: Uuid,
    /// Whose voice this is: `delegated_from` if set, else `rolle` (a CHECK holds it).
    #[sea_orm(primary_key, auto_increment = false)]
    pub voice: Uuid,
    /// The role whose direct vote was used.
    pub rolle: Uuid,
    pub vote: Vote,
    /// The delegator (who did not vote) this vote counted for.
    pub delegated_from: Option<Uuid>,
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
