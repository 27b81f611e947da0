//! `zahlungen`: donations (initiated -> pending -> settled | failed | reversed).

use sea_orm::entity::prelude::*;

use crate::enums::{ZahlungSource, ZahlungStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "zahlungen")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub rolle_id: Uuid,
    /// The Knoten the donation goes to (draws a golden thread once settled), if any.
    pub knoten_id: Option<Uuid>,
    /// Always > 0 (CHECK constraint).
    pub betrag_cents: i32,
    pub status: ZahlungStatus,
    pub source: ZahlungSource,
    /// SEPA reference code given to the donor.
    pub reference: Option<String>,
    pub created_at: DateTimeUtc,
    pub settled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
