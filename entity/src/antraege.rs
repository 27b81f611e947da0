//! `antraege`: proposals in a Weberei's Webrat.

use sea_orm::entity::prelude::*;

use crate::enums::AntragStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "antraege")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The Weberei: an H3 cell at `WEAVERY_RES`, as BIGINT.
    pub weavery_h3: i64,
    pub title: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub content: Json,
    pub status: AntragStatus,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub decision_deadline: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::stimmen::Entity")]
    Stimmen,
}

impl Related<super::stimmen::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Stimmen.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
