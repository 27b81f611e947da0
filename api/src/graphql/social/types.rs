//! The social contract types: Fäden, room messages, design areas, and the social side of a
//! Knoten (its threads, participants and creator), with the loaders that batch them.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::knoten::KnotenNode;
use crate::graphql::primitives::{id, parse_id};
use crate::graphql::rolle::{RolleNode, load_rolle, load_rollen};
use crate::read;
use crate::read::social::{FadenRow, NachrichtRow};

/// What a thread says about its role's relation to the Knoten.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "FadenTyp")]
pub enum FadenTypGql {
    /// Interested.
    Interesse,
    /// Contributes something.
    Beitrag,
    /// Works on it.
    Mitarbeit,
}

impl From<FadenTypGql> for domain::events::FadenTyp {
    fn from(t: FadenTypGql) -> Self {
        match t {
            FadenTypGql::Interesse => Self::Interesse,
            FadenTypGql::Beitrag => Self::Beitrag,
            FadenTypGql::Mitarbeit => Self::Mitarbeit,
        }
    }
}

impl From<domain::events::FadenTyp> for FadenTypGql {
    fn from(t: domain::events::FadenTyp) -> Self {
        use domain::events::FadenTyp as T;
        match t {
            T::Interesse => Self::Interesse,
            T::Beitrag => Self::Beitrag,
            T::Mitarbeit => Self::Mitarbeit,
        }
    }
}

/// A thread from a role (its home) to a Knoten. It fades 7 days after it was spun (or last
/// renewed) unless it became yarn.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Faden", complex)]
pub struct FadenNode {
    /// Stable id: the same role, Knoten and typ always give the same Faden.
    pub id: ID,
    /// What the thread says about its role's relation to the Knoten; a role can have one
    /// thread of each typ to the same Knoten.
    pub typ: FadenTypGql,
    /// Id of the role the thread starts from.
    pub from_rolle_id: ID,
    /// Id of the Knoten it points to.
    pub to_knoten_id: ID,
    /// When it was first spun.
    pub created_at: DateTime<Utc>,
    /// When it was last renewed (spun again), if ever.
    pub renewed_at: Option<DateTime<Utc>>,
    /// When it fades unless it becomes yarn; clients draw its opacity from this.
    pub expires_at: DateTime<Utc>,
    /// Twisted into yarn: never fades.
    pub is_yarn: bool,
}

#[ComplexObject]
impl FadenNode {
    /// The role the thread starts from (its home cell is the line's start).
    #[graphql(name = "fromRolle")]
    async fn origin_rolle(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.from_rolle_id, "fromRolleId")?).await
    }
}

impl From<FadenRow> for FadenNode {
    fn from(r: FadenRow) -> Self {
        Self {
            id: id(r.id),
            typ: r.typ.into(),
            from_rolle_id: id(r.from_rolle),
            to_knoten_id: id(r.to_knoten),
            created_at: r.created_at,
            renewed_at: r.renewed_at,
            expires_at: r.expires_at,
            is_yarn: r.is_yarn,
        }
    }
}

/// Live (not faded) threads per Knoten, batched.
pub struct FaedenByKnoten(pub DatabaseConnection);

impl Loader<Uuid> for FaedenByKnoten {
    type Value = Vec<FadenNode>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<FadenNode>>, Self::Error> {
        let rows = read::social::live_faeden(&self.0, keys)
            .await
            .map_err(ApiError::from)?;
        let mut out: HashMap<Uuid, Vec<FadenNode>> = HashMap::new();
        for row in rows {
            out.entry(row.to_knoten).or_default().push(row.into());
        }
        Ok(out)
    }
}

pub(crate) async fn live_faeden(ctx: &Context<'_>, knoten: Uuid) -> Result<Vec<FadenNode>> {
    Ok(ctx
        .data::<DataLoader<FaedenByKnoten>>()?
        .load_one(knoten)
        .await?
        .unwrap_or_default())
}

/// Distinct roles with a live thread to the Knoten: its room's participants.
pub(crate) async fn participants(ctx: &Context<'_>, knoten: Uuid) -> Result<Vec<RolleNode>> {
    let faeden = live_faeden(ctx, knoten).await?;
    let mut ids: Vec<&str> = faeden.iter().map(|f| f.from_rolle_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    load_rollen(ctx, ids).await
}

/// A message in a room.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Nachricht", complex)]
pub struct NachrichtNode {
    /// Stable id (UUID).
    pub id: ID,
    /// Id of the Knoten whose room it was written in.
    pub knoten_id: ID,
    /// Id of the role that wrote it.
    pub author_id: ID,
    /// The text; null once its author deleted their role.
    pub text: Option<String>,
    /// Ids of the roles mentioned with @name.
    pub mention_ids: Vec<ID>,
    /// When it was written (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl NachrichtNode {
    /// The role that wrote it (a deleted role shows under its alias).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.author_id, "authorId")?).await
    }

    /// The roles mentioned with @name, in the order of `mentionIds`.
    async fn mentions(&self, ctx: &Context<'_>) -> Result<Vec<RolleNode>> {
        load_rollen(ctx, self.mention_ids.iter().map(|i| i.as_str())).await
    }
}

impl From<NachrichtRow> for NachrichtNode {
    fn from(r: NachrichtRow) -> Self {
        Self {
            id: id(r.id),
            knoten_id: id(r.knoten_id),
            author_id: id(r.author),
            text: r.text,
            mention_ids: r.mentions.into_iter().map(id).collect(),
            created_at: r.created_at,
        }
    }
}

/// One room message by id (null when it was hidden by moderation).
pub(crate) async fn load_nachricht(ctx: &Context<'_>, id: Uuid) -> Result<Option<NachrichtNode>> {
    let deps = ctx.data::<Deps>()?;
    Ok(read::social::nachricht(&deps.db, id)
        .await
        .map_err(ApiError::from)?
        .map(Into::into))
}

/// The design area of a Knoten: shared content with a version for conflict detection.
#[derive(SimpleObject, Clone, Debug)]
pub struct Design {
    /// Send this as `expectedVersion` when you edit.
    pub version: i32,
    /// The content as last saved (a JSON object, at most 16 KiB).
    pub content: Json<serde_json::Value>,
}

#[ComplexObject]
impl KnotenNode {
    /// Live threads to this Knoten (batched across Knoten).
    async fn faeden(&self, ctx: &Context<'_>) -> Result<Vec<FadenNode>> {
        live_faeden(ctx, parse_id(&self.id, "id")?).await
    }

    /// Roles with a live thread to it: the participants of its room.
    async fn participants(&self, ctx: &Context<'_>) -> Result<Vec<RolleNode>> {
        participants(ctx, parse_id(&self.id, "id")?).await
    }

    /// The role that tied it.
    async fn creator(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        match &self.creator_id {
            Some(id) => load_rolle(ctx, parse_id(id, "creatorId")?).await,
            None => Ok(None),
        }
    }
}
