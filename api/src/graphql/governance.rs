//! The Webrat (DESIGN.md §4 "Governance", "Peer verification", "Moderation"): Anträge with their
//! objections, votes, tally and audit; 1:1 delegation; peer verification; moderation threads.
//!
//! Facts from outside the aggregate are read from the projections and put into the command:
//! whether the caller is verified (`rollen.verified_at`), the caller's home (its Weberei is
//! the Weberei of an Antrag it files), whether a delegate exists, who wrote flagged content.
//!
//! Choices beyond DESIGN.md:
//! - Any verified role of the Ort may vote on and object to any Antrag; the domain leaves this
//!   to the caller and the quorum base is the Weberei's active roles either way.
//! - "The tally so far" counts the direct votes of the projection and the delegations active
//!   now whose delegators are verified, with the same rules as the decision
//!   (`governance::tally`); once decided, the recorded numbers are shown.
//! - The audit is rebuilt from what the projection recorded of the decision
//!   (`antrag_counted_votes` and the counts on `antraege`) and checked with
//!   `governance::audit_decision`, so anyone can recompute it from the API.
//! - A moderation thread is all flags on one piece of content; it is open while any of its
//!   flags is unresolved, and its outcome is that of its latest resolution. Hidden content is
//!   not shown as a thread's target (it disappears from every query).

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject,
    Subscription, Union,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bus::{Outcome, Stored};
use chrono::{DateTime, Utc};
use domain::antrag::{Abstimmen, Antrag, AntragCommand, Einspruch, Stellen};
use domain::delegation::{Delegation, DelegationCommand, Erstellen, delegation_id};
use domain::events::{
    AntragEntschieden, AntragGestellt, CountedVote, DelegationErstellt, DelegationWiderrufen,
    FlagTarget, FlagTargetKind, RolleVerifiziert, Vote,
};
use domain::flag::{Aufloesen, Flag, FlagCommand, Melden};
use domain::geo::Bbox;
use domain::governance::{Tally, audit_decision, quorum_reached, tally, weberei_of_home};
use domain::rolle::{Rolle, RolleCommand};
use domain::verification::Bestaetigen;
use domain::{AggregateType, DomainError, StreamDomain};
use futures::{Stream, StreamExt};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};
use uuid::Uuid;

use super::common::{
    ID_NAMESPACE, data_key, execute, meta_for, nonce, require_caller, validate_idempotency_key,
};
use super::knoten::{BboxInput, EventReceipt, KnotenNode, load_knoten};
use super::rolle::{RolleNode, load_rolle, parse_id};
use super::social::NachrichtNode;
use super::{ClientInfo, Deps};
use crate::auth::Caller;
use crate::error::ApiError;

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

