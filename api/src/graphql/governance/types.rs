//! GraphQL enums and object types of the Webrat (Anträge, votes, tally and audit, verification,
//! delegation), with their conversions and row mapping. Moderation is in `moderation.rs`.

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::events::{AntragGestellt, Vote};
use domain::governance::Tally;
use uuid::Uuid;

use super::loaders::VerificationLoader;
use crate::error::ApiError;
use crate::graphql::primitives::{id, parse_id};
use crate::graphql::rolle::{RolleNode, load_rolle, load_rollen};
use crate::live::governance::cell_centre;
use crate::read::governance::{AntragRow, AntragStatus, DelegationRow};

// ---------------------------------------------------------------------------------------------
// Enums

/// A vote on an Antrag.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Vote")]
pub enum VoteGql {
    /// For the Antrag.
    Ja,
    /// Against the Antrag.
    Nein,
    /// Abstention: counts for the quorum only, never for or against.
    Enthaltung,
}

impl From<VoteGql> for Vote {
    fn from(v: VoteGql) -> Self {
        match v {
            VoteGql::Ja => Self::Ja,
            VoteGql::Nein => Self::Nein,
            VoteGql::Enthaltung => Self::Enthaltung,
        }
    }
}

impl From<Vote> for VoteGql {
    fn from(v: Vote) -> Self {
        match v {
            Vote::Ja => Self::Ja,
            Vote::Nein => Self::Nein,
            Vote::Enthaltung => Self::Enthaltung,
        }
    }
}

/// Where an Antrag stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "AntragStatus")]
pub enum AntragStatusGql {
    /// Takes votes and objections until its decision deadline.
    Offen,
    /// Decided: quorum reached and more ja than nein.
    Angenommen,
    /// Decided: quorum reached and not more ja than nein (a tie is rejected).
    Abgelehnt,
    /// Decided: participation stayed below the quorum.
    QuorumVerfehlt,
}

impl From<AntragStatusGql> for AntragStatus {
    fn from(s: AntragStatusGql) -> Self {
        match s {
            AntragStatusGql::Offen => Self::Offen,
            AntragStatusGql::Angenommen => Self::Angenommen,
            AntragStatusGql::Abgelehnt => Self::Abgelehnt,
            AntragStatusGql::QuorumVerfehlt => Self::QuorumVerfehlt,
        }
    }
}

impl From<AntragStatus> for AntragStatusGql {
    fn from(s: AntragStatus) -> Self {
        match s {
            AntragStatus::Offen => Self::Offen,
            AntragStatus::Angenommen => Self::Angenommen,
            AntragStatus::Abgelehnt => Self::Abgelehnt,
            AntragStatus::QuorumVerfehlt => Self::QuorumVerfehlt,
        }
    }
}

