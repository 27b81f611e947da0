//! The Webrat as projected: `antraege`, `stimmen`, `einsprueche`, `antrag_counted_votes`,
//! `delegationen` and `flags`, and the facts the governance commands need from them.
//!
//! SeaORM throughout, except the moderation threads' page (an aggregate keyset: `GROUP BY
//! target_id HAVING bool_or(..)` ordered by `max(created_at)`), which stays SQL.

use chrono::{DateTime, Utc};
use domain::events::{CountedVote, FlagTargetKind, Vote};
use entity::sea_orm_active_enums as db_enums;
use entity::{antraege, antrag_counted_votes, delegationen, einsprueche, flags, rollen, stimmen};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{Keyset, utc};

/// Where an Antrag stands, as `antraege.status` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AntragStatus {
    Offen,
    Angenommen,
    Abgelehnt,
    QuorumVerfehlt,
}

impl From<AntragStatus> for db_enums::AntragStatus {
    fn from(s: AntragStatus) -> Self {
        match s {
            AntragStatus::Offen => Self::Offen,
            AntragStatus::Angenommen => Self::Angenommen,
            AntragStatus::Abgelehnt => Self::Abgelehnt,
            AntragStatus::QuorumVerfehlt => Self::QuorumVerfehlt,
        }
    }
}

impl From<db_enums::AntragStatus> for AntragStatus {
    fn from(s: db_enums::AntragStatus) -> Self {
        match s {
            db_enums::AntragStatus::Offen => Self::Offen,
            db_enums::AntragStatus::Angenommen => Self::Angenommen,
            db_enums::AntragStatus::Abgelehnt => Self::Abgelehnt,
            db_enums::AntragStatus::QuorumVerfehlt => Self::QuorumVerfehlt,
        }
    }
}

fn vote(v: db_enums::Vote) -> Vote {
    match v {
        db_enums::Vote::Ja => Vote::Ja,
        db_enums::Vote::Nein => Vote::Nein,
        db_enums::Vote::Enthaltung => Vote::Enthaltung,
    }
}

/// `(created_at, id)` after (`Greater`) or before (`Less`) a keyset position.
fn keyset<C: ColumnTrait>(ts: C, id: C, at: Keyset, after: bool) -> Condition {
    let (t, i) = at;
    let (t1, i1) = if after {
        (ts.gt(t), id.gt(i))
    } else {
        (ts.lt(t), id.lt(i))
    };
    Condition::any()
        .add(t1)
        .add(Condition::all().add(ts.eq(t)).add(i1))
}

/// An Antrag as projected; the counts are those of the decision (or of the tally so far).
#[derive(Debug, Clone)]
pub(crate) struct AntragRow {
    pub id: Uuid,
    pub weavery_h3: i64,
    pub title: String,
    pub content: serde_json::Value,
    pub status: AntragStatus,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub decision_deadline: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub quorum_reached: Option<bool>,
    pub ja: Option<i64>,
    pub nein: Option<i64>,
    pub enthaltung: Option<i64>,
    pub participation: Option<i64>,
    pub active_roles: Option<i64>,
    pub quorum_percent: Option<i64>,
}

impl From<antraege::Model> for AntragRow {
    fn from(m: antraege::Model) -> Self {
        Self {
            id: m.id,
            weavery_h3: m.weavery_h3,
            title: m.title,
            content: m.content,
            status: m.status.into(),
            created_by: m.created_by,
            created_at: utc(m.created_at),
            decision_deadline: utc(m.decision_deadline),
            decided_at: m.decided_at.map(utc),
            quorum_reached: m.quorum_reached,
            ja: Some(i64::from(m.ja)),
            nein: Some(i64::from(m.nein)),
            enthaltung: Some(i64::from(m.enthaltung)),
            participation: m.participation.map(i64::from),
            active_roles: m.active_roles.map(i64::from),
            quorum_percent: m.quorum_percent.map(i64::from),
        }
    }
}

fn visible_antraege(status: Option<AntragStatus>) -> sea_orm::Select<antraege::Entity> {
    let q = antraege::Entity::find().filter(antraege::Column::HiddenAt.is_null());
    match status {
        Some(s) => q.filter(antraege::Column::Status.eq(db_enums::AntragStatus::from(s))),
        None => q,
    }
}

/// The Webereien (H3 cells) that have visible Anträge (with this status).
pub(crate) async fn webereien(
    db: &DatabaseConnection,
    status: Option<AntragStatus>,
) -> Result<Vec<i64>, DbErr> {
    visible_antraege(status)
        .select_only()
        .column(antraege::Column::WeaveryH3)
        .distinct()
        .into_tuple()
        .all(db)
        .await
}

