//! The Webrat's queries.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, Result};
use uuid::Uuid;

use super::loaders::AntragLoader;
use super::moderation::{FlagNode, ModerationThread};
use super::types::{AntragNode, AntragStatusGql, MyDelegation};
use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::primitives::{
    BboxInput, decode_keyset, encode_keyset, far_future, id, page_size, parse_id, require_caller,
};
use crate::live::governance::cell_centre;
use crate::read;

// ---------------------------------------------------------------------------------------------
// Queries

/// A page of Anträge from the `antraege` query, newest first.
pub(crate) type AntragConnection = Connection<String, AntragNode, EmptyFields, EmptyFields>;

/// A page of moderation threads from the `moderationThreads` query, most recently flagged first.
pub(crate) type ModerationThreadConnection =
    Connection<String, ModerationThread, EmptyFields, EmptyFields>;

#[derive(Default)]
pub struct GovernanceQuery;

#[Object]
impl GovernanceQuery {
    /// Anträge of the Webereien whose cell centre lies in the box (the Webrat panel), newest
    /// first. Hidden Anträge are left out.
    async fn antraege(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The box whose Webereien to list, in degrees; its area (width times height) must not exceed `Config.maxBboxAreaDeg2` square degrees (VALIDATION)."
        )]
        bbox: BboxInput,
        #[graphql(desc = "Only Anträge with this status.")] status: Option<AntragStatusGql>,
        #[graphql(desc = "Page size, 1 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge of the previous page.")] after: Option<String>,
    ) -> Result<AntragConnection> {
        let deps = ctx.data::<Deps>()?;
        let bbox = bbox.validate(deps.config.max_bbox_area_deg2)?;
        let first = page_size(first, 50, deps.config.max_page_size)?;
        let after = after
            .as_deref()
            .map(|c| decode_keyset(c, "after", "connection"))
            .transpose()?;
        let status = status.map(Into::into);
        // Webereien are few per Ort: pick those whose centre is in the box, then their Anträge.
        let cells = read::governance::webereien(&deps.db, status)
            .await
            .map_err(ApiError::from)?;
        let mut in_box = Vec::new();
        for h3 in cells {
            if let Ok(cell) = h3o::CellIndex::try_from(h3 as u64) {
                let (lat, lng) = cell_centre(cell);
                if domain::geo::Point::new(lat, lng).is_ok_and(|p| bbox.contains(p)) {
                    in_box.push(h3);
                }
            }
        }
        let before = after.unwrap_or((far_future(), Uuid::max()));
        let rows = if in_box.is_empty() {
            Vec::new()
        } else {
            read::governance::antraege_page(&deps.db, in_box, status, before, first as u64 + 1)
                .await
                .map_err(ApiError::from)?
        };
        let mut conn = Connection::new(after.is_some(), rows.len() > first as usize);
        for row in rows.into_iter().take(first as usize) {
            let node = AntragNode::from(row);
            conn.edges
                .push(Edge::new(encode_keyset(node.created_at, &node.id), node));
        }
        Ok(conn)
    }

    /// One Antrag by id (null if there is none, or it was hidden by moderation).
    async fn antrag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Id of the Antrag (UUID).")] id: ID,
    ) -> Result<Option<AntragNode>> {
        let id = parse_id(&id, "id")?;
        ctx.data::<DataLoader<AntragLoader>>()?.load_one(id).await
    }

    /// The caller's delegations in force: its own and those made to it. Needs a session.
    async fn my_delegation(&self, ctx: &Context<'_>) -> Result<MyDelegation> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let rows = read::governance::delegations_in_force(&deps.db, caller.rolle_id)
            .await
            .map_err(ApiError::from)?;
        let me = id(caller.rolle_id);
        let mut out = MyDelegation {
            outgoing: None,
            incoming: Vec::new(),
        };
        for r in rows {
            let d = super::types::DelegationNode::from(r);
            if d.from_id == me {
                out.outgoing = Some(d);
            } else {
                out.incoming.push(d);
            }
        }
        Ok(out)
    }

    /// Moderation threads (all flags on one piece of content), most recently flagged first.
    async fn moderation_threads(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "true: only threads with an unresolved flag; false: only settled ones; \
                          null: all."
        )]
        open: Option<bool>,
        #[graphql(desc = "Page size, 1 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge of the previous page.")] after: Option<String>,
    ) -> Result<ModerationThreadConnection> {
        let deps = ctx.data::<Deps>()?;
        let first = page_size(first, 50, deps.config.max_page_size)?;
        let after = after
            .as_deref()
            .map(|c| decode_keyset(c, "after", "connection"))
            .transpose()?;
        let before = after.unwrap_or((far_future(), Uuid::max()));
        let threads =
            read::governance::moderation_threads(&deps.db, open, before, first as u64 + 1)
                .await
                .map_err(ApiError::from)?;
        let has_next = threads.len() > first as usize;
        let targets: Vec<(Uuid, chrono::DateTime<chrono::Utc>)> = threads
            .into_iter()
            .take(first as usize)
            .map(|(last_at, target)| (target, last_at))
            .collect();
        let ids: Vec<Uuid> = targets.iter().map(|(id, _)| *id).collect();
        let rows = read::governance::flags_on(&deps.db, ids)
            .await
            .map_err(ApiError::from)?;
        let mut by_target: HashMap<Uuid, Vec<FlagNode>> = HashMap::new();
        for r in rows {
            by_target.entry(r.target_id).or_default().push(r.into());
        }
        let mut conn = Connection::new(after.is_some(), has_next);
        for (id, last_at) in targets {
            let flags = by_target.remove(&id).unwrap_or_default();
            let Some(kind) = flags.first().map(|f| f.target_kind) else {
                continue;
            };
            let outcome = flags
                .iter()
                .filter(|f| f.resolved_at.is_some())
                .max_by_key(|f| f.resolved_at)
                .and_then(|f| f.outcome);
            let thread = ModerationThread {
                target_kind: kind,
                target_id: ID(id.to_string()),
                open: flags.iter().any(|f| f.resolved_at.is_none()),
                outcome,
                last_flagged_at: last_at,
                flags,
            };
            conn.edges
                .push(Edge::new(encode_keyset(last_at, &thread.target_id), thread));
        }
        Ok(conn)
    }

    /// One flag by id.
    async fn flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Id of the flag (UUID).")] id: ID,
    ) -> Result<Option<FlagNode>> {
        let deps = ctx.data::<Deps>()?;
        let id = parse_id(&id, "id")?;
        Ok(read::governance::flag(&deps.db, id)
            .await
            .map_err(ApiError::from)?
            .map(Into::into))
    }
}