impl AntragStatusGql {
    pub(super) fn to_domain(self) -> Option<domain::events::AntragStatus> {
        use domain::events::AntragStatus as S;
        match self {
            Self::Offen => None,
            Self::Angenommen => Some(S::Angenommen),
            Self::Abgelehnt => Some(S::Abgelehnt),
            Self::QuorumVerfehlt => Some(S::QuorumVerfehlt),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Anträge

/// The numbers of a recorded decision (from the projection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Recorded {
    pub(super) ja: u64,
    pub(super) nein: u64,
    pub(super) enthaltung: u64,
    pub(super) participation: u64,
    pub(super) active_roles: u64,
    pub(super) quorum_percent: u32,
}

/// A proposal in a Weberei: verified roles object and vote until its decision deadline; then
/// the jobs worker decides it (quorum, then ja > nein).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Antrag", complex)]
pub struct AntragNode {
    /// Stable id (UUID).
    pub id: ID,
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Structured content (a JSON object, at most 16 KiB).
    pub content: Json<serde_json::Value>,
    /// The Weberei it belongs to: H3 cell at resolution 7, hex (the filer's home Weberei).
    pub weberei: String,
    /// Latitude of the Weberei cell's centre (where the Webrat panel places it).
    pub weberei_lat: f64,
    /// Longitude of the Weberei cell's centre.
    pub weberei_lng: f64,
    /// OFFEN until decided, then how it was decided.
    pub status: AntragStatusGql,
    /// Id of the role that filed it.
    pub creator_id: Option<ID>,
    /// When it was filed.
    pub created_at: DateTime<Utc>,
    /// Votes and objections are taken before this instant; the decision follows at it.
    pub decision_deadline: DateTime<Utc>,
    /// When it was decided (null while open).
    pub decided_at: Option<DateTime<Utc>>,
    /// Whether participation reached the quorum (null while open).
    pub quorum_reached: Option<bool>,
    #[graphql(skip)]
    pub(super) recorded: Option<Recorded>,
}

impl AntragNode {
    /// The Antrag `id` as its `AntragGestellt` event (recorded at `at`) describes it.
    pub(crate) fn filed(id: Uuid, p: &AntragGestellt, at: DateTime<Utc>) -> Result<Self, ApiError> {
        let cell = domain::governance::parse_weberei(&p.weavery_h3)?;
        let (lat, lng) = cell_centre(cell);
        Ok(Self {
            id: ID(id.to_string()),
            title: p.title.clone(),
            content: Json(p.content.clone()),
            weberei: p.weavery_h3.clone(),
            weberei_lat: lat,
            weberei_lng: lng,
            status: AntragStatusGql::Offen,
            creator_id: Some(ID(p.by.to_string())),
            created_at: at,
            decision_deadline: p.decision_deadline,
            decided_at: None,
            quorum_reached: None,
            recorded: None,
        })
    }

    pub(super) fn uuid(&self) -> Result<Uuid, ApiError> {
        parse_id(&self.id, "id")
    }
}

pub(super) fn to_u64(v: Option<i64>) -> u64 {
    v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

impl From<AntragRow> for AntragNode {
    fn from(r: AntragRow) -> Self {
        let cell = h3o::CellIndex::try_from(r.weavery_h3 as u64).ok();
        let (lat, lng) = cell.map(cell_centre).unwrap_or_default();
        let status = AntragStatusGql::from(r.status);
        let decided = status != AntragStatusGql::Offen;
        let recorded = decided.then(|| Recorded {
            ja: to_u64(r.ja),
            nein: to_u64(r.nein),
            enthaltung: to_u64(r.enthaltung),
            participation: to_u64(r.participation),
            active_roles: to_u64(r.active_roles),
            quorum_percent: u32::try_from(to_u64(r.quorum_percent)).unwrap_or(u32::MAX),
        });
        Self {
            id: id(r.id),
            title: r.title,
            content: Json(r.content),
            weberei: cell.map(|c| c.to_string()).unwrap_or_default(),
            weberei_lat: lat,
            weberei_lng: lng,
            status,
            creator_id: r.created_by.map(id),
            created_at: r.created_at,
            decision_deadline: r.decision_deadline,
            decided_at: r.decided_at,
            quorum_reached: if decided { r.quorum_reached } else { None },
            recorded,
        }
    }
}

/// An objection to an Antrag, with its reason.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Einspruch", complex)]
pub struct EinspruchNode {
    /// The Antrag objected to.
    pub antrag_id: ID,
    /// Id of the objecting role.
    pub rolle_id: ID,
    /// Why; null once the objecting role deleted itself (the text is shredded with its key).
    pub reason: Option<String>,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl EinspruchNode {
    /// The objecting role.
    async fn rolle(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.rolle_id, "rolleId")?).await
    }
}

/// A role's direct vote on an Antrag.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Stimme", complex)]
pub struct StimmeNode {
    /// The Antrag voted on.
    pub antrag_id: ID,
    /// Id of the voting role.
    pub rolle_id: ID,
    /// The vote.
    pub vote: VoteGql,
    /// When it was cast.
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl StimmeNode {
    /// The voting role.
    async fn rolle(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.rolle_id, "rolleId")?).await
    }
}

/// The count of an Antrag: so far while it is open, as recorded once decided.
#[derive(SimpleObject, Clone, Debug)]
pub struct AntragTally {
    /// Voices for.
    pub ja: i32,
    /// Voices against.
    pub nein: i32,
    /// Abstentions (count for the quorum only).
    pub enthaltung: i32,
    /// Every counted voice, direct and delegated, abstentions included.
    pub participation: i32,
    /// Voices counted through a delegation (delegators who did not vote themselves).
    pub delegated: i32,
    /// True once these are the numbers of the decision; false for the tally so far.
    pub decided: bool,
}

pub(super) fn int(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl AntragTally {
    pub(super) fn so_far(t: &Tally) -> Self {
        Self {
            ja: int(t.ja),
            nein: int(t.nein),
            enthaltung: int(t.enthaltung),
            participation: int(t.participation()),
            delegated: int(t
                .counted
                .iter()
                .filter(|c| c.delegated_from.is_some())
                .count() as u64),
            decided: false,
        }
    }
}

/// One voice counted in a decision.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct CountedStimme {
    /// The role whose voice this is (the delegator for a delegated voice).
    pub voice_id: ID,
    /// The role whose direct vote was used.
    pub rolle_id: ID,
    /// The vote counted.
    pub vote: VoteGql,
    /// Set when the voice is a delegator's, counted with `rolle`'s vote.
    pub delegated_from_id: Option<ID>,
}

#[ComplexObject]
impl CountedStimme {
    /// The role whose direct vote was used.
    async fn rolle(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.rolle_id, "rolleId")?).await
    }

    /// The delegator, for a delegated voice.
    async fn delegated_from(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        match &self.delegated_from_id {
            Some(id) => load_rolle(ctx, parse_id(id, "delegatedFromId")?).await,
            None => Ok(None),
        }
    }
}