fn parse_vote(s: &str) -> Result<Vote, sea_orm::DbErr> {
    match s {
        "ja" => Ok(Vote::Ja),
        "nein" => Ok(Vote::Nein),
        "enthaltung" => Ok(Vote::Enthaltung),
        other => Err(sea_orm::DbErr::Custom(format!("unknown vote {other:?}"))),
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

impl AntragStatusGql {
    fn as_db(self) -> &'static str {
        match self {
            Self::Offen => "offen",
            Self::Angenommen => "angenommen",
            Self::Abgelehnt => "abgelehnt",
            Self::QuorumVerfehlt => "quorum_verfehlt",
        }
    }

    fn from_db(s: &str) -> Self {
        match s {
            "angenommen" => Self::Angenommen,
            "abgelehnt" => Self::Abgelehnt,
            "quorum_verfehlt" => Self::QuorumVerfehlt,
            _ => Self::Offen,
        }
    }

    fn to_domain(self) -> Option<domain::events::AntragStatus> {
        use domain::events::AntragStatus as S;
        match self {
            Self::Offen => None,
            Self::Angenommen => Some(S::Angenommen),
            Self::Abgelehnt => Some(S::Abgelehnt),
            Self::QuorumVerfehlt => Some(S::QuorumVerfehlt),
        }
    }
}

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

fn parse_outcome(s: &str) -> Option<FlagOutcomeGql> {
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

fn parse_target_kind(s: &str) -> FlagTargetKindGql {
    match s {
        "nachricht" => FlagTargetKindGql::Nachricht,
        "antrag" => FlagTargetKindGql::Antrag,
        "rolle" => FlagTargetKindGql::Rolle,
        _ => FlagTargetKindGql::Knoten,
    }
}

// ---------------------------------------------------------------------------------------------
// Anträge

/// The numbers of a recorded decision (from the projection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recorded {
    ja: u64,
    nein: u64,
    enthaltung: u64,
    participation: u64,
    active_roles: u64,
    quorum_percent: u32,
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
    recorded: Option<Recorded>,
}

fn cell_centre(cell: h3o::CellIndex) -> (f64, f64) {
    let c = h3o::LatLng::from(cell);
    (c.lat(), c.lng())
}

impl AntragNode {
    /// The Antrag as its `AntragGestellt` event describes it.
    pub(crate) fn from_event(env: &domain::Envelope) -> Result<Self, ApiError> {
        let p: AntragGestellt = env.decode()?;
        let cell = domain::governance::parse_weberei(&p.weavery_h3)?;
        let (lat, lng) = cell_centre(cell);
        Ok(Self {
            id: ID(env.aggregate_id.to_string()),
            title: p.title,
            content: Json(p.content),
            weberei: p.weavery_h3,
            weberei_lat: lat,
            weberei_lng: lng,
            status: AntragStatusGql::Offen,
            creator_id: Some(ID(p.by.to_string())),
            created_at: env.ts,
            decision_deadline: p.decision_deadline,
            decided_at: None,
            quorum_reached: None,
            recorded: None,
        })
    }

    fn uuid(&self) -> Result<Uuid, ApiError> {
        parse_id(&self.id, "id")
    }
}

const ANTRAG_COLUMNS: &str = "id, weavery_h3, title, content, status::text AS status, created_by, \
    created_at, decision_deadline, decided_at, quorum_reached, ja::bigint AS ja, nein::bigint AS nein, \
    enthaltung::bigint AS enthaltung, participation::bigint AS participation, \
    active_roles::bigint AS active_roles, quorum_percent::bigint AS quorum_percent";

fn to_u64(v: Option<i64>) -> u64 {
    v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

fn row_to_antrag(row: &QueryResult) -> Result<AntragNode, sea_orm::DbErr> {
    let id: Uuid = row.try_get("", "id")?;
    let h3: i64 = row.try_get("", "weavery_h3")?;
    let cell = h3o::CellIndex::try_from(h3 as u64).ok();
    let (lat, lng) = cell.map(cell_centre).unwrap_or_default();
    let status = AntragStatusGql::from_db(&row.try_get::<String>("", "status")?);
    let decided_at: Option<DateTime<Utc>> = row.try_get("", "decided_at")?;
    let recorded = (status != AntragStatusGql::Offen).then(|| -> Result<_, sea_orm::DbErr> {
        Ok(Recorded {
            ja: to_u64(row.try_get("", "ja")?),
            nein: to_u64(row.try_get("", "nein")?),
            enthaltung: to_u64(row.try_get("", "enthaltung")?),
            participation: to_u64(row.try_get("", "participation")?),
            active_roles: to_u64(row.try_get("", "active_roles")?),
            quorum_percent: u32::try_from(to_u64(row.try_get("", "quorum_percent")?))
                .unwrap_or(u32::MAX),
        })
    });
    let recorded = recorded.transpose()?;
    Ok(AntragNode {
        id: ID(id.to_string()),
        title: row.try_get("", "title")?,
        content: Json(row.try_get("", "content")?),
        weberei: cell.map(|c| c.to_string()).unwrap_or_default(),
        weberei_lat: lat,
        weberei_lng: lng,
        status,
        creator_id: row
            .try_get::<Option<Uuid>>("", "created_by")?
            .map(|c| ID(c.to_string())),
        created_at: row.try_get("", "created_at")?,
        decision_deadline: row.try_get("", "decision_deadline")?,
        decided_at,
        quorum_reached: if status == AntragStatusGql::Offen {
            None
        } else {
            row.try_get::<Option<bool>>("", "quorum_reached")?
        },
        recorded,
    })
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

fn int(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl AntragTally {
    fn so_far(t: &Tally) -> Self {
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

#[ComplexObject]
impl AntragNode {
    /// The role that filed it.
    async fn creator(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        match &self.creator_id {
            Some(id) => load_rolle(ctx, parse_id(id, "creatorId")?).await,
            None => Ok(None),
        }
    }

    /// Objections, oldest first.
    async fn objections(&self, ctx: &Context<'_>) -> Result<Vec<EinspruchNode>> {
        Ok(ctx
            .data::<DataLoader<EinsprucheByAntrag>>()?
            .load_one(self.uuid()?)
            .await?
            .unwrap_or_default())
    }

    /// Direct votes, oldest first (delegated voices appear in `tally` and `audit`).
    async fn votes(&self, ctx: &Context<'_>) -> Result<Vec<StimmeNode>> {
        Ok(ctx
            .data::<DataLoader<StimmenByAntrag>>()?
            .load_one(self.uuid()?)
            .await?
            .unwrap_or_default())
    }

    /// The caller's own direct vote (null without a session or vote).
    async fn my_vote(&self, ctx: &Context<'_>) -> Result<Option<VoteGql>> {
        let Ok(caller) = require_caller(ctx) else {
            return Ok(None);
        };
        let me = ID(caller.rolle_id.to_string());
        let votes = ctx
            .data::<DataLoader<StimmenByAntrag>>()?
            .load_one(self.uuid()?)
            .await?
            .unwrap_or_default();
        Ok(votes.into_iter().find(|v| v.rolle_id == me).map(|v| v.vote))
    }

    /// The tally: so far (direct votes and the delegations active now) while open, the
    /// recorded numbers once decided.
    async fn tally(&self, ctx: &Context<'_>) -> Result<AntragTally> {
        let deps = ctx.data::<Deps>()?;
        let id = self.uuid()?;
        if let Some(r) = self.recorded {
            let delegated = count_delegated(&deps.db, id).await?;
            return Ok(AntragTally {
                ja: int(r.ja),
                nein: int(r.nein),
                enthaltung: int(r.enthaltung),
                participation: int(r.participation),
                delegated: int(delegated),
                decided: true,
            });
        }
        let t = tally_so_far(deps, id).await?;
        Ok(AntragTally::so_far(&t))
    }

    /// The audit of the decision (null while open): every counted voice with `delegatedFrom`,
    /// the facts used, and whether recounting reproduces the recorded result.
    async fn audit(&self, ctx: &Context<'_>) -> Result<Option<AntragAudit>> {
        let (Some(r), Some(status)) = (self.recorded, self.status.to_domain()) else {
            return Ok(None);
        };
        let deps = ctx.data::<Deps>()?;
        let counted = counted_votes(&deps.db, self.uuid()?).await?;
        let decision = AntragEntschieden {
            status,
            ja: r.ja,
            nein: r.nein,
            enthaltung: r.enthaltung,
            participation: r.participation,
            active_roles: r.active_roles,
            quorum_percent: r.quorum_percent,
            transitive: deps.config.flags.transitive_delegation,
            counted: counted.clone(),
            cycles: Vec::new(),
        };
        let quorum = quorum_reached(r.participation, r.active_roles, r.quorum_percent);
        let mut check = audit_decision(&decision);
        if check.is_ok()
            && let Some(recorded) = self.quorum_reached
            && recorded != quorum
        {
            check = Err(format!(
                "the counted votes {} the quorum; recorded is that it was {}",
                if quorum { "reach" } else { "miss" },
                if recorded { "reached" } else { "missed" }
            ));
        }
        Ok(Some(AntragAudit {
            status: self.status,
            ja: int(r.ja),
            nein: int(r.nein),
            enthaltung: int(r.enthaltung),
            participation: int(r.participation),
            active_roles: int(r.active_roles),
            quorum_percent: int(u64::from(r.quorum_percent)),
            quorum_reached: self.quorum_reached.unwrap_or(quorum),
            decided_at: self.decided_at,
            counted: counted
                .iter()
                .map(|c| CountedStimme {
                    voice_id: ID(c.voice().to_string()),
                    rolle_id: ID(c.rolle.to_string()),
                    vote: c.vote.into(),
                    delegated_from_id: c.delegated_from.map(|d| ID(d.to_string())),
                })
                .collect(),
            recomputed: check.is_ok(),
            discrepancy: check.err(),
        }))
    }
}

/// The direct votes of the projection and the delegations active now, counted as at the
/// deadline.
async fn tally_so_far(deps: &Deps, antrag: Uuid) -> Result<Tally, ApiError> {
    let votes = deps
        .db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT rolle_id, vote::text AS vote FROM stimmen WHERE antrag_id = $1 AND delegated_from IS NULL",
            [antrag.into()],
        ))
        .await?;
    let mut direct = Vec::with_capacity(votes.len());
    for v in &votes {
        direct.push((
            v.try_get::<Uuid>("", "rolle_id")?,
            parse_vote(&v.try_get::<String>("", "vote")?)?,
        ));
    }
    let delegations = active_delegations(&deps.db).await?;
    Ok(tally(
        &direct,
        &delegations,
        deps.config.flags.transitive_delegation,
    ))
}

/// `(from, to)` of every delegation in force now whose delegator may vote (verified, not
/// deleted).
async fn active_delegations(db: &DatabaseConnection) -> Result<Vec<(Uuid, Uuid)>, ApiError> {
    let rows = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT d.from_rolle, d.to_rolle FROM delegationen d JOIN rollen r ON r.id = d.from_rolle \
             WHERE d.revoked_at IS NULL AND d.ended_at IS NULL AND d.valid_until > now() \
             AND r.verified_at IS NOT NULL AND r.deleted_at IS NULL",
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push((r.try_get("", "from_rolle")?, r.try_get("", "to_rolle")?));
    }
    Ok(out)
}

async fn counted_votes(
    db: &DatabaseConnection,
    antrag: Uuid,
) -> Result<Vec<CountedVote>, ApiError> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT rolle, vote::text AS vote, delegated_from FROM antrag_counted_votes \
             WHERE antrag_id = $1 ORDER BY voice",
            [antrag.into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(CountedVote {
            rolle: r.try_get("", "rolle")?,
            vote: parse_vote(&r.try_get::<String>("", "vote")?)?,
            delegated_from: r.try_get("", "delegated_from")?,
        });
    }
    Ok(out)
}

async fn count_delegated(db: &DatabaseConnection, antrag: Uuid) -> Result<u64, ApiError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM antrag_counted_votes WHERE antrag_id = $1 AND delegated_from IS NOT NULL",
            [antrag.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => to_u64(Some(r.try_get::<i64>("", "n")?)),
        None => 0,
    })
}

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
        let ids: Vec<Uuid> = self
            .confirmed_by_ids
            .iter()
            .filter_map(|i| Uuid::parse_str(i).ok())
            .collect();
        let loaded = ctx
            .data::<DataLoader<super::rolle::RolleLoader>>()?
            .load_many(ids.iter().copied())
            .await?;
        Ok(ids.iter().filter_map(|i| loaded.get(i).cloned()).collect())
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

