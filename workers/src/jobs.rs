//! The jobs worker: the decay and yarn timers, decision deadlines and delegation expiry of
//! DESIGN.md §4.
//!
//! Every `every` (and once right at start, which catches everything that came due while no jobs
//! worker ran) it reads the projections for what looks due and runs the matching command through
//! [`Bus::execute`]. The projections only propose; the aggregates decide on their own chains:
//!
//! - Every command has a deterministic idempotency key (`verfall:<id>:<expires_at millis>`,
//!   `garn:<id>`), so two workers, or one scan racing the next, append each event once.
//! - Every timer command is a no-op (an empty decision) when it no longer applies, so a scan
//!   that reads a projection lagging behind its events does no harm.
//! - One failing item is logged and skipped; the next scan tries it again.
//!
//! Yarn is looked at before decay: a Knoten whose threads from enough distinct roles are still
//! active was twisted before it could have faded (threads can only be spun to Knoten that have
//! not faded), also when the worker was down at its expiry.
//!
//! Decisions (`entscheidung:<antrag id>`): every open Antrag past its deadline is decided with
//! the facts *at its deadline*, so a worker that was down decides the same as one that was not:
//! the active roles (verified at the deadline and not deleted before it, homed in the Antrag's
//! Weberei, with an event in the `active_days` before the deadline) and the delegations active
//! at the deadline (created before it, `valid_until` after it, not ended at or before it) of
//! delegators verified and not deleted at the deadline. A role's activity is one column (its
//! latest event), so a role whose latest event is after the deadline counts as active.
//! Delegation expiry (`ablauf:<from>:<valid_until millis>`): every delegation not ended whose
//! `valid_until` has passed gets `DelegationAbgelaufen` on its delegator's chain.
//!
//! Time comes from a [`Clock`], so tests can move it.

use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, ExecuteError, Executed, Outcome};
use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::antrag::{Antrag, AntragCommand, Entscheiden};
use domain::delegation::{Delegation, DelegationCommand, delegation_id};
use domain::events::{FlagTarget, FlagTargetKind};
use domain::faden::{Faden, FadenCommand};
use domain::governance::{DEFAULT_ACTIVE_DAYS, DEFAULT_QUORUM_PERCENT};
use domain::knoten::{Knoten, KnotenCommand};
use domain::rules::YARN_MIN_ROLES;
use domain::{Actor, DomainError, Meta};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

/// Where the jobs worker gets "now" from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Scan period.
    pub every: Duration,
    /// Distinct roles with active threads that twist a Knoten into yarn.
    pub yarn_min_roles: usize,
    /// At most this many items per kind and scan; the rest follow in the next scans.
    pub batch: u64,
    /// `QUORUM_PERCENT`: share of the Weberei's active roles that must take part.
    pub quorum_percent: u32,
    /// `ACTIVE_DAYS`: a role is active if it caused an event this many days before a deadline.
    pub active_days: i64,
    /// `FF_TRANSITIVE_DELEGATION`: follow delegation chains to the first direct voter.
    pub transitive_delegation: bool,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(2),
            yarn_min_roles: YARN_MIN_ROLES,
            batch: 500,
            quorum_percent: DEFAULT_QUORUM_PERCENT,
            active_days: DEFAULT_ACTIVE_DAYS,
            transitive_delegation: false,
        }
    }
}

/// What one scan appended (events that already existed are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsReport {
    pub knoten_decayed: usize,
    pub faeden_decayed: usize,
    pub knoten_twisted: usize,
    pub faeden_twisted: usize,
    /// Anträge decided (`QuorumErreicht` if reached, then `AntragEntschieden`).
    pub antraege_decided: usize,
    /// Delegations recorded as expired (`DelegationAbgelaufen`).
    pub delegations_expired: usize,
    /// Moderation decisions recorded on the map (`InhaltVerborgen`).
    pub hidden_on_map: usize,
    /// Items whose command failed (logged; tried again by the next scan).
    pub failed: usize,
}

impl JobsReport {
    fn appended(&self) -> usize {
        self.knoten_decayed
            + self.faeden_decayed
            + self.knoten_twisted
            + self.faeden_twisted
            + self.antraege_decided
            + self.delegations_expired
            + self.hidden_on_map
    }
}