/// Everything needed to recompute a decision: every counted voice and the facts used.
#[derive(SimpleObject, Clone, Debug)]
pub struct AntragAudit {
    /// The recorded status.
    pub status: AntragStatusGql,
    /// Recorded voices for.
    pub ja: i32,
    /// Recorded voices against.
    pub nein: i32,
    /// Recorded abstentions.
    pub enthaltung: i32,
    /// Recorded participation (direct and delegated voices).
    pub participation: i32,
    /// The quorum base: active roles of the Weberei at the deadline.
    pub active_roles: i32,
    /// The quorum in percent of `activeRoles`.
    pub quorum_percent: i32,
    /// Whether the recorded participation reached the quorum.
    pub quorum_reached: bool,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Every counted voice, sorted by voice.
    pub counted: Vec<CountedStimme>,
    /// True when recounting `counted` gives the recorded numbers and status (every voice
    /// once, the counts, the participation, the quorum and ja > nein).
    pub recomputed: bool,
    /// What does not add up, when `recomputed` is false.
    pub discrepancy: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Verification

/// Where a role stands in peer verification.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct RolleVerification {
    /// True once two verified roles confirmed it, or an admin action verified it.
    pub verified: bool,
    /// When it was verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// Ids of the roles that confirmed it so far, in order (two verify it; empty when an admin
    /// action verified it).
    pub confirmed_by_ids: Vec<ID>,
    /// True when an admin action granted it admin rights.
    pub is_admin: bool,
}

#[ComplexObject]
impl RolleVerification {
    /// The roles that confirmed it so far.
    async fn confirmed_by(&self, ctx: &Context<'_>) -> Result<Vec<RolleNode>> {
        load_rollen(ctx, self.confirmed_by_ids.iter().map(|i| i.as_str())).await
    }
}

#[ComplexObject]
impl RolleNode {
    /// Peer verification: whether the role is verified, who confirmed it, admin rights.
    async fn verification(&self, ctx: &Context<'_>) -> Result<Option<RolleVerification>> {
        ctx.data::<DataLoader<VerificationLoader>>()?
            .load_one(parse_id(&self.id, "id")?)
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Delegation

/// A 1:1 delegation: `from` is counted with `to`'s vote on every Antrag `from` does not vote on
/// itself, while it is in force.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Delegation", complex)]
pub struct DelegationNode {
    /// Id of the delegating role.
    pub from_id: ID,
    /// Id of the delegate.
    pub to_id: ID,
    /// It lapses at this instant.
    pub valid_until: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When the delegator revoked it, if it did.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it ended otherwise (expired or replaced), if it did.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended (e.g. expired, replaced), if it did.
    pub ended_reason: Option<String>,
    /// True while it is in force.
    pub active: bool,
}

#[ComplexObject]
impl DelegationNode {
    /// The delegating role.
    async fn from(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.from_id, "fromId")?).await
    }

    /// The delegate.
    async fn to(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.to_id, "toId")?).await
    }
}

impl From<DelegationRow> for DelegationNode {
    fn from(r: DelegationRow) -> Self {
        Self {
            from_id: id(r.from_rolle),
            to_id: id(r.to_rolle),
            valid_until: r.valid_until,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            ended_at: r.ended_at,
            ended_reason: r.ended_reason,
            active: r.active,
        }
    }
}

/// The caller's delegations in force.
#[derive(SimpleObject, Clone, Debug)]
pub struct MyDelegation {
    /// The caller's own delegation (at most one), if any.
    pub outgoing: Option<DelegationNode>,
    /// Delegations to the caller: whose voices its votes carry.
    pub incoming: Vec<DelegationNode>,
}