const DELEGATION_COLUMNS: &str = "from_rolle, to_rolle, valid_until, created_at, revoked_at, \
    ended_at, ended_reason::text AS ended_reason, \
    (revoked_at IS NULL AND ended_at IS NULL AND valid_until > now()) AS active";

fn row_to_delegation(r: &QueryResult) -> Result<DelegationNode, sea_orm::DbErr> {
    let from: Uuid = r.try_get("", "from_rolle")?;
    let to: Uuid = r.try_get("", "to_rolle")?;
    Ok(DelegationNode {
        from_id: ID(from.to_string()),
        to_id: ID(to.to_string()),
        valid_until: r.try_get("", "valid_until")?,
        created_at: r.try_get("", "created_at")?,
        revoked_at: r.try_get("", "revoked_at")?,
        ended_at: r.try_get("", "ended_at")?,
        ended_reason: r.try_get("", "ended_reason")?,
        active: r.try_get("", "active")?,
    })
}

/// The caller's delegations in force.
#[derive(SimpleObject, Clone, Debug)]
pub struct MyDelegation {
    /// The caller's own delegation (at most one), if any.
    pub outgoing: Option<DelegationNode>,
    /// Delegations to the caller: whose voices its votes carry.
    pub incoming: Vec<DelegationNode>,
}

// ---------------------------------------------------------------------------------------------
// Moderation

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

const FLAG_COLUMNS: &str = "id, target_kind::text AS target_kind, target_id, reason::text AS reason, \
    raised_by, author_of_target, created_at, outcome::text AS outcome, \
    resolution_reason::text AS resolution_reason, resolved_by, resolved_at";

fn row_to_flag(r: &QueryResult) -> Result<FlagNode, sea_orm::DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let target: Uuid = r.try_get("", "target_id")?;
    let raised_by: Uuid = r.try_get("", "raised_by")?;
    let id_of = |u: Option<Uuid>| u.map(|u| ID(u.to_string()));
    Ok(FlagNode {
        id: ID(id.to_string()),
        target_kind: parse_target_kind(&r.try_get::<String>("", "target_kind")?),
        target_id: ID(target.to_string()),
        reason: r.try_get("", "reason")?,
        raised_by_id: ID(raised_by.to_string()),
        author_of_target_id: id_of(r.try_get("", "author_of_target")?),
        created_at: r.try_get("", "created_at")?,
        outcome: r
            .try_get::<Option<String>>("", "outcome")?
            .as_deref()
            .and_then(parse_outcome),
        resolution_reason: r.try_get("", "resolution_reason")?,
        resolved_by_id: id_of(r.try_get("", "resolved_by")?),
        resolved_at: r.try_get("", "resolved_at")?,
    })
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

async fn moderated_content(
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
        FlagTargetKindGql::Nachricht => super::social::load_nachricht(ctx, id)
            .await?
            .map(ModeratedContent::Nachricht),
    })
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(Default)]
pub struct GovernanceQuery;

#[Object]
impl GovernanceQuery {
    /// Anträge of the Webereien whose cell centre lies in the box (the Webrat panel), newest
    /// first. Hidden Anträge are left out.
    async fn antraege(
        &self,
        ctx: &Context<'_>,
        bbox: BboxInput,
        #[graphql(desc = "Only Anträge with this status.")] status: Option<AntragStatusGql>,
        #[graphql(desc = "Page size, 1 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, AntragNode, EmptyFields, EmptyFields>> {
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
    async fn antrag(&self, ctx: &Context<'_>, id: ID) -> Result<Option<AntragNode>> {
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
    ) -> Result<Connection<String, ModerationThread, EmptyFields, EmptyFields>> {
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
    async fn flag(&self, ctx: &Context<'_>, id: ID) -> Result<Option<FlagNode>> {
        let deps = ctx.data::<Deps>()?;
        let id = parse_id(&id, "id")?;
        Ok(load_flag(&deps.db, id).await?)
    }
}

async fn load_flag(db: &DatabaseConnection, id: Uuid) -> Result<Option<FlagNode>, ApiError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {FLAG_COLUMNS} FROM flags WHERE id = $1"),
            [id.into()],
        ))
        .await?;
    Ok(row.as_ref().map(row_to_flag).transpose()?)
}

fn page_size(first: Option<i32>, default: i32, max: usize) -> Result<i32, ApiError> {
    let max = i32::try_from(max).unwrap_or(i32::MAX);
    let first = first.unwrap_or(default);
    if !(1..=max).contains(&first) {
        return Err(
            DomainError::validation("first", format!("must be between 1 and {max}")).into(),
        );
    }
    Ok(first)
}

fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(32_503_680_000, 0).unwrap_or_default()
}

fn encode_cursor(ts: DateTime<Utc>, id: &ID) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", ts.timestamp_micros(), id.as_str()))
}

