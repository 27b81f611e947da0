//! `flags`: moderation threads, one row per Flag aggregate (`FlagRaised`, then `FlagResolved`).
//! Several flags on the same content form one thread in the Webrat (group by target). Reasons
//! are opened with the writing role's data key; `None` once that key is destroyed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "flags")]
pub struct Model {
    /// The Flag aggregate id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `knoten`, `nachricht`, `antrag` or `rolle`.
    pub target_kind: String,
    pub target_id: Uuid,
    pub reason: Option<String>,
    pub raised_by: Uuid,
    /// The role that wrote the content (may not resolve the flag); `None` for system content.
    pub author_of_target: Option<Uuid>,
    pub created_at: DateTimeUtc,
    /// `kept` or `hidden` once resolved.
    pub outcome: Option<String>,
    pub resolution_reason: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
