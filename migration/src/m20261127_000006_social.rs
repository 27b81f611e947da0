//! The social side (DESIGN.md §4 "Decay and yarn", "Rooms", "Privacy"): when Knoten and Fäden
//! were twisted into yarn and when a Faden was last renewed, deleted roles, the messages of the
//! rooms (`nachrichten`), the per-role data keys (`rolle_keys`) and login sessions (`sessions`).
//!
//! `rolle_keys` and `sessions` are not projections: the API writes them (a key at register, a
//! session at login), so a rebuild from the archive never truncates them. Above all a destroyed
//! key must stay destroyed, or a rebuild would make a deleted person's data readable again; the
//! projector only ever NULLs a key (on `UserDeleted`), never writes one. Keys never go into
//! events.

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
ALTER TABLE knoten ADD COLUMN yarn_at timestamptz NULL;

ALTER TABLE faeden
    ADD COLUMN renewed_at timestamptz NULL,
    ADD COLUMN yarn_at    timestamptz NULL;
-- a room's participants and the yarn rule look at the live threads of one Knoten.
CREATE INDEX faeden_to_knoten_live_idx ON faeden (to_knoten) WHERE decayed_at IS NULL;
-- the decay timer scans only what can still decay.
CREATE INDEX faeden_expires_at_live_idx ON faeden (expires_at)
    WHERE NOT is_yarn AND decayed_at IS NULL;

ALTER TABLE rollen ADD COLUMN deleted_at timestamptz NULL;

CREATE TABLE nachrichten (
    id         uuid PRIMARY KEY,
    knoten_id  uuid NOT NULL,
    author     uuid NOT NULL,
    -- NULL once the author's data key is destroyed (or if it could not be opened).
    text       text NULL,
    mentions   uuid[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    event_id   text NOT NULL
);
-- a room's thread is a keyset page over (created_at, id), newest last.
CREATE INDEX nachrichten_knoten_id_created_at_id_idx ON nachrichten (knoten_id, created_at, id);
CREATE INDEX nachrichten_author_idx ON nachrichten (author);
CREATE INDEX nachrichten_mentions_idx ON nachrichten USING gin (mentions);

CREATE TABLE rolle_keys (
    rolle_id     uuid PRIMARY KEY,
    key          bytea NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz NULL,
    CONSTRAINT rolle_keys_key_length_check CHECK (key IS NULL OR octet_length(key) = 32),
    -- a key is either there or destroyed, never both, never neither.
    CONSTRAINT rolle_keys_destroyed_check CHECK ((key IS NULL) = (destroyed_at IS NOT NULL))
);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    rolle_id     uuid NOT NULL,
    token_hash   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    revoked_at   timestamptz NULL,
    ua_hash      text NULL,
    label        text NULL,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX sessions_rolle_id_idx ON sessions (rolle_id);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE IF EXISTS sessions;
                 DROP TABLE IF EXISTS rolle_keys;
                 DROP TABLE IF EXISTS nachrichten;
                 ALTER TABLE rollen DROP COLUMN IF EXISTS deleted_at;
                 DROP INDEX IF EXISTS faeden_expires_at_live_idx;
                 DROP INDEX IF EXISTS faeden_to_knoten_live_idx;
                 ALTER TABLE faeden DROP COLUMN IF EXISTS yarn_at, DROP COLUMN IF EXISTS renewed_at;
                 ALTER TABLE knoten DROP COLUMN IF EXISTS yarn_at;",
            )
            .await?;
        Ok(())
    }
}
