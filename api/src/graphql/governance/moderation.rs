//! GraphQL types of the Webrat's moderation: flags, moderation threads and the content they
//! are about.

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, Result, SimpleObject, Union};
use chrono::{DateTime, Utc};
use domain::events::FlagTargetKind;
use uuid::Uuid;

use super::loaders::AntragLoader;
use super::types::AntragNode;
use crate::graphql::knoten::{KnotenNode, load_knoten};
use crate::graphql::primitives::{id, parse_id};
use crate::graphql::rolle::{RolleNode, load_rolle};
use crate::graphql::social::{NachrichtNode, load_nachricht};
use crate::read::governance::FlagRow;

/// How a moderation decision ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "FlagOutcome")]
pub enum FlagOutcomeGql {
    /// The content stays visible.
    Kept,
    /// The content disappears from queries and the live map (it stays in the archive).
    Hidden,
}

impl From<FlagOutcomeGql> for domain::events::FlagOutcome {
    fn from(o: FlagOutcomeGql) -> Self {
        match o {
            FlagOutcomeGql::Kept => Self::Kept,
            FlagOutcomeGql::Hidden => Self::Hidden,
        }
    }
}

pub(super) fn parse_outcome(s: &str) -> Option<FlagOutcomeGql> {
    match s {
        "kept" => Some(FlagOutcomeGql::Kept),
        "hidden" => Some(FlagOutcomeGql::Hidden),
        _ => None,
    }
}

/// What kind of content a flag is about.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "FlagTargetKind")]
pub enum FlagTargetKindGql {
    /// A Knoten on the map (its title and design area).
    Knoten,
    /// A message in a Knoten's room.
    Nachricht,
    /// An Antrag in the Webrat.
    Antrag,
    /// A role (its name).
    Rolle,
}

impl From<FlagTargetKindGql> for FlagTargetKind {
    fn from(k: FlagTargetKindGql) -> Self {
        match k {
            FlagTargetKindGql::Knoten => Self::Knoten,
            FlagTargetKindGql::Nachricht => Self::Nachricht,
            FlagTargetKindGql::Antrag => Self::Antrag,
            FlagTargetKindGql::Rolle => Self::Rolle,
        }
    }
}

impl From<FlagTargetKind> for FlagTargetKindGql {
    fn from(k: FlagTargetKind) -> Self {
        match k {
            FlagTargetKind::Knoten => Self::Knoten,
            FlagTargetKind::Nachricht => Self::Nachricht,
            FlagTargetKind::Antrag => Self::Antrag,
            FlagTargetKind::Rolle => Self::Rolle,
        }
    }
}

/// `flags.target_kind` (a CHECK constraint keeps it to the four kinds).
pub(super) fn parse_target_kind(s: &str) -> FlagTargetKindGql {
    FlagTargetKind::parse(s).map_or(FlagTargetKindGql::Knoten, Into::into)
}

/// A report about one piece of content, and how it was resolved.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Flag", complex)]
pub struct FlagNode {
    /// Stable id (UUID).
    pub id: ID,
    /// What kind of content it is about.
    pub target_kind: FlagTargetKindGql,
    /// Id of that content (for a message: its `Nachricht.id`).
    pub target_id: ID,
    /// Why it was raised; null once the reporter deleted its role.
    pub reason: Option<String>,
    /// Id of the reporting role.
    pub raised_by_id: ID,
    /// Id of the role that wrote the content (it may not resolve the flag), if a role did.
    pub author_of_target_id: Option<ID>,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// How it was resolved (null while open).
    pub outcome: Option<FlagOutcomeGql>,
    /// Why it was resolved so; null while open or once the resolving role deleted itself.
    pub resolution_reason: Option<String>,
    /// Id of the role that resolved it.
    pub resolved_by_id: Option<ID>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl FlagNode {
    /// The reporting role.
    async fn raised_by(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.raised_by_id, "raisedById")?).await
    }

    /// The role that resolved it.
    async fn resolved_by(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        match &self.resolved_by_id {
            Some(id) => load_rolle(ctx, parse_id(id, "resolvedById")?).await,
            None => Ok(None),
        }
    }
}

impl From<FlagRow> for FlagNode {
    fn from(r: FlagRow) -> Self {
        Self {
            id: id(r.id),
            target_kind: parse_target_kind(&r.target_kind),
            target_id: id(r.target_id),
            reason: r.reason,
            raised_by_id: id(r.raised_by),
            author_of_target_id: r.author_of_target.map(id),
            created_at: r.created_at,
            outcome: r.outcome.as_deref().and_then(parse_outcome),
            resolution_reason: r.resolution_reason,
            resolved_by_id: r.resolved_by.map(id),
            resolved_at: r.resolved_at,
        }
    }
}

/// Flagged content, as it is shown (hidden content is never shown).
#[derive(Union, Clone, Debug)]
pub enum ModeratedContent {
    /// A Knoten.
    Knoten(KnotenNode),
    /// A room message.
    Nachricht(NachrichtNode),
    /// An Antrag.
    Antrag(AntragNode),
    /// A role.
    Rolle(RolleNode),
}

/// All flags on one piece of content: a thread in the Webrat's moderation panel.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ModerationThread {
    /// What kind of content it is about.
    pub target_kind: FlagTargetKindGql,
    /// Id of that content.
    pub target_id: ID,
    /// True while any of its flags is unresolved.
    pub open: bool,
    /// The outcome of its latest resolution (null if none is resolved yet).
    pub outcome: Option<FlagOutcomeGql>,
    /// When the latest flag was raised.
    pub last_flagged_at: DateTime<Utc>,
    /// Its flags, oldest first.
    pub flags: Vec<FlagNode>,
}

#[ComplexObject]
impl ModerationThread {
    /// The content itself; null when it is hidden or gone.
    async fn target(&self, ctx: &Context<'_>) -> Result<Option<ModeratedContent>> {
        let id = parse_id(&self.target_id, "targetId")?;
        moderated_content(ctx, self.target_kind, id).await
    }
}

pub(super) async fn moderated_content(
    ctx: &Context<'_>,
    kind: FlagTargetKindGql,
    id: Uuid,
) -> Result<Option<ModeratedContent>> {
    Ok(match kind {
        FlagTargetKindGql::Knoten => load_knoten(ctx, id).await?.map(ModeratedContent::Knoten),
        FlagTargetKindGql::Antrag => ctx
            .data::<DataLoader<AntragLoader>>()?
            .load_one(id)
            .await?
            .map(ModeratedContent::Antrag),
        FlagTargetKindGql::Rolle => load_rolle(ctx, id).await?.map(ModeratedContent::Rolle),
        FlagTargetKindGql::Nachricht => load_nachricht(ctx, id)
            .await?
            .map(ModeratedContent::Nachricht),
    })
}
