//! PostGIS (geography points of Knoten and Rollen) and pg_trgm (fuzzy search on names/titles).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE EXTENSION IF NOT EXISTS postgis;
                 CREATE EXTENSION IF NOT EXISTS pg_trgm;",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Runs last, after our tables are gone. An extension that something outside this
        // schema still uses is left in place (with a NOTICE) instead of failing the rollback or
        // dropping someone else's objects with CASCADE.
        manager
            .get_connection()
            .execute_unprepared(
                "DO $$
                 DECLARE ext text;
                 BEGIN
                   FOREACH ext IN ARRAY ARRAY['pg_trgm', 'postgis'] LOOP
                     BEGIN
                       EXECUTE format('DROP EXTENSION IF EXISTS %I', ext);
                     EXCEPTION WHEN dependent_objects_still_exist THEN
                       RAISE NOTICE 'extension % kept: other objects depend on it', ext;
                     END;
                   END LOOP;
                 END $$;",
            )
            .await?;
        Ok(())
    }
}
