//! `knoten`: a node on the map. `point` (geography, NOT NULL) is not mapped: insert rows with raw
//! SQL (see the crate doc); reads and updates of the other columns can use this entity.

use sea_orm::entity::prelude::*;

use crate::enums::KnotenTyp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "knoten")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub typ: KnotenTyp,
    pub title: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub content: Json,
    /// H3 cell at the fine resolution, as BIGINT.
    pub h3: i64,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub is_yarn: bool,
    pub decayed_at: Option<DateTimeUtc>,
    /// Version of the shared design area (`KnotenGestaltet`).
    pub design_version: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::faeden::Entity")]
    Faeden,
}

impl Related<super::faeden::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Faeden.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
