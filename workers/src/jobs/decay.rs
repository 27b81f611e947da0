//! Decay and yarn of Knoten and Fäden (DESIGN.md §4 "Decay and yarn"): Knoten with active
//! threads from enough distinct roles are twisted (`garn:<id>`), threads to yarn Knoten too;
//! Knoten and Fäden past `expires_at` decay (`verfall:<id>:<expires_at millis>`). Yarn is
//! looked at before decay (see the scan order in [`super::JobsWorker::scan_once`]).
//!
//! The scans go through the `entity` crate, selecting only the columns they need (`knoten` has
//! a PostGIS column that must not be loaded). The one raw statement is the yarn scan of
//! [`JobsWorker::twist_knoten`]: it groups threads per Knoten with `array_agg(DISTINCT ..)`,
//! `FILTER` and `HAVING count(DISTINCT ..)`, which SeaORM's builder does not express.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::faden::{Faden, FadenCommand};
use domain::knoten::{Knoten, KnotenCommand};
use entity::{faeden, knoten};
use futures::StreamExt;
use sea_orm::prelude::DateTimeWithTimeZone;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::{Did, JobsReport, JobsWorker, PARALLEL, count};

impl JobsWorker {
    /// Knoten with active threads from enough distinct roles: `KnotenVerzwirnt`, then
    /// `FadenVerzwirnt` for each of those threads.
    pub(super) async fn twist_knoten(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
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
    pub(super) async fn twist_threads_of_yarn(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        // Active at some time since the Knoten became yarn: expires after
        // least(yarn_at, now), i.e. after now or after yarn_at.
        let items: Vec<(Uuid, Uuid)> = faeden::Entity::find()
            .select_only()
            .columns([faeden::Column::Id, faeden::Column::ToKnoten])
            .join(
                JoinType::InnerJoin,
                faeden::Entity::belongs_to(knoten::Entity)
                    .from(faeden::Column::ToKnoten)
                    .to(knoten::Column::Id)
                    .into(),
            )
            .filter(knoten::Column::IsYarn.eq(true))
            .filter(faeden::Column::IsYarn.eq(false))
            .filter(faeden::Column::DecayedAt.is_null())
            .filter(
                Condition::any().add(faeden::Column::ExpiresAt.gt(now)).add(
                    Expr::col((faeden::Entity, faeden::Column::ExpiresAt))
                        .gt(Expr::col((knoten::Entity, knoten::Column::YarnAt))),
                ),
            )
            .order_by_asc(faeden::Column::ExpiresAt)
            .limit(self.cfg.batch)
            .into_tuple()
            .all(&self.db)
            .await?;
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

    pub(super) async fn decay_knoten(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        let cmd = KnotenCommand::Verfallen { now };
        let (done, failed) = self.decay::<Knoten, knoten::Entity>(&cmd, now).await?;
        report.knoten_decayed += done;
        report.failed += failed;
        Ok(())
    }

    pub(super) async fn decay_faeden(
        &self,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<(), DbErr> {
        let cmd = FadenCommand::Verfallen { now };
        let (done, failed) = self.decay::<Faden, faeden::Entity>(&cmd, now).await?;
        report.faeden_decayed += done;
        report.failed += failed;
        Ok(())
    }

    /// Run `cmd` on every row of `E` (`knoten` or `faeden`: `id`, `expires_at`, `decayed_at`,
    /// `is_yarn`) that looks due at `now`, at most a batch; returns (appended, failed).
    async fn decay<A: Aggregate, E: EntityTrait>(
        &self,
        cmd: &A::Command,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), DbErr>
    where
        A::Command: Sync,
    {
        let column = |name: &str| {
            E::Column::from_str(name).map_err(|_| {
                DbErr::Custom(format!(
                    "{} has no column {name}",
                    E::default().table_name()
                ))
            })
        };
        let expires_at = column("expires_at")?;
        let due: Vec<(Uuid, DateTimeWithTimeZone)> = E::find()
            .select_only()
            .columns([column("id")?, expires_at])
            .filter(column("decayed_at")?.is_null())
            .filter(column("is_yarn")?.eq(false))
            .filter(expires_at.lte(now))
            .order_by_asc(expires_at)
            .limit(self.cfg.batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        let results: Vec<Did> = futures::stream::iter(due)
            .map(|(id, expires_at)| {
                let msg_id = verfall_msg_id(id, expires_at.with_timezone(&Utc));
                self.execute::<A>(id, cmd, msg_id, now)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let (mut done, mut failed) = (0, 0);
        for did in results {
            count(did, &mut done, &mut failed);
        }
        Ok((done, failed))
    }
}

/// `verfall:<id>:<expires_at in ms>`: one decay per expiry, so a thread that was renewed after
/// it decayed can decay again later under a new key.
pub fn verfall_msg_id(id: Uuid, expires_at: DateTime<Utc>) -> String {
    format!("verfall:{id}:{}", expires_at.timestamp_millis())
}
