//! `einsprueche`: objections to an Antrag, one row per `EinspruchEingegangen`. The reason is
//! opened with the objector's data key; `None` once that key is destroyed (`UserDeleted`) or if
//! it could not be opened: show a placeholder then.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "einsprueche")]
pub struct Model {
    /// UUIDv5 of the event id (see `workers::projector::governance`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub antrag_id: Uuid,
    /// The objecting role.
    pub by: Uuid,
    pub reason: Option<String>,
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