fn decode_cursor(cursor: &str, field: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
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

// ---------------------------------------------------------------------------------------------
// Mutations: inputs and payloads

/// File an Antrag in the caller's Weberei (the Weberei of its home).
#[derive(InputObject, Clone, Debug)]
pub struct FileAntragInput {
    /// Client-chosen key (1-128 visible ASCII characters): the same key always yields the same
    /// Antrag and never a second one.
    pub idempotency_key: String,
    /// Title, 1 to 200 characters after trimming.
    pub title: String,
    /// Optional structured content (a JSON object, at most 16 KiB).
    pub content: Option<Json<serde_json::Value>>,
    /// Votes and objections are taken until this instant; at least the server's minimum
    /// decision period (`24 h` by default) from now.
    pub decision_deadline: DateTime<Utc>,
}

/// The result of `fileAntrag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct FileAntragPayload {
    /// The Antrag as filed.
    pub antrag: AntragNode,
    /// The `AntragGestellt` event.
    pub event: EventReceipt,
    /// True when this key had been used before: the original result, nothing new.
    pub replayed: bool,
}

/// Object to an open Antrag.
#[derive(InputObject, Clone, Debug)]
pub struct ObjectToAntragInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The Antrag.
    pub antrag_id: ID,
    /// Why, 1 to 2000 characters (sealed with your data key in the log).
    pub reason: String,
}

/// The result of `objectToAntrag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ObjectToAntragPayload {
    /// The objection.
    pub objection: EinspruchNode,
    /// The `EinspruchEingegangen` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Vote on an open Antrag (once).
#[derive(InputObject, Clone, Debug)]
pub struct CastStimmeInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The Antrag.
    pub antrag_id: ID,
    /// JA, NEIN or ENTHALTUNG. A role votes once; a second vote is a CONFLICT.
    pub vote: VoteGql,
}

/// The result of `castStimme`.
#[derive(SimpleObject, Clone, Debug)]
pub struct CastStimmePayload {
    /// The vote as recorded.
    pub stimme: StimmeNode,
    /// The `StimmeAbgegeben` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Delegate your vote to another role (replaces your current delegation).
#[derive(InputObject, Clone, Debug)]
pub struct DelegateInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The delegate: a registered role other than you.
    pub to: ID,
    /// The delegation lapses at this instant (must be in the future).
    pub valid_until: DateTime<Utc>,
}

/// The result of `delegate`.
#[derive(SimpleObject, Clone, Debug)]
pub struct DelegatePayload {
    /// The delegation now in force.
    pub delegation: DelegationNode,
    /// Id of the delegate of the delegation this one replaced, if one was in force.
    pub replaced_id: Option<ID>,
    /// The `DelegationErstellt` event; null when the very same delegation was already in force.
    pub event: Option<EventReceipt>,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Revoke your delegation.
#[derive(InputObject, Clone, Debug)]
pub struct RevokeDelegationInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
}

/// The result of `revokeDelegation`.
#[derive(SimpleObject, Clone, Debug)]
pub struct RevokeDelegationPayload {
    /// Id of the delegate of the revoked delegation.
    pub revoked_to_id: ID,
    /// The `DelegationWiderrufen` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Confirm that another role is a real person of the Ort.
#[derive(InputObject, Clone, Debug)]
pub struct ConfirmVerificationInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The role to confirm (not yourself; you must be verified).
    pub rolle_id: ID,
}

/// The result of `confirmVerification`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ConfirmVerificationPayload {
    /// Id of the confirmed role.
    pub rolle_id: ID,
    /// True when this confirmation was the second and verified the role.
    pub verified: bool,
    /// The `VerifizierungBestaetigt` event.
    pub event: EventReceipt,
    /// The `RolleVerifiziert` event, when this confirmation verified the role.
    pub verified_event: Option<EventReceipt>,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Report content to the Webrat's moderation.
#[derive(InputObject, Clone, Debug)]
pub struct RaiseFlagInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// What kind of content.
    pub target_kind: FlagTargetKindGql,
    /// Its id (for a message: `Nachricht.id`).
    pub target_id: ID,
    /// Why, 1 to 2000 characters (sealed with your data key in the log).
    pub reason: String,
}

/// The result of `raiseFlag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct RaiseFlagPayload {
    /// The flag (open).
    pub flag: FlagNode,
    /// The `FlagRaised` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

/// Resolve a flag: keep or hide the content.
#[derive(InputObject, Clone, Debug)]
pub struct ResolveFlagInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The flag.
    pub flag_id: ID,
    /// KEPT or HIDDEN.
    pub outcome: FlagOutcomeGql,
    /// Why, 1 to 2000 characters (sealed with your data key in the log).
    pub reason: String,
}

/// The result of `resolveFlag`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ResolveFlagPayload {
    /// The flag as resolved.
    pub flag: FlagNode,
    /// The `FlagResolved` event.
    pub event: EventReceipt,
    /// True when this key had been used before.
    pub replayed: bool,
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(Default)]
pub struct GovernanceMutation;

