//! The Webrat as projected: `antraege`, `stimmen`, `einsprueche`, `antrag_counted_votes`,
//! `delegationen` and `flags`, and the facts the governance commands need from them.

use chrono::{DateTime, Utc};
use domain::events::{CountedVote, FlagTargetKind, Vote};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement};
use uuid::Uuid;

use super::Keyset;

/// Where an Antrag stands, as `antraege.status` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AntragStatus {
    Offen,
    Angenommen,
    Abgelehnt,
    QuorumVerfehlt,
}

impl AntragStatus {
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

const ANTRAG_COLUMNS: &str = "id, weavery_h3, title, content, status::text AS status, created_by, \
    created_at, decision_deadline, decided_at, quorum_reached, ja::bigint AS ja, nein::bigint AS nein, \
    enthaltung::bigint AS enthaltung, participation::bigint AS participation, \
    active_roles::bigint AS active_roles, quorum_percent::bigint AS quorum_percent";

fn row_to_antrag(row: &QueryResult) -> Result<AntragRow, DbErr> {
    Ok(AntragRow {
        id: row.try_get("", "id")?,
        weavery_h3: row.try_get("", "weavery_h3")?,
        title: row.try_get("", "title")?,
        content: row.try_get("", "content")?,
        status: AntragStatus::from_db(&row.try_get::<String>("", "status")?),
        created_by: row.try_get("", "created_by")?,
        created_at: row.try_get("", "created_at")?,
        decision_deadline: row.try_get("", "decision_deadline")?,
        decided_at: row.try_get("", "decided_at")?,
        quorum_reached: row.try_get("", "quorum_reached")?,
        ja: row.try_get("", "ja")?,
        nein: row.try_get("", "nein")?,
        enthaltung: row.try_get("", "enthaltung")?,
        participation: row.try_get("", "participation")?,
        active_roles: row.try_get("", "active_roles")?,
        quorum_percent: row.try_get("", "quorum_percent")?,
    })
}

/// The Webereien (H3 cells) that have visible Anträge (with this status).
pub(crate) async fn webereien(
    db: &DatabaseConnection,
    status: Option<AntragStatus>,
) -> Result<Vec<i64>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT DISTINCT weavery_h3 FROM antraege WHERE hidden_at IS NULL \
             AND ($1::text IS NULL OR status::text = $1)",
            [status.map(|s| s.as_db().to_owned()).into()],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "weavery_h3")).collect()
}

/// Visible Anträge of these Webereien (with this status), newest first, before `before`.
pub(crate) async fn antraege_page(
    db: &DatabaseConnection,
    cells: Vec<i64>,
    status: Option<AntragStatus>,
    before: Keyset,
    limit: u64,
) -> Result<Vec<AntragRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT {ANTRAG_COLUMNS} FROM antraege WHERE hidden_at IS NULL \
                 AND weavery_h3 = ANY($1) AND ($2::text IS NULL OR status::text = $2) \
                 AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5"
            ),
            [
                cells.into(),
                status.map(|s| s.as_db().to_owned()).into(),
                before.0.into(),
                before.1.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter().map(row_to_antrag).collect()
}

/// Visible Anträge by id.
pub(crate) async fn antraege(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> Result<Vec<AntragRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT {ANTRAG_COLUMNS} FROM antraege WHERE id = ANY($1) AND hidden_at IS NULL"
            ),
            [ids.to_vec().into()],
        ))
        .await?;
    rows.iter().map(row_to_antrag).collect()
}

/// The Weberei of an Antrag (hidden ones too).
pub(crate) async fn antrag_weberei(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<i64>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT weavery_h3 FROM antraege WHERE id = $1",
            [id.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "weavery_h3")).transpose()
}

fn parse_vote(s: &str) -> Result<Vote, DbErr> {
    match s {
        "ja" => Ok(Vote::Ja),
        "nein" => Ok(Vote::Nein),
        "enthaltung" => Ok(Vote::Enthaltung),
        other => Err(DbErr::Custom(format!("unknown vote {other:?}"))),
    }
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
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT antrag_id, rolle_id, vote::text AS vote, created_at FROM stimmen \
             WHERE antrag_id = ANY($1) AND delegated_from IS NULL ORDER BY created_at, rolle_id",
            [antraege.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StimmeRow {
                antrag_id: r.try_get("", "antrag_id")?,
                rolle_id: r.try_get("", "rolle_id")?,
                vote: parse_vote(&r.try_get::<String>("", "vote")?)?,
                created_at: r.try_get("", "created_at")?,
            })
        })
        .collect()
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
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT antrag_id, \"by\", reason, created_at FROM einsprueche \
             WHERE antrag_id = ANY($1) ORDER BY created_at, \"by\"",
            [antraege.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(EinspruchRow {
                antrag_id: r.try_get("", "antrag_id")?,
                by: r.try_get("", "by")?,
                reason: r.try_get("", "reason")?,
                created_at: r.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// `(from, to)` of every delegation in force now whose delegator may vote (verified, not
/// deleted).
pub(crate) async fn active_delegations(
    db: &DatabaseConnection,
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    let rows = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT d.from_rolle, d.to_rolle FROM delegationen d JOIN rollen r ON r.id = d.from_rolle \
             WHERE d.revoked_at IS NULL AND d.ended_at IS NULL AND d.valid_until > now() \
             AND r.verified_at IS NOT NULL AND r.deleted_at IS NULL",
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "from_rolle")?, r.try_get("", "to_rolle")?)))
        .collect()
}

