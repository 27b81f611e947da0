//! `nachrichten`: the messages of a Knoten's room, projected from `NachrichtGeschrieben` with the
//! text opened with the author's data key. `text` is `None` once that key is destroyed
//! (`UserDeleted`) or if it could not be opened; show a placeholder then.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nachrichten")]
pub struct Model {
    /// `nachricht_id` of the event, stable across retries.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub knoten_id: Uuid,
    pub author: Uuid,
    pub text: Option<String>,
    /// Roles mentioned with @name.
    pub mentions: Vec<Uuid>,
    pub created_at: DateTimeUtc,
    /// The ULID of the event that wrote it (a cursor into the stream).
    pub event_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::knoten::Entity",
        from = "Column::KnotenId",
        to = "super::knoten::Column::Id"
    )]
    Knoten,
    #[sea_orm(
        belongs_to = "super::rollen::Entity",
        from = "Column::Author",
        to = "super::rollen::Column::Id"
    )]
    Author,
}

impl Related<super::knoten::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Knoten.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
