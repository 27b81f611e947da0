//! Moderation on the map (DESIGN.md §4 "Moderation"): a flag resolved as hidden on a Knoten
//! or a message gets `InhaltVerborgen` on the Knoten's chain (social stream) once per flag
//! (`verborgen:<flag id>`), so the live map and its cursors see the decision.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use domain::events::{FlagOutcome, FlagTarget, FlagTargetKind};
use domain::knoten::{Knoten, KnotenCommand};
use entity::{flags, nachrichten};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
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
        let flags: Vec<(Uuid, String, Uuid)> = flags::Entity::find()
            .select_only()
            .columns([
                flags::Column::Id,
                flags::Column::TargetKind,
                flags::Column::TargetId,
            ])
            .filter(flags::Column::Outcome.eq(FlagOutcome::Hidden.as_str()))
            .filter(flags::Column::MapHiddenAt.is_null())
            .filter(flags::Column::TargetKind.is_in([
                FlagTargetKind::Knoten.as_str(),
                FlagTargetKind::Nachricht.as_str(),
            ]))
            .order_by_asc(flags::Column::ResolvedAt)
            .limit(self.cfg.batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        // The Knoten of every flagged message, in one query.
        let messages: Vec<Uuid> = flags
            .iter()
            .filter(|(_, kind, _)| kind == FlagTargetKind::Nachricht.as_str())
            .map(|(_, _, id)| *id)
            .collect();
        let knoten_of: HashMap<Uuid, Uuid> = if messages.is_empty() {
            HashMap::new()
        } else {
            nachrichten::Entity::find()
                .select_only()
                .columns([nachrichten::Column::Id, nachrichten::Column::KnotenId])
                .filter(nachrichten::Column::Id.is_in(messages))
                .into_tuple::<(Uuid, Uuid)>()
                .all(&self.db)
                .await?
                .into_iter()
                .collect()
        };
        for (flag_id, kind, target_id) in flags {
            let Some(kind) = FlagTargetKind::parse(&kind) else {
                continue;
            };
            let knoten = match kind {
                FlagTargetKind::Knoten => target_id,
                _ => match knoten_of.get(&target_id) {
                    Some(knoten) => *knoten,
                    // A message that is not projected yet: next scan.
                    None => continue,
                },
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
