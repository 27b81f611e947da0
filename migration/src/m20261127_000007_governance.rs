//! The Webrat (DESIGN.md §4 "Governance", "Peer verification", "Moderation"): decisions and
//! their audit, objections, delegation history, who is verified, admin and recently active,
//! and moderation flags with the content they hid.
//!
//! - `antraege` gains its decision: while open, `ja`/`nein`/`enthaltung` count the direct votes
//!   so far; once decided they hold the decided tally (direct and delegated voices) with
//!   `participation`, `active_roles` and `quorum_percent` as recorded in `AntragEntschieden`.
//! - `einsprueche`: one row per `EinspruchEingegangen` (id: UUIDv5 of the event id); `reason`
//!   is opened with the objector's data key and NULL once that key is destroyed.
//! - `stimmen` keeps direct votes only; `antrag_counted_votes` is the audit of a decision: every
//!   counted voice (`voice` = `delegated_from` or `rolle`) with the direct vote it counted with.
//! - `delegationen`: one row per `DelegationErstellt` (id: UUIDv5 of the event id); `ended_at`
//!   and `ended_reason` say when and why it stopped (revoked, expired, replaced). At most one
//!   row per delegator has no end.
//! - `rollen`: `last_active_at` (the latest event the role caused: the quorum's "active"),
//!   `is_admin` (`AdminActionExecuted grant_admin`), `verification_confirmations`
//!   (`VerifizierungBestaetigt`), `hidden_at` (moderation). `rolle_activity` is the
//!   projector's order-independent record behind `last_active_at`.
//! - `flags`: one row per Flag aggregate; `knoten`, `nachrichten`, `antraege`, `rollen` get
//!   `hidden_at`, set when a flag on them is resolved as hidden: queries leave hidden rows out,
//!   the archive keeps them.

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
ALTER TABLE antraege
    ADD COLUMN decided_at     timestamptz NULL,
    ADD COLUMN quorum_reached boolean NULL,
    ADD COLUMN ja             integer NOT NULL DEFAULT 0,
    ADD COLUMN nein           integer NOT NULL DEFAULT 0,
    ADD COLUMN enthaltung     integer NOT NULL DEFAULT 0,
    ADD COLUMN participation  integer NULL,
    ADD COLUMN active_roles   integer NULL,
    ADD COLUMN quorum_percent integer NULL,
    ADD COLUMN hidden_at      timestamptz NULL;
-- the decision timer scans only open Anträge, by deadline.
CREATE INDEX antraege_decision_deadline_open_idx ON antraege (decision_deadline)
    WHERE status = 'offen';

