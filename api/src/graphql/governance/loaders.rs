//! Dataloaders: Anträge, their votes and objections, verification state.

use std::collections::HashMap;

use async_graphql::Result;
use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::types::{AntragNode, EinspruchNode, RolleVerification, StimmeNode};
use crate::error::ApiError;
use crate::graphql::primitives::id;
use crate::read;

/// Anträge by id (hidden ones are not found), batched.
pub struct AntragLoader(pub DatabaseConnection);

impl Loader<Uuid> for AntragLoader {
    type Value = AntragNode;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, AntragNode>, Self::Error> {
        let rows = read::governance::antraege(&self.0, keys)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(|r| (r.id, r.into())).collect())
    }
}

/// Direct votes per Antrag, batched.
pub struct StimmenByAntrag(pub DatabaseConnection);

impl Loader<Uuid> for StimmenByAntrag {
    type Value = Vec<StimmeNode>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<StimmeNode>>, Self::Error> {
        let rows = read::governance::direct_votes(&self.0, keys)
            .await
            .map_err(ApiError::from)?;
        let mut out: HashMap<Uuid, Vec<StimmeNode>> = HashMap::new();
        for r in rows {
            out.entry(r.antrag_id).or_default().push(StimmeNode {
                antrag_id: id(r.antrag_id),
                rolle_id: id(r.rolle_id),
                vote: r.vote.into(),
                created_at: r.created_at,
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
        let rows = read::governance::einsprueche(&self.0, keys)
            .await
            .map_err(ApiError::from)?;
        let mut out: HashMap<Uuid, Vec<EinspruchNode>> = HashMap::new();
        for r in rows {
            out.entry(r.antrag_id).or_default().push(EinspruchNode {
                antrag_id: id(r.antrag_id),
                rolle_id: id(r.by),
                reason: r.reason,
                created_at: r.created_at,
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
        let rows = read::accounts::verifications(&self.0, keys)
            .await
            .map_err(ApiError::from)?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let confirmers = if r.verified_at.is_some() && !r.verified_by.is_empty() {
                r.verified_by
            } else {
                r.confirmations
            };
            out.insert(
                r.id,
                RolleVerification {
                    verified: r.verified_at.is_some(),
                    verified_at: r.verified_at,
                    confirmed_by_ids: confirmers.into_iter().map(id).collect(),
                    is_admin: r.is_admin,
                },
            );
        }
        Ok(out)
    }
}
