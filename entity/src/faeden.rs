//! `faeden`: a thread from a Rolle to a Knoten. The relations are declared in code only; the
//! table has no foreign keys (projections may be applied in any order).

use sea_orm::entity::prelude::*;

use crate::enums::FadenTyp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "faeden")]
pub struct Model {
    /// UUIDv5 of (rolle, knoten, typ): spinning the same thread again renews it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub from_rolle: Uuid,
    pub to_knoten: Uuid,
    pub typ: FadenTyp,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub is_yarn: bool,
    pub decayed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::knoten::Entity",
        from = "Column::ToKnoten",
        to = "super::knoten::Column::Id"
    )]
    Knoten,
    #[sea_orm(
        belongs_to = "super::rollen::Entity",
        from = "Column::FromRolle",
        to = "super::rollen::Column::Id"
    )]
    Rolle,
}

impl Related<super::knoten::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Knoten.def()
    }
}

impl Related<super::rollen::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Rolle.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