CREATE TABLE einsprueche (
    id         uuid PRIMARY KEY,
    antrag_id  uuid NOT NULL,
    by         uuid NOT NULL,
    -- NULL once the objector's data key is destroyed (or if it could not be opened).
    reason     text NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX einsprueche_antrag_id_created_at_idx ON einsprueche (antrag_id, created_at);
CREATE INDEX einsprueche_by_idx ON einsprueche (by);

CREATE TABLE antrag_counted_votes (
    antrag_id      uuid NOT NULL,
    -- whose voice: delegated_from if set, else rolle.
    voice          uuid NOT NULL,
    -- whose direct vote was used.
    rolle          uuid NOT NULL,
    vote           vote NOT NULL,
    -- the delegator this vote counted for.
    delegated_from uuid NULL,
    CONSTRAINT antrag_counted_votes_pkey PRIMARY KEY (antrag_id, voice),
    CONSTRAINT antrag_counted_votes_voice_check CHECK (voice = coalesce(delegated_from, rolle))
);

ALTER TABLE delegationen
    ADD COLUMN ended_at     timestamptz NULL,
    ADD COLUMN ended_reason text NULL,
    ADD CONSTRAINT delegationen_ended_reason_check
        CHECK (ended_reason IN ('revoked', 'expired', 'replaced')),
    ADD CONSTRAINT delegationen_ended_check CHECK ((ended_at IS NULL) = (ended_reason IS NULL));
-- rows from before (or after a down): revoked ones ended when revoked, the others when the
-- delegator's next delegation replaced them; a rebuild from the archive gives the exact history.
UPDATE delegationen d
   SET ended_at = coalesce(d.revoked_at, s.next_at),
       ended_reason = CASE WHEN d.revoked_at IS NOT NULL THEN 'revoked' ELSE 'replaced' END
  FROM (SELECT id, lead(created_at) OVER (PARTITION BY from_rolle ORDER BY created_at, id) AS next_at
          FROM delegationen) s
 WHERE s.id = d.id AND (d.revoked_at IS NOT NULL OR s.next_at IS NOT NULL);
-- one active outgoing delegation per role (DESIGN.md §4).
CREATE UNIQUE INDEX delegationen_from_rolle_active_idx ON delegationen (from_rolle)
    WHERE ended_at IS NULL;
-- the expiry timer scans only what has not ended.
CREATE INDEX delegationen_valid_until_active_idx ON delegationen (valid_until)
    WHERE ended_at IS NULL;

ALTER TABLE rollen
    ADD COLUMN last_active_at             timestamptz NULL,
    ADD COLUMN is_admin                   boolean NOT NULL DEFAULT false,
    ADD COLUMN verification_confirmations uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN hidden_at                  timestamptz NULL;

-- The projector's own record of each role's latest event, kept apart from rollen because the
-- streams are consumed independently: a role's vote (governance) may be projected before its
-- registration (social) created its row. rollen.last_active_at mirrors it.
CREATE TABLE rolle_activity (
    rolle_id       uuid PRIMARY KEY,
    last_active_at timestamptz NOT NULL
);

CREATE TABLE flags (
    id                uuid PRIMARY KEY,
    target_kind       text NOT NULL,
    target_id         uuid NOT NULL,
    -- NULL once the raiser's data key is destroyed (or if it could not be opened).
    reason            text NULL,
    raised_by         uuid NOT NULL,
    author_of_target  uuid NULL,
    created_at        timestamptz NOT NULL,
    outcome           text NULL,
    -- NULL once the resolver's data key is destroyed (or if it could not be opened).
    resolution_reason text NULL,
    resolved_by       uuid NULL,
    resolved_at       timestamptz NULL,
    CONSTRAINT flags_target_kind_check
        CHECK (target_kind IN ('knoten', 'nachricht', 'antrag', 'rolle')),
    CONSTRAINT flags_outcome_check CHECK (outcome IN ('kept', 'hidden'))
);
CREATE INDEX flags_target_kind_target_id_idx ON flags (target_kind, target_id);
-- the Webrat's open moderation threads.
CREATE INDEX flags_open_idx ON flags (created_at) WHERE outcome IS NULL;
CREATE INDEX flags_raised_by_idx ON flags (raised_by);
CREATE INDEX flags_resolved_by_idx ON flags (resolved_by) WHERE resolved_by IS NOT NULL;

ALTER TABLE knoten ADD COLUMN hidden_at timestamptz NULL;
ALTER TABLE nachrichten ADD COLUMN hidden_at timestamptz NULL;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE nachrichten DROP COLUMN IF EXISTS hidden_at;
                 ALTER TABLE knoten DROP COLUMN IF EXISTS hidden_at;
                 DROP TABLE IF EXISTS flags;
                 DROP TABLE IF EXISTS rolle_activity;
                 ALTER TABLE rollen
                     DROP COLUMN IF EXISTS hidden_at,
                     DROP COLUMN IF EXISTS verification_confirmations,
                     DROP COLUMN IF EXISTS is_admin,
                     DROP COLUMN IF EXISTS last_active_at;
                 DROP INDEX IF EXISTS delegationen_valid_until_active_idx;
                 DROP INDEX IF EXISTS delegationen_from_rolle_active_idx;
                 ALTER TABLE delegationen
                     DROP CONSTRAINT IF EXISTS delegationen_ended_check,
                     DROP CONSTRAINT IF EXISTS delegationen_ended_reason_check,
                     DROP COLUMN IF EXISTS ended_reason,
                     DROP COLUMN IF EXISTS ended_at;
                 DROP TABLE IF EXISTS antrag_counted_votes;
                 DROP TABLE IF EXISTS einsprueche;
                 DROP INDEX IF EXISTS antraege_decision_deadline_open_idx;
                 ALTER TABLE antraege
                     DROP COLUMN IF EXISTS hidden_at,
                     DROP COLUMN IF EXISTS quorum_percent,
                     DROP COLUMN IF EXISTS active_roles,
                     DROP COLUMN IF EXISTS participation,
                     DROP COLUMN IF EXISTS enthaltung,
                     DROP COLUMN IF EXISTS nein,
                     DROP COLUMN IF EXISTS ja,
                     DROP COLUMN IF EXISTS quorum_reached,
                     DROP COLUMN IF EXISTS decided_at;",
            )
            .await?;
        Ok(())
    }
}