/// Visible Anträge of these Webereien (with this status), newest first, before `before`.
pub(crate) async fn antraege_page(
    db: &DatabaseConnection,
    cells: Vec<i64>,
    status: Option<AntragStatus>,
    before: Keyset,
    limit: u64,
) -> Result<Vec<AntragRow>, DbErr> {
    let rows = visible_antraege(status)
        .filter(antraege::Column::WeaveryH3.is_in(cells))
        .filter(keyset(
            antraege::Column::CreatedAt,
            antraege::Column::Id,
            before,
            false,
        ))
        .order_by_desc(antraege::Column::CreatedAt)
        .order_by_desc(antraege::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Visible Anträge by id.
pub(crate) async fn antraege(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> Result<Vec<AntragRow>, DbErr> {
    let rows = visible_antraege(None)
        .filter(antraege::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The Weberei of an Antrag (hidden ones too).
pub(crate) async fn antrag_weberei(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<i64>, DbErr> {
    antraege::Entity::find_by_id(id)
        .select_only()
        .column(antraege::Column::WeaveryH3)
        .into_tuple()
        .one(db)
        .await
}

/// A direct vote.
#[derive(Debug, Clone)]
pub(crate) struct StimmeRow {
    pub antrag_id: Uuid,
    pub rolle_id: Uuid,
    pub vote: Vote,
    pub created_at: DateTime<Utc>,
}

/// The direct votes on these Anträge, oldest first.
pub(crate) async fn direct_votes(
    db: &DatabaseConnection,
    antraege: &[Uuid],
) -> Result<Vec<StimmeRow>, DbErr> {
    let rows = stimmen::Entity::find()
        .filter(stimmen::Column::AntragId.is_in(antraege.iter().copied()))
        .filter(stimmen::Column::DelegatedFrom.is_null())
        .order_by_asc(stimmen::Column::CreatedAt)
        .order_by_asc(stimmen::Column::RolleId)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| StimmeRow {
            antrag_id: r.antrag_id,
            rolle_id: r.rolle_id,
            vote: vote(r.vote),
            created_at: utc(r.created_at),
        })
        .collect())
}

/// An objection.
#[derive(Debug, Clone)]
pub(crate) struct EinspruchRow {
    pub antrag_id: Uuid,
    pub by: Uuid,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The objections to these Anträge, oldest first.
pub(crate) async fn einsprueche(
    db: &DatabaseConnection,
    antraege: &[Uuid],
) -> Result<Vec<EinspruchRow>, DbErr> {
    let rows = einsprueche::Entity::find()
        .filter(einsprueche::Column::AntragId.is_in(antraege.iter().copied()))
        .order_by_asc(einsprueche::Column::CreatedAt)
        .order_by_asc(einsprueche::Column::By)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| EinspruchRow {
            antrag_id: r.antrag_id,
            by: r.by,
            reason: r.reason,
            created_at: utc(r.created_at),
        })
        .collect())
}

/// Delegations in force now (not revoked, not ended, `valid_until` after the database's now).
fn delegations_in_force_now() -> sea_orm::Select<delegationen::Entity> {
    delegationen::Entity::find()
        .filter(delegationen::Column::RevokedAt.is_null())
        .filter(delegationen::Column::EndedAt.is_null())
        .filter(Expr::col(delegationen::Column::ValidUntil).gt(Expr::current_timestamp()))
}

/// `(from, to)` of every delegation in force now whose delegator may vote (verified, not
/// deleted).
pub(crate) async fn active_delegations(
    db: &DatabaseConnection,
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    let may_vote = Query::select()
        .column(rollen::Column::Id)
        .from(rollen::Entity)
        .and_where(rollen::Column::VerifiedAt.is_not_null())
        .and_where(rollen::Column::DeletedAt.is_null())
        .to_owned();
    delegations_in_force_now()
        .select_only()
        .columns([
            delegationen::Column::FromRolle,
            delegationen::Column::ToRolle,
        ])
        .filter(delegationen::Column::FromRolle.in_subquery(may_vote))
        .into_tuple()
        .all(db)
        .await
}

/// Every voice counted in an Antrag's decision, by voice.
pub(crate) async fn counted_votes(
    db: &DatabaseConnection,
    antrag: Uuid,
) -> Result<Vec<CountedVote>, DbErr> {
    let rows = antrag_counted_votes::Entity::find()
        .filter(antrag_counted_votes::Column::AntragId.eq(antrag))
        .order_by_asc(antrag_counted_votes::Column::Voice)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| CountedVote {
            rolle: r.rolle,
            vote: vote(r.vote),
            delegated_from: r.delegated_from,
        })
        .collect())
}

/// How many voices of an Antrag's decision were counted through a delegation.
pub(crate) async fn count_delegated(db: &DatabaseConnection, antrag: Uuid) -> Result<u64, DbErr> {
    antrag_counted_votes::Entity::find()
        .filter(antrag_counted_votes::Column::AntragId.eq(antrag))
        .filter(antrag_counted_votes::Column::DelegatedFrom.is_not_null())
        .count(db)
        .await
}

/// A delegation.
#[derive(Debug, Clone)]
pub(crate) struct DelegationRow {
    pub from_rolle: Uuid,
    pub to_rolle: Uuid,
    pub valid_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_reason: Option<String>,
    pub active: bool,
}

/// The delegations in force from or to `rolle`.
pub(crate) async fn delegations_in_force(
    db: &DatabaseConnection,
    rolle: Uuid,
) -> Result<Vec<DelegationRow>, DbErr> {
    let rows = delegations_in_force_now()
        .filter(
            Condition::any()
                .add(delegationen::Column::FromRolle.eq(rolle))
                .add(delegationen::Column::ToRolle.eq(rolle)),
        )
        .order_by_asc(delegationen::Column::CreatedAt)
        .order_by_asc(delegationen::Column::FromRolle)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| DelegationRow {
            from_rolle: r.from_rolle,
            to_rolle: r.to_rolle,
            valid_until: utc(r.valid_until),
            created_at: utc(r.created_at),
            revoked_at: r.revoked_at.map(utc),
            ended_at: r.ended_at.map(utc),
            ended_reason: r.ended_reason,
            // Selected as in force (by the database's clock): active.
            active: true,
        })
        .collect())
}

