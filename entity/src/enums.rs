//! The PostgreSQL enum types (created by migration `m20261127_000002_enums`). A label is part of
//! the stored data: never rename one.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "knoten_typ")]
#[serde(rename_all = "snake_case")]
pub enum KnotenTyp {
    #[sea_orm(string_value = "ideen")]
    Ideen,
    #[sea_orm(string_value = "event")]
    Event,
    #[sea_orm(string_value = "ressource")]
    Ressource,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "faden_typ")]
#[serde(rename_all = "snake_case")]
pub enum FadenTyp {
    #[sea_orm(string_value = "interesse")]
    Interesse,
    #[sea_orm(string_value = "beitrag")]
    Beitrag,
    #[sea_orm(string_value = "mitarbeit")]
    Mitarbeit,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "antrag_status")]
#[serde(rename_all = "snake_case")]
pub enum AntragStatus {
    #[sea_orm(string_value = "offen")]
    Offen,
    #[sea_orm(string_value = "angenommen")]
    Angenommen,
    #[sea_orm(string_value = "abgelehnt")]
    Abgelehnt,
    #[sea_orm(string_value = "quorum_verfehlt")]
    QuorumVerfehlt,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "vote")]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    #[sea_orm(string_value = "ja")]
    Ja,
    #[sea_orm(string_value = "nein")]
    Nein,
    #[sea_orm(string_value = "enthaltung")]
    Enthaltung,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "zahlung_status")]
#[serde(rename_all = "snake_case")]
pub enum ZahlungStatus {
    #[sea_orm(string_value = "initiated")]
    Initiated,
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "settled")]
    Settled,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "reversed")]
    Reversed,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "zahlung_source")]
#[serde(rename_all = "snake_case")]
pub enum ZahlungSource {
    #[sea_orm(string_value = "sepa")]
    Sepa,
    #[sea_orm(string_value = "stripe")]
    Stripe,
}