/// A scan could not read the projections (the database is down or the schema is wrong).
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Commands in flight at once within one scan.
const PARALLEL: usize = 16;

pub struct JobsWorker {
    bus: Bus,
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    cfg: JobsConfig,
}

/// How one timer command went.
enum Did {
    /// New events were appended.
    Appended,
    /// The same command ran before (same msg id on the chain).
    AlreadyDone,
    /// The aggregate decided there is nothing to do.
    Nothing,
    Failed,
}

impl JobsWorker {
    pub fn new(bus: Bus, db: DatabaseConnection, clock: Arc<dyn Clock>, cfg: JobsConfig) -> Self {
        Self {
            bus,
            db,
            clock,
            cfg,
        }
    }

    /// Scan at once, then every `cfg.every`, until `shutdown` turns true (or its sender is gone).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        info!(every = ?self.cfg.every, "jobs worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.scan_once().await {
                Ok(r) if r.appended() > 0 || r.failed > 0 => info!(?r, "jobs scan"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "jobs scan failed; trying again at the next tick"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.every) => {}
                changed = shutdown.changed() => if changed.is_err() { break; },
            }
        }
        info!("jobs worker stopped");
    }

    /// One pass over everything due at the clock's now: yarn first, then decay, then
    /// decisions and delegation expiry.
    #[tracing::instrument(skip_all)]
    pub async fn scan_once(&self) -> Result<JobsReport, JobsError> {
        let now = domain::envelope::truncate_millis(self.clock.now());
        let mut report = JobsReport::default();
        self.twist_knoten(now, &mut report).await?;
        self.twist_threads_of_yarn(now, &mut report).await?;
        self.decay_knoten(now, &mut report).await?;
        self.decay_faeden(now, &mut report).await?;
        self.decide_antraege(now, &mut report).await?;
        self.expire_delegations(now, &mut report).await?;
        self.hide_on_the_map(now, &mut report).await?;
        Ok(report)
    }

    /// Open Anträge past their deadline: decided with the facts at the deadline.
    async fn decide_antraege(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id, weavery_h3, decision_deadline FROM antraege \
                 WHERE status = 'offen' AND decision_deadline <= $1 \
                 ORDER BY decision_deadline LIMIT $2",
                [now.into(), self.batch().into()],
            ))
            .await?;
        for row in rows {
            let id: Uuid = row.try_get("", "id")?;
            let weberei: i64 = row.try_get("", "weavery_h3")?;
            let deadline: DateTime<Utc> = row.try_get("", "decision_deadline")?;
            let Some((lo, hi)) = home_range(weberei) else {
                error!(%id, weberei, "Antrag with a Weberei that is not an H3 cell at WEAVERY_RES");
                metrics::counter!("wg_jobs_failed_total").increment(1);
                report.failed += 1;
                continue;
            };
            let active_roles = self.active_roles(lo, hi, deadline).await?;
            let delegations = self.delegations_at(deadline).await?;
            let cmd = AntragCommand::Entscheiden(Entscheiden {
                now,
                active_roles,
                quorum_percent: self.cfg.quorum_percent,
                delegations,
                transitive: self.cfg.transitive_delegation,
            });
            let did = self
                .execute::<Antrag>(id, &cmd, entscheidung_msg_id(id), now)
                .await;
            count(did, &mut report.antraege_decided, &mut report.failed);
        }
        Ok(())
    }

    /// Flags resolved as hidden on a Knoten or a message whose Knoten's chain does not record it
    /// yet: `InhaltVerborgen` there, so the live map (which follows the social stream) takes
    /// the content off. A hidden message belongs to its Knoten's chain.
    async fn hide_on_the_map(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT f.id, f.target_kind, f.target_id,                         CASE f.target_kind WHEN 'knoten' THEN f.target_id ELSE n.knoten_id END AS knoten_id                  FROM flags f LEFT JOIN nachrichten n                    ON f.target_kind = 'nachricht' AND n.id = f.target_id                  WHERE f.outcome = 'hidden' AND f.map_hidden_at IS NULL                    AND f.target_kind IN ('knoten', 'nachricht')                  ORDER BY f.resolved_at LIMIT $1",
                [self.batch().into()],
            ))
            .await?;
        for row in rows {
            let flag_id: Uuid = row.try_get("", "id")?;
            let kind: String = row.try_get("", "target_kind")?;
            let target_id: Uuid = row.try_get("", "target_id")?;
            let Some(knoten) = row.try_get::<Option<Uuid>>("", "knoten_id")? else {
                // A message that is not projected yet: next scan.
                continue;
            };
            let Some(kind) = FlagTargetKind::parse(&kind) else {
                continue;
            };
            let cmd = KnotenCommand::Verbergen {
                flag_id,
                target: FlagTarget {
                    kind,
                    id: target_id,
                },
            };
            let did = self
                .execute::<Knoten>(knoten, &cmd, verborgen_msg_id(flag_id), now)
                .await;
            count(did, &mut report.hidden_on_map, &mut report.failed);
        }
        Ok(())
    }

    /// The quorum base of a Weberei (home cells `lo..=hi`) at `deadline`.
    async fn active_roles(&self, lo: i64, hi: i64, deadline: DateTime<Utc>) -> Result<u64, DbErr> {
        let since = deadline - chrono::Duration::days(self.cfg.active_days);
        let row = self
            .db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM rollen \
                 WHERE h3 BETWEEN $1 AND $2 \
                   AND verified_at IS NOT NULL AND verified_at <= $3 \
                   AND (deleted_at IS NULL OR deleted_at > $3) \
                   AND last_active_at >= $4",
                [lo.into(), hi.into(), deadline.into(), since.into()],
            ))
            .await?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `(from, to)` of the delegations active at `deadline` whose delegators were entitled to
    /// vote then (verified, not deleted).
    async fn delegations_at(&self, deadline: DateTime<Utc>) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT d.from_rolle, d.to_rolle FROM delegationen d JOIN rollen r ON r.id = d.from_rolle \
                 WHERE d.created_at < $1 AND d.valid_until > $1 \
                   AND (d.ended_at IS NULL OR d.ended_at > $1) \
                   AND r.verified_at IS NOT NULL AND r.verified_at <= $1 \
                   AND (r.deleted_at IS NULL OR r.deleted_at > $1) \
                 ORDER BY d.from_rolle",
                [deadline.into()],
            ))
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("", "from_rolle")?, row.try_get("", "to_rolle")?)))
            .collect()
    }

    /// Delegations not ended whose `valid_until` has passed: `DelegationAbgelaufen`.
    async fn expire_delegations(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT from_rolle, valid_until FROM delegationen \
                 WHERE ended_at IS NULL AND valid_until <= $1 \
                 ORDER BY valid_until LIMIT $2",
                [now.into(), self.batch().into()],
            ))
            .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let from: Uuid = row.try_get("", "from_rolle")?;
            let valid_until: DateTime<Utc> = row.try_get("", "valid_until")?;
            due.push((from, valid_until));
        }
        let cmd = &DelegationCommand::Ablaufen { now };
        let results: Vec<Did> = futures::stream::iter(due)
            .map(|(from, valid_until)| {
                self.execute::<Delegation>(
                    delegation_id(from),
                    cmd,
                    ablauf_msg_id(from, valid_until),
                    now,
                )
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for did in results {
            count(did, &mut report.delegations_expired, &mut report.failed);
        }
        Ok(())
    }

    /// Knoten with active threads from enough distinct roles: `KnotenVerzwirnt`, then
    /// `FadenVerzwirnt` for each of those threads.
    async fn twist_knoten(&self, now: DateTime<Utc>, report: &mut JobsReport) -> Result<(), DbErr> {
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT k.id, array_agg(DISTINCT f.from_rolle) AS roles, \
                        coalesce(array_agg(f.id) FILTER (WHERE NOT f.is_yarn), '{}') AS faeden \
                 FROM knoten k JOIN faeden f ON f.to_knoten = k.id \
                 WHERE NOT k.is_yarn AND k.decayed_at IS NULL \
                   AND f.decayed_at IS NULL AND (f.is_yarn OR f.expires_at > $1) \
                 GROUP BY k.id HAVING count(DISTINCT f.from_rolle) >= $2 \
                 ORDER BY k.id LIMIT $3",
                [
                    now.into(),
                    (self.cfg.yarn_min_roles as i64).into(),
                    self.batch().into(),
                ],
            ))
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get("", "id")?;
            let roles: Vec<Uuid> = row.try_get("", "roles")?;
            let faeden: Vec<Uuid> = row.try_get("", "faeden")?;
            items.push((id, roles, faeden));
        }
        let results: Vec<(Did, Vec<Did>)> = futures::stream::iter(items)
            .map(|(id, roles, faeden)| async move {
                let knoten = self
                    .execute::<Knoten>(
                        id,
                        &KnotenCommand::Verzwirnen {
                            roles,
                            min_roles: self.cfg.yarn_min_roles,
                        },
                        format!("garn:{id}"),
                        now,
                    )
                    .await;
                // An empty decision means the Knoten faded (a yarn Knoten has `garn:<id>` on its
                // chain: AlreadyDone); its threads are not twisted then.
                let threads = match knoten {
                    Did::Appended | Did::AlreadyDone => {
                        let mut done = Vec::with_capacity(faeden.len());
                        for faden in faeden {
                            done.push(self.twist_faden(faden, id, now).await);
                        }
                        done
                    }
                    Did::Nothing | Did::Failed => Vec::new(),
                };
                (knoten, threads)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for (knoten, threads) in results {
            count(knoten, &mut report.knoten_twisted, &mut report.failed);
            for t in threads {
                count(t, &mut report.faeden_twisted, &mut report.failed);
            }
        }
        Ok(())
    }

    /// Threads to a Knoten that is already yarn and that were active at some time since it
    /// became yarn (spun later, or missed by the scan that twisted it): `FadenVerzwirnt`.
    async fn twist_threads_of_yarn(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT f.id, f.to_knoten FROM faeden f JOIN knoten k ON k.id = f.to_knoten \
                 WHERE k.is_yarn AND NOT f.is_yarn AND f.decayed_at IS NULL \
                   AND f.expires_at > least(coalesce(k.yarn_at, $1), $1) \
                 ORDER BY f.expires_at LIMIT $2",
                [now.into(), self.batch().into()],
            ))
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get("", "id")?;
            let knoten: Uuid = row.try_get("", "to_knoten")?;
            items.push((id, knoten));
        }
        let results: Vec<Did> = futures::stream::iter(items)
            .map(|(id, knoten)| self.twist_faden(id, knoten, now))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for did in results {
            count(did, &mut report.faeden_twisted, &mut report.failed);
        }
        Ok(())
    }

    async fn twist_faden(&self, id: Uuid, knoten: Uuid, now: DateTime<Utc>) -> Did {
        self.execute::<Faden>(
            id,
            &FadenCommand::Verzwirnen { knoten },
            format!("garn:{id}"),
            now,
        )
        .await
    }

    async fn decay_knoten(&self, now: DateTime<Utc>, report: &mut JobsReport) -> Result<(), DbErr> {
        let (done, failed) = self
            .decay::<Knoten>("knoten", &KnotenCommand::Verfallen { now }, now)
            .await?;
        report.knoten_decayed += done;
        report.failed += failed;
        Ok(())
    }

    async fn decay_faeden(&self, now: DateTime<Utc>, report: &mut JobsReport) -> Result<(), DbErr> {
        let (done, failed) = self
            .decay::<Faden>("faeden", &FadenCommand::Verfallen { now }, now)
            .await?;
        report.faeden_decayed += done;
        report.failed += failed;
        Ok(())
    }

    /// Run `cmd` on every due row of `table`; returns (appended, failed).
    async fn decay<A: Aggregate>(
        &self,
        table: &'static str,
        cmd: &A::Command,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), DbErr>
    where
        A::Command: Sync,
    {
        let due = self.due(table, now).await?;
        let results: Vec<Did> = futures::stream::iter(due)
            .map(|(id, expires_at)| self.execute::<A>(id, cmd, verfall_msg_id(id, expires_at), now))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let (mut done, mut failed) = (0, 0);
        for did in results {
            count(did, &mut done, &mut failed);
        }
        Ok((done, failed))
    }

    /// Rows of `table` (`knoten` or `faeden`, never user input) that look due at `now`.
    async fn due(
        &self,
        table: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, DbErr> {
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT id, expires_at FROM {table} \
                     WHERE decayed_at IS NULL AND NOT is_yarn AND expires_at <= $1 \
                     ORDER BY expires_at LIMIT $2"
                ),
                [now.into(), self.batch().into()],
            ))
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "expires_at")?)))
            .collect()
    }

    fn batch(&self) -> i64 {
        i64::try_from(self.cfg.batch).unwrap_or(i64::MAX)
    }

    /// Run one timer command as the system; failures are logged here and reported as `Failed`.
    async fn execute<A: Aggregate>(
        &self,
        id: Uuid,
        cmd: &A::Command,
        msg_id: String,
        now: DateTime<Utc>,
    ) -> Did {
        let meta = Meta {
            actor: Actor::System,
            ip_hash: None,
            ua_hash: None,
            msg_id,
        };
        let msg_id = meta.msg_id.clone();
        match self
            .bus
            .execute::<A>(id, cmd, meta, now, bus::Expect::ExistingChain)
            .await
        {
            Ok(Executed {
                outcome: Outcome::AlreadyDone,
                ..
            }) => {
                debug!(%id, %msg_id, "already done");
                Did::AlreadyDone
            }
            Ok(Executed { events, .. }) if events.is_empty() => Did::Nothing,
            Ok(Executed { events, .. }) => {
                for e in &events {
                    metrics::counter!("wg_jobs_events_total", "type" => e.envelope.event_type.clone())
                        .increment(1);
                }
                debug!(%id, %msg_id, n = events.len(), "appended");
                Did::Appended
            }
            Err(ExecuteError::Refused(DomainError::NotFound(reason))) => {
                // A projection row without a chain: the stream lost it or belongs elsewhere.
                warn!(%id, %msg_id, aggregate = A::TYPE.as_str(), %reason, "timer for an aggregate without events");
                metrics::counter!("wg_jobs_failed_total").increment(1);
                Did::Failed
            }
            Err(e) => {
                error!(%id, %msg_id, aggregate = A::TYPE.as_str(), error = %e, "timer command failed");
                metrics::counter!("wg_jobs_failed_total").increment(1);
                Did::Failed
            }
        }
    }
}