#[Object]
impl GovernanceMutation {
    /// File an Antrag in the caller's Weberei. Only verified roles (FORBIDDEN otherwise); the
    /// deadline must leave at least the minimum decision period (VALIDATION).
    async fn file_antrag(
        &self,
        ctx: &Context<'_>,
        input: FileAntragInput,
    ) -> Result<FileAntragPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let weberei = match &me.home_h3 {
            Some(home) => weberei_of_home(home)?.to_string(),
            None => String::new(),
        };
        let id = Uuid::new_v5(
            &ID_NAMESPACE,
            format!("antrag:{}:{key}", caller.rolle_id).as_bytes(),
        );
        let now = Utc::now();
        let cmd = AntragCommand::Stellen(Stellen {
            id,
            title: input.title.clone(),
            content: input.content.as_ref().map(|c| c.0.clone()),
            weavery_h3: weberei,
            deadline: input.decision_deadline,
            now,
            min_deadline: deps.config.min_decision_period,
            by: caller.rolle_id,
            by_verified: me.verified,
        });
        let meta = meta_for(&caller, client, "fileAntrag", key);
        let done = execute::<Antrag>(deps, AggregateType::Antrag, id, &cmd, meta, true)
            .await
            .map_err(|e| rename_field(e, "deadline", "decisionDeadline"))?;
        let stored = first_event(&done.events)?;
        Ok(FileAntragPayload {
            antrag: AntragNode::from_event(&stored.envelope)?,
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Object to an open Antrag, with a reason. Only verified roles (FORBIDDEN), once per role,
    /// only before the deadline and while undecided (CONFLICT).
    async fn object_to_antrag(
        &self,
        ctx: &Context<'_>,
        input: ObjectToAntragInput,
    ) -> Result<ObjectToAntragPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let antrag = parse_id(&input.antrag_id, "antragId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let Some(data_key) = data_key(deps, caller.rolle_id).await? else {
            return Err(ApiError::Unauthenticated("this role was deleted".into()).into());
        };
        let cmd = AntragCommand::Einspruch(Einspruch {
            by: caller.rolle_id,
            reason: input.reason.clone(),
            now: Utc::now(),
            by_verified: me.verified,
            key: data_key,
            nonce: nonce(),
        });
        let meta = meta_for(&caller, client, "objectToAntrag", key);
        let done =
            execute::<Antrag>(deps, AggregateType::Antrag, antrag, &cmd, meta, false).await?;
        let stored = first_event(&done.events)?;
        Ok(ObjectToAntragPayload {
            objection: EinspruchNode {
                antrag_id: ID(antrag.to_string()),
                rolle_id: ID(caller.rolle_id.to_string()),
                reason: Some(input.reason.trim().to_owned()),
                created_at: stored.envelope.ts,
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Vote on an open Antrag. Only verified roles (FORBIDDEN), only before the deadline
    /// (CONFLICT), once per role (a second vote is a CONFLICT).
    async fn cast_stimme(
        &self,
        ctx: &Context<'_>,
        input: CastStimmeInput,
    ) -> Result<CastStimmePayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let antrag = parse_id(&input.antrag_id, "antragId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let cmd = AntragCommand::Abstimmen(Abstimmen {
            by: caller.rolle_id,
            vote: input.vote.into(),
            now: Utc::now(),
            by_verified: me.verified,
        });
        let meta = meta_for(&caller, client, "castStimme", key);
        let done =
            execute::<Antrag>(deps, AggregateType::Antrag, antrag, &cmd, meta, false).await?;
        let stored = first_event(&done.events)?;
        let p: domain::events::StimmeAbgegeben = stored.envelope.decode()?;
        Ok(CastStimmePayload {
            stimme: StimmeNode {
                antrag_id: ID(antrag.to_string()),
                rolle_id: ID(p.by.to_string()),
                vote: p.vote.into(),
                created_at: stored.envelope.ts,
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Delegate the caller's vote to another role until `validUntil` (one delegation per role: a
    /// new one replaces the old). Not to oneself (VALIDATION), to an existing role (NOT_FOUND),
    /// `validUntil` in the future (VALIDATION).
    async fn delegate(&self, ctx: &Context<'_>, input: DelegateInput) -> Result<DelegatePayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let to = parse_id(&input.to, "to")?;
        let to_exists = role_facts(&deps.db, to).await?.exists;
        let now = Utc::now();
        let cmd = DelegationCommand::Erstellen(Erstellen {
            from: caller.rolle_id,
            to,
            valid_until: input.valid_until,
            now,
            to_exists,
        });
        let meta = meta_for(&caller, client, "delegate", key);
        let id = delegation_id(caller.rolle_id);
        let done = execute::<Delegation>(deps, AggregateType::Delegation, id, &cmd, meta, false)
            .await
            .map_err(|e| rename_field(e, "valid_until", "validUntil"))?;
        let created = done
            .events
            .iter()
            .find(|s| s.envelope.event_type == "DelegationErstellt");
        let (valid_until, created_at, replaced) = match created {
            Some(s) => {
                let p: DelegationErstellt = s.envelope.decode()?;
                (p.valid_until, s.envelope.ts, p.replaces)
            }
            None => (
                domain::envelope::truncate_millis(input.valid_until),
                now,
                None,
            ),
        };
        Ok(DelegatePayload {
            delegation: DelegationNode {
                from_id: ID(caller.rolle_id.to_string()),
                to_id: ID(to.to_string()),
                valid_until,
                created_at,
                revoked_at: None,
                ended_at: None,
                ended_reason: None,
                active: valid_until > Utc::now(),
            },
            replaced_id: replaced.map(|r| ID(r.to_string())),
            event: created.map(Into::into),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Revoke the caller's delegation (CONFLICT when none is in force).
    async fn revoke_delegation(
        &self,
        ctx: &Context<'_>,
        input: RevokeDelegationInput,
    ) -> Result<RevokeDelegationPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let cmd = DelegationCommand::Widerrufen { now: Utc::now() };
        let meta = meta_for(&caller, client, "revokeDelegation", key);
        let id = delegation_id(caller.rolle_id);
        let done =
            execute::<Delegation>(deps, AggregateType::Delegation, id, &cmd, meta, false).await?;
        let stored = first_event(&done.events)?;
        let p: DelegationWiderrufen = stored.envelope.decode()?;
        Ok(RevokeDelegationPayload {
            revoked_to_id: ID(p.to.to_string()),
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Confirm another role (peer verification): the second distinct verified confirmer
    /// verifies it. Not oneself, only by verified roles (FORBIDDEN); once per confirmer and
    /// not for verified roles (CONFLICT).
    async fn confirm_verification(
        &self,
        ctx: &Context<'_>,
        input: ConfirmVerificationInput,
    ) -> Result<ConfirmVerificationPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let target = parse_id(&input.rolle_id, "rolleId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let cmd = RolleCommand::Bestaetigen(Bestaetigen {
            target,
            by: caller.rolle_id,
            by_verified: me.verified,
        });
        let meta = meta_for(&caller, client, "confirmVerification", key);
        let done = execute::<Rolle>(deps, AggregateType::Rolle, target, &cmd, meta, false).await?;
        let stored = first_event(&done.events)?;
        let verified = done
            .events
            .iter()
            .find(|s| s.envelope.event_type == "RolleVerifiziert");
        if let Some(v) = verified {
            let _: RolleVerifiziert = v.envelope.decode()?;
        }
        Ok(ConfirmVerificationPayload {
            rolle_id: ID(target.to_string()),
            verified: verified.is_some(),
            event: stored.into(),
            verified_event: verified.map(Into::into),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Report content (a Knoten, a message, an Antrag or a role): opens a moderation thread in
    /// the Webrat. Any role may report; NOT_FOUND for content that does not exist.
    async fn raise_flag(
        &self,
        ctx: &Context<'_>,
        input: RaiseFlagInput,
    ) -> Result<RaiseFlagPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let target_id = parse_id(&input.target_id, "targetId")?;
        let kind: FlagTargetKind = input.target_kind.into();
        let author = author_of(&deps.db, kind, target_id).await?;
        let Some(data_key) = data_key(deps, caller.rolle_id).await? else {
            return Err(ApiError::Unauthenticated("this role was deleted".into()).into());
        };
        let id = Uuid::new_v5(
            &ID_NAMESPACE,
            format!("flag:{}:{key}", caller.rolle_id).as_bytes(),
        );
        let cmd = FlagCommand::Melden(Melden {
            target: FlagTarget {
                kind,
                id: target_id,
            },
            reason: input.reason.clone(),
            by: caller.rolle_id,
            author_of_target: author,
            key: data_key,
            nonce: nonce(),
        });
        let meta = meta_for(&caller, client, "raiseFlag", key);
        let done = execute::<Flag>(deps, AggregateType::Flag, id, &cmd, meta, true).await?;
        let stored = first_event(&done.events)?;
        let p: domain::events::FlagRaised = stored.envelope.decode()?;
        Ok(RaiseFlagPayload {
            flag: FlagNode {
                id: ID(id.to_string()),
                target_kind: input.target_kind,
                target_id: ID(p.target.id.to_string()),
                reason: Some(input.reason.trim().to_owned()),
                raised_by_id: ID(p.by.to_string()),
                author_of_target_id: p.author_of_target.map(|a| ID(a.to_string())),
                created_at: stored.envelope.ts,
                outcome: None,
                resolution_reason: None,
                resolved_by_id: None,
                resolved_at: None,
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }

    /// Resolve a flag: keep or hide the content. Only a verified role that neither wrote the
    /// content nor raised the flag (FORBIDDEN); once (CONFLICT).
    async fn resolve_flag(
        &self,
        ctx: &Context<'_>,
        input: ResolveFlagInput,
    ) -> Result<ResolveFlagPayload> {
        let (caller, deps, client) = who(ctx)?;
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let flag_id = parse_id(&input.flag_id, "flagId")?;
        let me = role_facts(&deps.db, caller.rolle_id).await?;
        let Some(data_key) = data_key(deps, caller.rolle_id).await? else {
            return Err(ApiError::Unauthenticated("this role was deleted".into()).into());
        };
        let cmd = FlagCommand::Aufloesen(Aufloesen {
            outcome: input.outcome.into(),
            reason: input.reason.clone(),
            by: caller.rolle_id,
            by_verified: me.verified,
            key: data_key,
            nonce: nonce(),
        });
        let meta = meta_for(&caller, client, "resolveFlag", key);
        let history = deps
            .bus
            .history(AggregateType::Flag, flag_id)
            .await
            .map_err(ApiError::from)?;
        let done = execute::<Flag>(deps, AggregateType::Flag, flag_id, &cmd, meta, false).await?;
        let stored = first_event(&done.events)?;
        let p: domain::events::FlagResolved = stored.envelope.decode()?;
        let raised = history
            .iter()
            .find(|s| s.envelope.event_type == "FlagRaised")
            .ok_or_else(|| ApiError::unavailable("a resolved flag without FlagRaised"))?;
        let r: domain::events::FlagRaised = raised.envelope.decode()?;
        // The reporter's reason comes from the projection (the API does not open other roles'
        // sealed texts here).
        let reason = load_flag(&deps.db, flag_id).await?.and_then(|f| f.reason);
        Ok(ResolveFlagPayload {
            flag: FlagNode {
                id: ID(flag_id.to_string()),
                target_kind: parse_target_kind(r.target.kind.as_str()),
                target_id: ID(r.target.id.to_string()),
                reason,
                raised_by_id: ID(r.by.to_string()),
                author_of_target_id: r.author_of_target.map(|a| ID(a.to_string())),
                created_at: raised.envelope.ts,
                outcome: Some(match p.outcome {
                    domain::events::FlagOutcome::Kept => FlagOutcomeGql::Kept,
                    domain::events::FlagOutcome::Hidden => FlagOutcomeGql::Hidden,
                }),
                resolution_reason: Some(input.reason.trim().to_owned()),
                resolved_by_id: Some(ID(p.by.to_string())),
                resolved_at: Some(stored.envelope.ts),
            },
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/// What happened to an Antrag.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AntragChangeKind {
    /// It was filed (`antrag` holds it).
    Filed,
    /// Someone objected (`objection` holds it).
    Objection,
    /// Someone voted (`stimme` holds it).
    Vote,
    /// At the deadline, participation reached the quorum (a DECIDED change follows).
    QuorumReached,
    /// It was decided (`status` and `tally` hold the result).
    Decided,
}

/// A change to an Antrag, placed at its Weberei's centre.
#[derive(SimpleObject, Clone, Debug)]
pub struct AntragChange {
    /// The Antrag.
    pub antrag_id: ID,
    /// What happened.
    pub kind: AntragChangeKind,
    /// Its Weberei: H3 cell at resolution 7, hex.
    pub weberei: String,
    /// Latitude of the Weberei's centre.
    pub weberei_lat: f64,
    /// Longitude of the Weberei's centre.
    pub weberei_lng: f64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// For FILED: the Antrag as filed.
    pub antrag: Option<AntragNode>,
    /// For OBJECTION: the objection.
    pub objection: Option<EinspruchNode>,
    /// For VOTE: the direct vote.
    pub stimme: Option<StimmeNode>,
    /// For DECIDED: the status.
    pub status: Option<AntragStatusGql>,
    /// For DECIDED: the decided numbers.
    pub tally: Option<AntragTally>,
}

impl AntragChange {
    pub(crate) fn new(id: Uuid, kind: AntragChangeKind, at: DateTime<Utc>) -> Self {
        Self {
            antrag_id: ID(id.to_string()),
            kind,
            weberei: String::new(),
            weberei_lat: 0.0,
            weberei_lng: 0.0,
            at,
            antrag: None,
            objection: None,
            stimme: None,
            status: None,
            tally: None,
        }
    }

    /// Put the change at the centre of Weberei `hex`.
    pub(crate) fn place(&mut self, hex: &str) -> Result<(), DomainError> {
        let cell = domain::governance::parse_weberei(hex)?;
        (self.weberei_lat, self.weberei_lng) = cell_centre(cell);
        self.weberei = cell.to_string();
        Ok(())
    }

    pub(crate) fn set_decision(&mut self, d: &AntragEntschieden) {
        use domain::events::AntragStatus as S;
        self.status = Some(match d.status {
            S::Angenommen => AntragStatusGql::Angenommen,
            S::Abgelehnt => AntragStatusGql::Abgelehnt,
            S::QuorumVerfehlt => AntragStatusGql::QuorumVerfehlt,
        });
        self.tally = Some(AntragTally {
            ja: int(d.ja),
            nein: int(d.nein),
            enthaltung: int(d.enthaltung),
            participation: int(d.participation),
            delegated: int(d
                .counted
                .iter()
                .filter(|c| c.delegated_from.is_some())
                .count() as u64),
            decided: true,
        });
    }

    fn in_box(&self, bbox: &Bbox) -> bool {
        domain::geo::Point::new(self.weberei_lat, self.weberei_lng).is_ok_and(|p| bbox.contains(p))
    }
}

/// One batched update of the Webrat in a viewport, sent at most once per tick.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct WebratDiff {
    /// Changes to Anträge whose Weberei centre lies in the box, in log order.
    pub changes: Vec<AntragChange>,
    /// Opaque position in the event log this diff covers up to. Pass it as `after` when
    /// subscribing again to receive exactly what was missed.
    pub cursor: String,
    /// True if updates were dropped for this subscriber (too slow, or `after` is older than the
    /// log holds): reload with the `antraege` query, then keep listening. `changes` is empty.
    pub resync: bool,
    /// True for the keep-alive diff sent when nothing was sent for 30 s.
    pub heartbeat: bool,
}

impl WebratDiff {
    fn notice(upto: u64, resync: bool, heartbeat: bool) -> Self {
        Self {
            changes: Vec::new(),
            cursor: encode_webrat_cursor(upto),
            resync,
            heartbeat,
        }
    }
}

const WEBRAT_CURSOR_PREFIX: &str = "governance:";

fn encode_webrat_cursor(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{WEBRAT_CURSOR_PREFIX}{seq}"))
}

fn decode_webrat_cursor(cursor: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::from(DomainError::validation(
            "after",
            "not a cursor of the webrat subscription (pass the `cursor` of a diff as it was sent)",
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let seq = raw.strip_prefix(WEBRAT_CURSOR_PREFIX).ok_or_else(bad)?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    seq.parse().map_err(|_| bad())
}

/// Most changes one replayed diff carries.
const REPLAY_BATCH: usize = 200;
/// How long a replay waits for the next message before it gives up (and sends `resync`).
const REPLAY_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// What a `webrat` subscription with `after` does before it goes live.
enum Replay {
    Nothing {
        upto: u64,
    },
    Resync {
        upto: u64,
    },
    Read {
        messages: Box<async_nats::jetstream::consumer::pull::Ordered>,
        upto: u64,
    },
}

async fn prepare_replay(deps: &Deps, cursor: u64, registered_at: u64) -> Result<Replay, ApiError> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let ort = &deps.bus.config().ort;
    let mut stream = deps
        .bus
        .jetstream()
        .get_stream(ort.stream_name(StreamDomain::Governance))
        .await
        .map_err(ApiError::unavailable)?;
    let state = stream
        .info()
        .await
        .map_err(ApiError::unavailable)?
        .state
        .clone();
    let upto = state.last_sequence.max(registered_at);
    if cursor > state.last_sequence || cursor.saturating_add(1) < state.first_sequence {
        return Ok(Replay::Resync { upto });
    }
    if cursor >= upto {
        return Ok(Replay::Nothing { upto: cursor });
    }
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: ort.stream_filter(StreamDomain::Governance),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: cursor + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(ApiError::unavailable)?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(Replay::Nothing { upto });
    }
    let messages = consumer.messages().await.map_err(ApiError::unavailable)?;
    Ok(Replay::Read {
        messages: Box::new(messages),
        upto,
    })
}

#[derive(Default)]
pub struct GovernanceSubscription;

#[Subscription]
impl GovernanceSubscription {
    /// Changes of the Webrat inside a bounding box: Anträge filed, objected to, voted on and
    /// decided in the Webereien whose centre lies in the box. At most one diff per tick (1.5 s
    /// by default), none when nothing changed, a `heartbeat` diff after 30 s of silence.
    ///
    /// With `after` (the `cursor` of the last diff received), what was missed is sent first,
    /// then the subscription goes live without gap or duplicate; an `after` older than what
    /// the log still holds yields one diff with `resync: true`.
    async fn webrat(
        &self,
        ctx: &Context<'_>,
        bbox: BboxInput,
        #[graphql(
            desc = "Map zoom, 0 to 22 (web map convention). Webereien are fixed cells, so it only has to be valid."
        )]
        zoom: Option<f64>,
        #[graphql(desc = "The `cursor` of the last diff received: replay what was missed.")]
        after: Option<String>,
    ) -> Result<impl Stream<Item = WebratDiff> + use<>> {
        let deps = ctx.data::<Deps>()?.clone();
        let bbox = bbox.validate(deps.config.max_bbox_area_deg2)?;
        if let Some(z) = zoom
            && !(z.is_finite() && (0.0..=22.0).contains(&z))
        {
            return Err(ApiError::from(DomainError::validation(
                "zoom",
                format!("must be a map zoom between 0 and 22, got {z}"),
            ))
            .into());
        }
        let after = after.as_deref().map(decode_webrat_cursor).transpose()?;
        let feed = deps.hub.governance().clone();
        if after.is_some() {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while !feed.is_following() {
                if tokio::time::Instant::now() > deadline {
                    return Err(ApiError::unavailable(
                        "the Webrat feed does not follow the event log yet",
                    )
                    .into());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        // Subscribe before looking at the log: what comes after this position arrives live.
        let rx = feed.subscribe();
        let registered_at = feed.last_seq();
        let replay = match after {
            Some(cursor) => Some(prepare_replay(&deps, cursor, registered_at).await?),
            None => None,
        };
        Ok(webrat_diffs(
            rx,
            feed,
            bbox,
            replay,
            deps.config.ws_tick,
            deps.config.heartbeat,
        ))
    }

    /// Every change to one Antrag as it happens: objections, votes, the quorum and the
    /// decision. NOT_FOUND for an Antrag that does not exist.
    async fn antrag_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = AntragChange> + use<>> {
        let deps = ctx.data::<Deps>()?.clone();
        let id = parse_id(&id, "id")?;
        let mut rx = deps.hub.governance().subscribe();
        let chain = deps
            .bus
            .history(AggregateType::Antrag, id)
            .await
            .map_err(ApiError::from)?;
        if chain.is_empty() {
            return Err(
                ApiError::from(DomainError::NotFound(format!("there is no Antrag {id}"))).into(),
            );
        }
        let want = ID(id.to_string());
        Ok(async_stream::stream! {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.change.antrag_id == want => yield ev.change.clone(),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "antragChanged subscriber lagged behind the Webrat feed");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}

fn webrat_diffs(
    mut rx: tokio::sync::broadcast::Receiver<
        std::sync::Arc<crate::live_governance::GovernanceEvent>,
    >,
    feed: crate::live_governance::GovernanceFeed,
    bbox: Bbox,
    replay: Option<Replay>,
    tick_every: std::time::Duration,
    heartbeat: std::time::Duration,
) -> impl Stream<Item = WebratDiff> + use<> {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    async_stream::stream! {
        let mut seen_upto = 0;
        match replay {
            None => {}
            Some(Replay::Nothing { upto }) => seen_upto = upto,
            Some(Replay::Resync { upto }) => {
                seen_upto = upto;
                yield WebratDiff::notice(upto, true, false);
            }
            Some(Replay::Read { mut messages, upto }) => {
                seen_upto = upto;
                let mut diff = WebratDiff::default();
                loop {
                    let msg = match tokio::time::timeout(REPLAY_IDLE, messages.next()).await {
                        Ok(Some(Ok(msg))) => msg,
                        _ => {
                            tracing::warn!("webrat replay broke off; the subscriber resyncs");
                            diff = WebratDiff::notice(upto, true, false);
                            break;
                        }
                    };
                    let Ok(info) = msg.info() else { continue };
                    let (seq, pending) = (info.stream_sequence, info.pending);
                    if seq > upto {
                        break;
                    }
                    if let Some(change) = feed.decoder().decode(&msg.payload).await
                        && change.in_box(&bbox)
                    {
                        diff.changes.push(change);
                    }
                    if diff.changes.len() >= REPLAY_BATCH {
                        diff.cursor = encode_webrat_cursor(seq);
                        yield std::mem::take(&mut diff);
                    }
                    if seq >= upto || pending == 0 {
                        break;
                    }
                }
                if !diff.changes.is_empty() || diff.resync {
                    diff.cursor = encode_webrat_cursor(upto);
                    yield diff;
                }
            }
        }
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut pending: Vec<AntragChange> = Vec::new();
        let mut received = seen_upto;
        let mut lagged = false;
        let mut last_sent = tokio::time::Instant::now();
        let accept = |ev: &crate::live_governance::GovernanceEvent,
                          received: &mut u64,
                          pending: &mut Vec<AntragChange>| {
            *received = (*received).max(ev.seq);
            if ev.seq > seen_upto && ev.change.in_box(&bbox) {
                pending.push(ev.change.clone());
            }
        };
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => accept(&ev, &mut received, &mut pending),
                    Err(RecvError::Lagged(_)) => {
                        lagged = true;
                        pending.clear();
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    // Read the position first, then drain: everything up to it is in the
                    // channel (the feed stores its position after sending).
                    let position = feed.last_seq();
                    loop {
                        match rx.try_recv() {
                            Ok(ev) => accept(&ev, &mut received, &mut pending),
                            Err(TryRecvError::Lagged(_)) => {
                                lagged = true;
                                pending.clear();
                            }
                            Err(_) => break,
                        }
                    }
                    let upto = position.max(received).max(seen_upto);
                    if lagged {
                        lagged = false;
                        last_sent = tokio::time::Instant::now();
                        yield WebratDiff::notice(upto, true, false);
                    } else if !pending.is_empty() {
                        last_sent = tokio::time::Instant::now();
                        yield WebratDiff {
                            changes: std::mem::take(&mut pending),
                            cursor: encode_webrat_cursor(upto),
                            resync: false,
                            heartbeat: false,
                        };
                    } else if last_sent.elapsed() >= heartbeat {
                        last_sent = tokio::time::Instant::now();
                        yield WebratDiff::notice(upto, false, true);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn who<'a>(ctx: &'a Context<'_>) -> Result<(Caller, &'a Deps, Option<&'a ClientInfo>), ApiError> {
    let caller = require_caller(ctx)?;
    let deps = ctx
        .data::<Deps>()
        .map_err(|e| ApiError::unavailable(e.message))?;
    Ok((caller, deps, ctx.data_opt::<ClientInfo>()))
}

fn first_event(events: &[Stored]) -> Result<&Stored, ApiError> {
    events
        .first()
        .ok_or_else(|| ApiError::unavailable("the command produced no event"))
}

/// The domain names its fields in snake_case after its own words; the client sent camelCase.
fn rename_field(e: ApiError, from: &str, to: &str) -> ApiError {
    match e {
        ApiError::Domain(DomainError::Validation { field, message }) if field == from => {
            ApiError::Domain(DomainError::Validation {
                field: to.to_owned(),
                message,
            })
        }
        other => other,
    }
}

/// What the projection knows of a role.
struct RoleFacts {
    /// Registered and not deleted.
    exists: bool,
    verified: bool,
    /// Home cell (resolution 9), hex.
    home_h3: Option<String>,
}

async fn role_facts(db: &DatabaseConnection, id: Uuid) -> Result<RoleFacts, ApiError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT h3, verified_at IS NOT NULL AS verified FROM rollen WHERE id = $1 AND deleted_at IS NULL",
            [id.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(RoleFacts {
            exists: false,
            verified: false,
            home_h3: None,
        });
    };
    let h3: i64 = row.try_get("", "h3")?;
    Ok(RoleFacts {
        exists: true,
        verified: row.try_get("", "verified")?,
        home_h3: h3o::CellIndex::try_from(h3 as u64)
            .ok()
            .map(|c| c.to_string()),
    })
}

/// The role that wrote flagged content (`None` for content the system made); NOT_FOUND when
/// there is no such content.
async fn author_of(
    db: &DatabaseConnection,
    kind: FlagTargetKind,
    id: Uuid,
) -> Result<Option<Uuid>, ApiError> {
    let (sql, what) = match kind {
        FlagTargetKind::Knoten => (
            "SELECT created_by AS author FROM knoten WHERE id = $1",
            "Knoten",
        ),
        FlagTargetKind::Nachricht => ("SELECT author FROM nachrichten WHERE id = $1", "Nachricht"),
        FlagTargetKind::Antrag => (
            "SELECT created_by AS author FROM antraege WHERE id = $1",
            "Antrag",
        ),
        FlagTargetKind::Rolle => (
            "SELECT id AS author FROM rollen WHERE id = $1 AND deleted_at IS NULL",
            "Rolle",
        ),
    };
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [id.into()],
        ))
        .await?;
    match row {
        Some(r) => Ok(r.try_get("", "author")?),
        None => Err(DomainError::NotFound(format!("there is no {what} {id}")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_validation_error() {
        let ts = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap_or_default();
        let id = ID(Uuid::from_u128(7).to_string());
        let c = encode_cursor(ts, &id);
        let (t, i) = decode_cursor(&c, "after").ok().unwrap_or_default();
        assert_eq!((t, i), (ts, Uuid::from_u128(7)));
        assert!(matches!(
            decode_cursor("nope", "after"),
            Err(ApiError::Domain(DomainError::Validation { .. }))
        ));
    }

    #[test]
    fn domain_field_names_become_the_clients_names() {
        let e = rename_field(
            DomainError::validation("valid_until", "past").into(),
            "valid_until",
            "validUntil",
        );
        assert!(
            matches!(e, ApiError::Domain(DomainError::Validation { ref field, .. }) if field == "validUntil")
        );
    }
}
