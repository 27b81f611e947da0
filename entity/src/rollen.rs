//! `rollen`: a person's role in an Ort (home cell, peer verification). `point` is not mapped
//! (see the crate doc).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rollen")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// Home H3 cell as BIGINT.
    pub h3: i64,
    /// Roles that confirmed this one (`VerifizierungBestaetigt`).
    pub verified_by: Vec<Uuid>,
    pub verified_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