/// `verborgen:<flag id>`: a flag hides its content on the map once.
pub fn verborgen_msg_id(flag: Uuid) -> String {
    format!("verborgen:{flag}")
}

/// `verfall:<id>:<expires_at in ms>`: one decay per expiry, so a thread that was renewed after
/// it decayed can decay again later under a new key.
pub fn verfall_msg_id(id: Uuid, expires_at: DateTime<Utc>) -> String {
    format!("verfall:{id}:{}", expires_at.timestamp_millis())
}

/// `entscheidung:<antrag id>`: an Antrag is decided once.
pub fn entscheidung_msg_id(antrag: Uuid) -> String {
    format!("entscheidung:{antrag}")
}

/// `ablauf:<from>:<valid_until in ms>`: one expiry per delegation (a later delegation of the
/// same role expires under its own key).
pub fn ablauf_msg_id(from: Uuid, valid_until: DateTime<Utc>) -> String {
    format!("ablauf:{from}:{}", valid_until.timestamp_millis())
}

/// The BIGINT range of the home cells (at `HOME_RES`) of the Weberei `weavery_h3`, or `None`
/// if it is not a cell at `WEAVERY_RES`.
fn home_range(weavery_h3: i64) -> Option<(i64, i64)> {
    let cell = h3o::CellIndex::try_from(u64::try_from(weavery_h3).ok()?).ok()?;
    if cell.resolution() != domain::geo::WEAVERY_RES {
        return None;
    }
    domain::geo::descendant_range(cell, domain::geo::HOME_RES)
}

fn count(did: Did, appended: &mut usize, failed: &mut usize) {
    match did {
        Did::Appended => *appended += 1,
        Did::Failed => *failed += 1,
        Did::AlreadyDone | Did::Nothing => {}
    }
}
