//! Moderation on the live map: `flags.map_hidden_at` is when the Knoten's chain recorded
//! `InhaltVerborgen` for a flag resolved as hidden (a Knoten or a message in its room). The jobs
//! worker appends that event for every such flag still without it; the partial index keeps its
//! scan to the few flags waiting.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
ALTER TABLE flags ADD COLUMN map_hidden_at timestamptz NULL;
CREATE INDEX flags_map_hide_pending_idx ON flags (resolved_at)
    WHERE outcome = 'hidden' AND map_hidden_at IS NULL
      AND target_kind IN ('knoten', 'nachricht');
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP INDEX IF EXISTS flags_map_hide_pending_idx;
                 ALTER TABLE flags DROP COLUMN IF EXISTS map_hidden_at;",
            )
            .await?;
        Ok(())
    }
}
