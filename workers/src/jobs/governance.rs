//! The Webrat's timers (DESIGN.md §4 "Governance"): open Anträge past their deadline are
//! decided once (`entscheidung:<antrag id>`) on the facts at the deadline; delegations past
//! `valid_until` expire (`ablauf:<from>:<valid_until millis>`).
//!
//! Every read goes through the `entity` crate (`rollen` has a PostGIS column, so only the
//! columns needed are selected).

use chrono::{DateTime, Utc};
use domain::antrag::{Antrag, AntragCommand, Entscheiden};
use domain::delegation::{Delegation, DelegationCommand, delegation_id};
use entity::sea_orm_active_enums::AntragStatus;
use entity::{antraege, delegationen, rollen};
use futures::StreamExt;
use sea_orm::prelude::DateTimeWithTimeZone;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect};
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
        let rows: Vec<(Uuid, i64, DateTimeWithTimeZone)> = antraege::Entity::find()
            .select_only()
            .columns([
                antraege::Column::Id,
                antraege::Column::WeaveryH3,
                antraege::Column::DecisionDeadline,
            ])
            .filter(antraege::Column::Status.eq(AntragStatus::Offen))
            .filter(antraege::Column::DecisionDeadline.lte(now))
            .order_by_asc(antraege::Column::DecisionDeadline)
            .limit(self.cfg.batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        for (id, weberei, deadline) in rows {
            let deadline = deadline.with_timezone(&Utc);
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
        let n: Option<i64> = rollen::Entity::find()
            .select_only()
            .column_as(Expr::col((rollen::Entity, rollen::Column::Id)).count(), "n")
            .filter(rollen::Column::H3.between(lo, hi))
            .filter(verified_and_not_deleted_at(deadline))
            .filter(rollen::Column::LastActiveAt.gte(since))
            .into_tuple()
            .one(&self.db)
            .await?;
        let n = n.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `(from, to)` of the delegations active at `deadline` whose delegators were entitled to
    /// vote then (verified, not deleted).
    async fn delegations_at(&self, deadline: DateTime<Utc>) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
        delegationen::Entity::find()
            .select_only()
            .columns([
                delegationen::Column::FromRolle,
                delegationen::Column::ToRolle,
            ])
            .join(
                JoinType::InnerJoin,
                delegationen::Entity::belongs_to(rollen::Entity)
                    .from(delegationen::Column::FromRolle)
                    .to(rollen::Column::Id)
                    .into(),
            )
            .filter(delegationen::Column::CreatedAt.lt(deadline))
            .filter(delegationen::Column::ValidUntil.gt(deadline))
            .filter(
                Condition::any()
                    .add(delegationen::Column::EndedAt.is_null())
                    .add(delegationen::Column::EndedAt.gt(deadline)),
            )
            .filter(verified_and_not_deleted_at(deadline))
            .order_by_asc(delegationen::Column::FromRolle)
            .into_tuple()
            .all(&self.db)
            .await
    }

    /// Delegations not ended whose `valid_until` has passed: `DelegationAbgelaufen`.
    pub(super) async fn expire_delegations(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        let due: Vec<(Uuid, DateTimeWithTimeZone)> = delegationen::Entity::find()
            .select_only()
            .columns([
                delegationen::Column::FromRolle,
                delegationen::Column::ValidUntil,
            ])
            .filter(delegationen::Column::EndedAt.is_null())
            .filter(delegationen::Column::ValidUntil.lte(now))
            .order_by_asc(delegationen::Column::ValidUntil)
            .limit(self.cfg.batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        let cmd = &DelegationCommand::Ablaufen { now };
        let results: Vec<Did> = futures::stream::iter(due)
            .map(|(from, valid_until)| {
                self.execute::<Delegation>(
                    delegation_id(from),
                    cmd,
                    ablauf_msg_id(from, valid_until.with_timezone(&Utc)),
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

/// Roles verified at `at` and not deleted at or before it (on `rollen`).
fn verified_and_not_deleted_at(at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(rollen::Column::VerifiedAt.is_not_null())
        .add(rollen::Column::VerifiedAt.lte(at))
        .add(
            Condition::any()
                .add(rollen::Column::DeletedAt.is_null())
                .add(rollen::Column::DeletedAt.gt(at)),
        )
}
