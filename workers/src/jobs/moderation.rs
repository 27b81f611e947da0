//! Moderation on the map (DESIGN.md §4 "Moderation"): a flag resolved as hidden on a Knoten
//! or a message gets `InhaltVerborgen` on the Knoten's chain (social stream) once per flag
//! (`verborgen:<flag id>`), so the live map and its cursors see the decision.

use chrono::{DateTime, Utc};
use domain::events::{FlagTarget, FlagTargetKind};
use domain::knoten::{Knoten, KnotenCommand};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use uuid::Uuid;

use super::{JobsReport, JobsWorker, count};

impl JobsWorker {
    /// Flags resolved as hidden on a Knoten or a message whose Knoten's chain does not record it
    /// yet: `InhaltVerborgen` there, so the live map (which follows the social stream) takes
    /// the content off. A hidden message belongs to its Knoten's chain.
    pub(super) async fn hide_on_the_map(
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
}

/// `verborgen:<flag id>`: a flag hides its content on the map once.
pub fn verborgen_msg_id(flag: Uuid) -> String {
    format!("verborgen:{flag}")
}
