//! The Webrat's queries.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::DomainError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::common::require_caller;
use crate::graphql::knoten::BboxInput;
use crate::graphql::rolle::parse_id;

use super::loaders::AntragLoader;
use super::types::{
    ANTRAG_COLUMNS, AntragNode, AntragStatusGql, DELEGATION_COLUMNS, FLAG_COLUMNS, FlagNode,
    ModerationThread, MyDelegation, cell_centre, row_to_antrag, row_to_delegation, row_to_flag,
};

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
            .map(|c| decode_cursor(c, "after"))
            .transpose()?;
        let status = status.map(|s| s.as_db().to_owned());
        // Webereien are few per Ort: pick those whose centre is in the box, then their Anträge.
        let cells = deps
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT DISTINCT weavery_h3 FROM antraege WHERE hidden_at IS NULL \
                 AND ($1::text IS NULL OR status::text = $1)",
                [status.clone().into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut in_box = Vec::new();
        for row in &cells {
            let h3: i64 = row.try_get("", "weavery_h3").map_err(ApiError::from)?;
            if let Ok(cell) = h3o::CellIndex::try_from(h3 as u64) {
                let (lat, lng) = cell_centre(cell);
                if domain::geo::Point::new(lat, lng).is_ok_and(|p| bbox.contains(p)) {
                    in_box.push(h3);
                }
            }
        }
        let (before_ts, before_id) = after.unwrap_or((far_future(), Uuid::max()));
        let rows = if in_box.is_empty() {
            Vec::new()
        } else {
            deps.db
                .query_all(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "SELECT {ANTRAG_COLUMNS} FROM antraege WHERE hidden_at IS NULL \
                         AND weavery_h3 = ANY($1) AND ($2::text IS NULL OR status::text = $2) \
                         AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5"
                    ),
                    [
                        in_box.into(),
                        status.into(),
                        before_ts.into(),
                        before_id.into(),
                        i64::from(first + 1).into(),
                    ],
                ))
                .await
                .map_err(ApiError::from)?
        };
        let mut conn = Connection::new(after.is_some(), rows.len() > first as usize);
        for row in rows.iter().take(first as usize) {
            let node = row_to_antrag(row).map_err(ApiError::from)?;
            conn.edges
                .push(Edge::new(encode_cursor(node.created_at, &node.id), node));
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
        let rows = deps
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT {DELEGATION_COLUMNS} FROM delegationen \
                     WHERE (from_rolle = $1 OR to_rolle = $1) AND revoked_at IS NULL \
                     AND ended_at IS NULL AND valid_until > now() ORDER BY created_at, from_rolle"
                ),
                [caller.rolle_id.into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let me = ID(caller.rolle_id.to_string());
        let mut out = MyDelegation {
            outgoing: None,
            incoming: Vec::new(),
        };
        for r in &rows {
            let d = row_to_delegation(r).map_err(ApiError::from)?;
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
            .map(|c| decode_cursor(c, "after"))
            .transpose()?;
        let (before_ts, before_id) = after.unwrap_or((far_future(), Uuid::max()));
        let threads = deps
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT target_id, max(created_at) AS last_at FROM flags GROUP BY target_id \
                 HAVING ($1::boolean IS NULL OR bool_or(resolved_at IS NULL) = $1) \
                 AND (max(created_at), target_id) < ($2, $3) \
                 ORDER BY last_at DESC, target_id DESC LIMIT $4",
                [
                    open.into(),
                    before_ts.into(),
                    before_id.into(),
                    i64::from(first + 1).into(),
                ],
            ))
            .await
            .map_err(ApiError::from)?;
        let has_next = threads.len() > first as usize;
        let mut targets = Vec::new();
        for t in threads.iter().take(first as usize) {
            targets.push((
                t.try_get::<Uuid>("", "target_id").map_err(ApiError::from)?,
                t.try_get::<DateTime<Utc>>("", "last_at")
                    .map_err(ApiError::from)?,
            ));
        }
        let ids: Vec<Uuid> = targets.iter().map(|(id, _)| *id).collect();
        let rows = deps
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT {FLAG_COLUMNS} FROM flags WHERE target_id = ANY($1) ORDER BY created_at, id"
                ),
                [ids.into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut by_target: HashMap<Uuid, Vec<FlagNode>> = HashMap::new();
        for r in &rows {
            let f = row_to_flag(r).map_err(ApiError::from)?;
            by_target
                .entry(parse_id(&f.target_id, "targetId")?)
                .or_default()
                .push(f);
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
                .push(Edge::new(encode_cursor(last_at, &thread.target_id), thread));
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
        Ok(load_flag(&deps.db, id).await?)
    }
}

pub(super) async fn load_flag(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<FlagNode>, ApiError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {FLAG_COLUMNS} FROM flags WHERE id = $1"),
            [id.into()],
        ))
        .await?;
    Ok(row.as_ref().map(row_to_flag).transpose()?)
}

pub(super) fn page_size(first: Option<i32>, default: i32, max: usize) -> Result<i32, ApiError> {
    let max = i32::try_from(max).unwrap_or(i32::MAX);
    let first = first.unwrap_or(default);
    if !(1..=max).contains(&first) {
        return Err(
            DomainError::validation("first", format!("must be between 1 and {max}")).into(),
        );
    }
    Ok(first)
}

pub(super) fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(32_503_680_000, 0).unwrap_or_default()
}

pub(super) fn encode_cursor(ts: DateTime<Utc>, id: &ID) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", ts.timestamp_micros(), id.as_str()))
}

pub(super) fn decode_cursor(cursor: &str, field: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::from(DomainError::validation(
            field,
            "not a cursor returned by this connection",
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, id) = raw.split_once('|').ok_or_else(bad)?;
    let ts = DateTime::from_timestamp_micros(ts.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((ts, Uuid::parse_str(id).map_err(|_| bad())?))
}
