//! Dataloaders: Anträge, their votes and objections, verification state.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{ID, Result};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::error::ApiError;

use super::types::{
    ANTRAG_COLUMNS, AntragNode, EinspruchNode, RolleVerification, StimmeNode, parse_vote,
    row_to_antrag,
};

/// Anträge by id (hidden ones are not found), batched.
pub struct AntragLoader(pub DatabaseConnection);

impl Loader<Uuid> for AntragLoader {
    type Value = AntragNode;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, AntragNode>, Self::Error> {
        let rows = self
            .0
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT {ANTRAG_COLUMNS} FROM antraege WHERE id = ANY($1) AND hidden_at IS NULL"
                ),
                [keys.to_vec().into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let a = row_to_antrag(row).map_err(ApiError::from)?;
            out.insert(a.uuid()?, a);
        }
        Ok(out)
    }
}

/// Direct votes per Antrag, batched.
pub struct StimmenByAntrag(pub DatabaseConnection);

impl Loader<Uuid> for StimmenByAntrag {
    type Value = Vec<StimmeNode>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<StimmeNode>>, Self::Error> {
        let rows = self
            .0
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT antrag_id, rolle_id, vote::text AS vote, created_at FROM stimmen \
                 WHERE antrag_id = ANY($1) AND delegated_from IS NULL ORDER BY created_at, rolle_id",
                [keys.to_vec().into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut out: HashMap<Uuid, Vec<StimmeNode>> = HashMap::new();
        for r in &rows {
            let antrag: Uuid = r.try_get("", "antrag_id").map_err(ApiError::from)?;
            let rolle: Uuid = r.try_get("", "rolle_id").map_err(ApiError::from)?;
            let vote: String = r.try_get("", "vote").map_err(ApiError::from)?;
            out.entry(antrag).or_default().push(StimmeNode {
                antrag_id: ID(antrag.to_string()),
                rolle_id: ID(rolle.to_string()),
                vote: parse_vote(&vote).map_err(ApiError::from)?.into(),
                created_at: r.try_get("", "created_at").map_err(ApiError::from)?,
            });
        }
        Ok(out)
    }
}

/// Objections per Antrag, batched.
pub struct EinsprucheByAntrag(pub DatabaseConnection);

impl Loader<Uuid> for EinsprucheByAntrag {
    type Value = Vec<EinspruchNode>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<EinspruchNode>>, Self::Error> {
        let rows = self
            .0
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT antrag_id, \"by\", reason, created_at FROM einsprueche \
                 WHERE antrag_id = ANY($1) ORDER BY created_at, \"by\"",
                [keys.to_vec().into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut out: HashMap<Uuid, Vec<EinspruchNode>> = HashMap::new();
        for r in &rows {
            let antrag: Uuid = r.try_get("", "antrag_id").map_err(ApiError::from)?;
            let by: Uuid = r.try_get("", "by").map_err(ApiError::from)?;
            out.entry(antrag).or_default().push(EinspruchNode {
                antrag_id: ID(antrag.to_string()),
                rolle_id: ID(by.to_string()),
                reason: r.try_get("", "reason").map_err(ApiError::from)?,
                created_at: r.try_get("", "created_at").map_err(ApiError::from)?,
            });
        }
        Ok(out)
    }
}

/// Verification state per role, batched.
pub struct VerificationLoader(pub DatabaseConnection);

impl Loader<Uuid> for VerificationLoader {
    type Value = RolleVerification;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, RolleVerification>, Self::Error> {
        let rows = self
            .0
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id, verified_at, verified_by, verification_confirmations, is_admin \
                 FROM rollen WHERE id = ANY($1)",
                [keys.to_vec().into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let id: Uuid = r.try_get("", "id").map_err(ApiError::from)?;
            let verified_at: Option<DateTime<Utc>> =
                r.try_get("", "verified_at").map_err(ApiError::from)?;
            let verified_by: Vec<Uuid> = r
                .try_get::<Option<Vec<Uuid>>>("", "verified_by")
                .map_err(ApiError::from)?
                .unwrap_or_default();
            let confirmations: Vec<Uuid> = r
                .try_get::<Option<Vec<Uuid>>>("", "verification_confirmations")
                .map_err(ApiError::from)?
                .unwrap_or_default();
            let confirmers = if verified_at.is_some() && !verified_by.is_empty() {
                verified_by
            } else {
                confirmations
            };
            out.insert(
                id,
                RolleVerification {
                    verified: verified_at.is_some(),
                    verified_at,
                    confirmed_by_ids: confirmers.iter().map(|c| ID(c.to_string())).collect(),
                    is_admin: r
                        .try_get::<Option<bool>>("", "is_admin")
                        .map_err(ApiError::from)?
                        .unwrap_or(false),
                },
            );
        }
        Ok(out)
    }
}
