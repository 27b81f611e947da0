//! Projection tables: rollen, knoten, faeden, antraege, stimmen, delegationen, zahlungen.
//!
//! There are deliberately no foreign keys: these rows are projections of events that arrive on
//! different streams (social, governance, finance) and may be applied in any order or rebuilt
//! table by table; integrity is the event log's job, not the projection's.
//!
//! `point` columns are `geography(Point,4326)`; the entities leave them out and code reads or
//! writes them with raw SQL (`ST_X(point::geometry)`, `ST_SetSRID(ST_MakePoint(lon, lat), 4326)`).

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
CREATE TABLE rollen (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    h3          bigint NOT NULL,
    point       geography(Point, 4326) NULL,
    verified_by uuid[] NOT NULL DEFAULT '{}',
    verified_at timestamptz NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX rollen_h3_idx ON rollen (h3);
CREATE INDEX rollen_name_trgm_idx ON rollen USING gin (name gin_trgm_ops);

CREATE TABLE knoten (
    id             uuid PRIMARY KEY,
    typ            knoten_typ NOT NULL,
    title          text NOT NULL,
    content        jsonb NOT NULL DEFAULT '{}',
    point          geography(Point, 4326) NOT NULL,
    h3             bigint NOT NULL,
    created_by     uuid NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    is_yarn        boolean NOT NULL DEFAULT false,
    decayed_at     timestamptz NULL,
    design_version integer NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL
);
-- seed §5.2: a map tile is an h3 range scan, newest first.
CREATE INDEX knoten_h3_created_at_idx ON knoten (h3, created_at);
CREATE INDEX knoten_point_gist_idx ON knoten USING gist (point);
CREATE INDEX knoten_title_trgm_idx ON knoten USING gin (title gin_trgm_ops);
-- the decay timer scans only what can still decay.
CREATE INDEX knoten_expires_at_live_idx ON knoten (expires_at)
    WHERE NOT is_yarn AND decayed_at IS NULL;

CREATE TABLE faeden (
    id         uuid PRIMARY KEY,
    from_rolle uuid NOT NULL,
    to_knoten  uuid NOT NULL,
    typ        faden_typ NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    is_yarn    boolean NOT NULL DEFAULT false,
    decayed_at timestamptz NULL
);
CREATE INDEX faeden_to_knoten_expires_at_idx ON faeden (to_knoten, expires_at);
CREATE INDEX faeden_from_rolle_idx ON faeden (from_rolle);

CREATE TABLE antraege (
    id                uuid PRIMARY KEY,
    weavery_h3        bigint NOT NULL,
    title             text NOT NULL,
    content           jsonb NOT NULL DEFAULT '{}',
    status            antrag_status NOT NULL DEFAULT 'offen',
    created_by        uuid NULL,
    created_at        timestamptz NOT NULL,
    decision_deadline timestamptz NOT NULL
);
CREATE INDEX antraege_weavery_h3_status_idx ON antraege (weavery_h3, status);
CREATE INDEX antraege_title_trgm_idx ON antraege USING gin (title gin_trgm_ops);

CREATE TABLE stimmen (
    id             uuid PRIMARY KEY,
    antrag_id      uuid NOT NULL,
    rolle_id       uuid NOT NULL,
    vote           vote NOT NULL,
    delegated_from uuid NULL,
    created_at     timestamptz NOT NULL,
    -- seed: one vote per role and Antrag, also when the domain check is raced.
    CONSTRAINT stimmen_antrag_id_rolle_id_key UNIQUE (antrag_id, rolle_id)
);
CREATE INDEX stimmen_antrag_id_created_at_idx ON stimmen (antrag_id, created_at);

CREATE TABLE delegationen (
    id         uuid PRIMARY KEY,
    from_rolle uuid NOT NULL,
    to_rolle   uuid NOT NULL,
    valid_until timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz NULL
);
CREATE INDEX delegationen_to_rolle_valid_until_idx ON delegationen (to_rolle, valid_until);
CREATE INDEX delegationen_from_rolle_idx ON delegationen (from_rolle);

CREATE TABLE zahlungen (
    id           uuid PRIMARY KEY,
    rolle_id     uuid NOT NULL,
    knoten_id    uuid NULL,
    betrag_cents integer NOT NULL CHECK (betrag_cents > 0),
    status       zahlung_status NOT NULL,
    source       zahlung_source NOT NULL,
    reference    text NULL,
    created_at   timestamptz NOT NULL,
    settled_at   timestamptz NULL
);
CREATE INDEX zahlungen_status_idx ON zahlungen (status);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE IF EXISTS zahlungen;
                 DROP TABLE IF EXISTS delegationen;
                 DROP TABLE IF EXISTS stimmen;
                 DROP TABLE IF EXISTS antraege;
                 DROP TABLE IF EXISTS faeden;
                 DROP TABLE IF EXISTS knoten;
                 DROP TABLE IF EXISTS rollen;",
            )
            .await?;
        Ok(())
    }
}
