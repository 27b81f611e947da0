//! The Webrat's timers (DESIGN.md §4 "Governance"): open Anträge past their deadline are
//! decided once (`entscheidung:<antrag id>`) on the facts at the deadline; delegations past
//! `valid_until` expire (`ablauf:<from>:<valid_until millis>`).

use chrono::{DateTime, Utc};
use domain::antrag::{Antrag, AntragCommand, Entscheiden};
use domain::delegation::{Delegation, DelegationCommand, delegation_id};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use tracing::error;
use uuid::Uuid;

use super::{Did, JobsReport, JobsWorker, PARALLEL, count};

impl JobsWorker {
    /// Open Anträge past their deadline: decided with the facts at the deadline.
    pub(super) async fn decide_antraege(
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
    pub(super) async fn expire_delegations(
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