/// Every voice counted in an Antrag's decision, by voice.
pub(crate) async fn counted_votes(
    db: &DatabaseConnection,
    antrag: Uuid,
) -> Result<Vec<CountedVote>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT rolle, vote::text AS vote, delegated_from FROM antrag_counted_votes \
             WHERE antrag_id = $1 ORDER BY voice",
            [antrag.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CountedVote {
                rolle: r.try_get("", "rolle")?,
                vote: parse_vote(&r.try_get::<String>("", "vote")?)?,
                delegated_from: r.try_get("", "delegated_from")?,
            })
        })
        .collect()
}

/// How many voices of an Antrag's decision were counted through a delegation.
pub(crate) async fn count_delegated(db: &DatabaseConnection, antrag: Uuid) -> Result<u64, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM antrag_counted_votes WHERE antrag_id = $1 AND delegated_from IS NOT NULL",
            [antrag.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => u64::try_from(r.try_get::<i64>("", "n")?).unwrap_or(0),
        None => 0,
    })
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
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT from_rolle, to_rolle, valid_until, created_at, revoked_at, \
             ended_at, ended_reason::text AS ended_reason, \
             (revoked_at IS NULL AND ended_at IS NULL AND valid_until > now()) AS active FROM delegationen \
             WHERE (from_rolle = $1 OR to_rolle = $1) AND revoked_at IS NULL \
             AND ended_at IS NULL AND valid_until > now() ORDER BY created_at, from_rolle",
            [rolle.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DelegationRow {
                from_rolle: r.try_get("", "from_rolle")?,
                to_rolle: r.try_get("", "to_rolle")?,
                valid_until: r.try_get("", "valid_until")?,
                created_at: r.try_get("", "created_at")?,
                revoked_at: r.try_get("", "revoked_at")?,
                ended_at: r.try_get("", "ended_at")?,
                ended_reason: r.try_get("", "ended_reason")?,
                active: r.try_get("", "active")?,
            })
        })
        .collect()
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

const FLAG_COLUMNS: &str = "id, target_kind::text AS target_kind, target_id, reason::text AS reason, \
    raised_by, author_of_target, created_at, outcome::text AS outcome, \
    resolution_reason::text AS resolution_reason, resolved_by, resolved_at";

fn row_to_flag(r: &QueryResult) -> Result<FlagRow, DbErr> {
    Ok(FlagRow {
        id: r.try_get("", "id")?,
        target_kind: r.try_get("", "target_kind")?,
        target_id: r.try_get("", "target_id")?,
        reason: r.try_get("", "reason")?,
        raised_by: r.try_get("", "raised_by")?,
        author_of_target: r.try_get("", "author_of_target")?,
        created_at: r.try_get("", "created_at")?,
        outcome: r.try_get("", "outcome")?,
        resolution_reason: r.try_get("", "resolution_reason")?,
        resolved_by: r.try_get("", "resolved_by")?,
        resolved_at: r.try_get("", "resolved_at")?,
    })
}

pub(crate) async fn flag(db: &DatabaseConnection, id: Uuid) -> Result<Option<FlagRow>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {FLAG_COLUMNS} FROM flags WHERE id = $1"),
            [id.into()],
        ))
        .await?;
    row.as_ref().map(row_to_flag).transpose()
}

/// Every flag on these targets, oldest first.
pub(crate) async fn flags_on(
    db: &DatabaseConnection,
    targets: Vec<Uuid>,
) -> Result<Vec<FlagRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT {FLAG_COLUMNS} FROM flags WHERE target_id = ANY($1) ORDER BY created_at, id"
            ),
            [targets.into()],
        ))
        .await?;
    rows.iter().map(row_to_flag).collect()
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
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT target_kind, target_id FROM flags WHERE id = $1",
            [flag.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let kind: String = row.try_get("", "target_kind")?;
    let id: Uuid = row.try_get("", "target_id")?;
    Ok(FlagTargetKind::parse(&kind).map(|k| (k, id)))
}

/// Who filed an Antrag: `None` if there is no such Antrag.
pub(crate) async fn antrag_creator(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<Option<Uuid>>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT created_by FROM antraege WHERE id = $1",
            [id.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "created_by")).transpose()
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
