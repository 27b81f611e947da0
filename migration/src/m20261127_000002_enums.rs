//! PostgreSQL enum types. Their labels are part of the contract with `entity::sea_orm_active_enums` and the
//! projection worker's raw SQL: add labels with a new migration, never rename one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TYPE knoten_typ AS ENUM ('ideen', 'event', 'ressource');
                 CREATE TYPE faden_typ AS ENUM ('interesse', 'beitrag', 'mitarbeit');
                 CREATE TYPE antrag_status AS ENUM ('offen', 'angenommen', 'abgelehnt', 'quorum_verfehlt');
                 CREATE TYPE vote AS ENUM ('ja', 'nein', 'enthaltung');
                 CREATE TYPE zahlung_status AS ENUM ('initiated', 'pending', 'settled', 'failed', 'reversed');
                 CREATE TYPE zahlung_source AS ENUM ('sepa', 'stripe');",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TYPE IF EXISTS zahlung_source;
                 DROP TYPE IF EXISTS zahlung_status;
                 DROP TYPE IF EXISTS vote;
                 DROP TYPE IF EXISTS antrag_status;
                 DROP TYPE IF EXISTS faden_typ;
                 DROP TYPE IF EXISTS knoten_typ;",
            )
            .await?;
        Ok(())
    }
}