/// A flag as projected (`target_kind`, `outcome` as stored).
#[derive(Debug, Clone)]
pub(crate) struct FlagRow {
    pub id: Uuid,
    pub target_kind: String,
    pub target_id: Uuid,
    pub reason: Option<String>,
    pub raised_by: Uuid,
    pub author_of_target: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub outcome: Option<String>,
    pub resolution_reason: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<flags::Model> for FlagRow {
    fn from(r: flags::Model) -> Self {
        Self {
            id: r.id,
            target_kind: r.target_kind,
            target_id: r.target_id,
            reason: r.reason,
            raised_by: r.raised_by,
            author_of_target: r.author_of_target,
            created_at: utc(r.created_at),
            outcome: r.outcome,
            resolution_reason: r.resolution_reason,
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at.map(utc),
        }
    }
}

pub(crate) async fn flag(db: &DatabaseConnection, id: Uuid) -> Result<Option<FlagRow>, DbErr> {
    Ok(flags::Entity::find_by_id(id).one(db).await?.map(Into::into))
}

/// Every flag on these targets, oldest first.
pub(crate) async fn flags_on(
    db: &DatabaseConnection,
    targets: Vec<Uuid>,
) -> Result<Vec<FlagRow>, DbErr> {
    let rows = flags::Entity::find()
        .filter(flags::Column::TargetId.is_in(targets))
        .order_by_asc(flags::Column::CreatedAt)
        .order_by_asc(flags::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Moderation threads (flagged targets) as `(target, last flagged at)`, most recently flagged
/// first, before `before`; `open`: only those with (`true`) or without (`false`) an unresolved
/// flag.
pub(crate) async fn moderation_threads(
    db: &DatabaseConnection,
    open: Option<bool>,
    before: Keyset,
    limit: u64,
) -> Result<Vec<Keyset>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT target_id, max(created_at) AS last_at FROM flags GROUP BY target_id \
             HAVING ($1::boolean IS NULL OR bool_or(resolved_at IS NULL) = $1) \
             AND (max(created_at), target_id) < ($2, $3) \
             ORDER BY last_at DESC, target_id DESC LIMIT $4",
            [
                open.into(),
                before.0.into(),
                before.1.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|t| Ok((t.try_get("", "last_at")?, t.try_get("", "target_id")?)))
        .collect()
}

/// What a flag is about.
pub(crate) async fn flag_target(
    db: &DatabaseConnection,
    flag: Uuid,
) -> Result<Option<(FlagTargetKind, Uuid)>, DbErr> {
    let row: Option<(String, Uuid)> = flags::Entity::find_by_id(flag)
        .select_only()
        .columns([flags::Column::TargetKind, flags::Column::TargetId])
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.and_then(|(kind, id)| FlagTargetKind::parse(&kind).map(|k| (k, id))))
}

/// Who filed an Antrag: `None` if there is no such Antrag.
pub(crate) async fn antrag_creator(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<Option<Uuid>>, DbErr> {
    antraege::Entity::find_by_id(id)
        .select_only()
        .column(antraege::Column::CreatedBy)
        .into_tuple()
        .one(db)
        .await
}

/// Who wrote flaggable content, as projected: `None` when it is not projected (or a deleted
/// role), `Some(None)` for content the system made.
pub(crate) async fn author_of(
    db: &DatabaseConnection,
    kind: FlagTargetKind,
    id: Uuid,
) -> Result<Option<Option<Uuid>>, DbErr> {
    Ok(match kind {
        FlagTargetKind::Knoten => super::knoten::creator(db, id).await?,
        FlagTargetKind::Nachricht => super::social::nachricht_author(db, id).await?.map(Some),
        FlagTargetKind::Antrag => antrag_creator(db, id).await?,
        FlagTargetKind::Rolle => super::accounts::role_facts(db, id).await?.map(|_| Some(id)),
    })
}
