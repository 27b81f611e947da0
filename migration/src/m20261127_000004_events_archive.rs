//! `events_archive`: every processed event, append-only, range-partitioned by month on `ts`.
//!
//! Projections can be rebuilt from here after JetStream's retention (14 days) has dropped an
//! event, so rows are never changed or removed: a trigger refuses UPDATE and DELETE. TRUNCATE
//! stays possible for whoever owns the table (tests, a deliberate reset); it is not an accident
//! a worker can make row by row.
//!
//! Uniqueness: PostgreSQL can only enforce a UNIQUE constraint on a partitioned table if it
//! contains the partition key (`ts`), so `UNIQUE(id)` and `UNIQUE(msg_id)` cannot live on
//! `events_archive` itself. The companion table `events_archive_keys` holds them instead: the
//! projection worker inserts the key row and the archive row IN THE SAME TRANSACTION (key row
//! first, so a duplicate fails before the archive row is written). This is what keeps a retried
//! command from having a second effect after NATS' 2-minute duplicate window.
//!
//! Partitions: `events_archive_yYYYYmMM` for each UTC month, created by
//! `wg_ensure_archive_partitions(from_month date, months integer)`; the migration creates the
//! current month and the next 12, the jobs worker is expected to call it again regularly.
//! `events_archive_default` catches anything outside them so no event is ever refused; when a
//! month's partition is created later, its rows are moved out of the default partition.

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
CREATE TABLE events_archive (
    id             text NOT NULL,
    msg_id         text NOT NULL,
    type           text NOT NULL,
    version        integer NOT NULL,
    aggregate_id   uuid NOT NULL,
    aggregate_type text NOT NULL,
    prev_hash      text NULL,
    hash           text NOT NULL,
    ts             timestamptz NOT NULL,
    subject        text NOT NULL,
    stream         text NOT NULL,
    stream_seq     bigint NOT NULL,
    envelope       jsonb NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);

CREATE INDEX events_archive_aggregate_id_ts_idx ON events_archive (aggregate_id, ts);
CREATE INDEX events_archive_type_ts_idx ON events_archive (type, ts);

CREATE TABLE events_archive_default PARTITION OF events_archive DEFAULT;

-- UNIQUE(id) / UNIQUE(msg_id) for events_archive, which cannot carry them itself (see the
-- module doc): the worker inserts here in the same transaction as the archive row.
CREATE TABLE events_archive_keys (
    id     text PRIMARY KEY,
    msg_id text NOT NULL UNIQUE,
    ts     timestamptz NOT NULL
);

CREATE FUNCTION wg_archive_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    -- The only sanctioned exception: wg_ensure_archive_partitions moving rows from the
    -- default partition into a newly created month partition, inside one transaction.
    IF current_setting('weberei.archive_partition_move', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$fn$;

-- Row-level triggers on a partitioned table are cloned onto every partition (PG >= 13).
CREATE TRIGGER events_archive_append_only
    BEFORE UPDATE OR DELETE ON events_archive
    FOR EACH ROW EXECUTE FUNCTION wg_archive_append_only();
CREATE TRIGGER events_archive_keys_append_only
    BEFORE UPDATE OR DELETE ON events_archive_keys
    FOR EACH ROW EXECUTE FUNCTION wg_archive_append_only();

-- Creates the monthly partitions [from_month, from_month + months) that do not exist yet and
-- returns how many it created. Safe to call repeatedly and from several processes: callers are
-- serialised by an advisory lock, and a racing CREATE is caught anyway.
CREATE FUNCTION wg_ensure_archive_partitions(from_month date, months integer)
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    first_month date := date_trunc('month', from_month)::date;
    m           date;
    part        text;
    lower_ts    timestamptz;
    upper_ts    timestamptz;
    created     integer := 0;
BEGIN
    IF months IS NULL OR months < 0 THEN
        RAISE EXCEPTION 'months must be >= 0, got %', months;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('wg_ensure_archive_partitions'));

    FOR i IN 0 .. months - 1 LOOP
        m := (first_month + make_interval(months => i))::date;
        part := format('events_archive_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        -- Months are UTC months, whatever the session's TimeZone.
        lower_ts := m::timestamp AT TIME ZONE 'UTC';
        upper_ts := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';

        CONTINUE WHEN to_regclass(format('%I', part)) IS NOT NULL;

        BEGIN
            IF EXISTS (SELECT 1 FROM events_archive_default
                        WHERE ts >= lower_ts AND ts < upper_ts) THEN
                -- Rows of this month already sit in the default partition, which would make
                -- CREATE ... PARTITION OF fail: move them into the new partition.
                EXECUTE format('CREATE TABLE %I (LIKE events_archive INCLUDING DEFAULTS)', part);
                EXECUTE format(
                    'INSERT INTO %I SELECT * FROM events_archive_default WHERE ts >= $1 AND ts < $2',
                    part) USING lower_ts, upper_ts;
                PERFORM set_config('weberei.archive_partition_move', 'on', true);
                DELETE FROM events_archive_default WHERE ts >= lower_ts AND ts < upper_ts;
                PERFORM set_config('weberei.archive_partition_move', 'off', true);
                EXECUTE format(
                    'ALTER TABLE events_archive ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                    part, lower_ts, upper_ts);
            ELSE
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF events_archive FOR VALUES FROM (%L) TO (%L)',
                    part, lower_ts, upper_ts);
            END IF;
            created := created + 1;
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            -- Someone else created it between our check and our CREATE: that is the goal.
            NULL;
        END;
    END LOOP;
    RETURN created;
END
$fn$;

SELECT wg_ensure_archive_partitions((now() AT TIME ZONE 'UTC')::date, 13);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping the partitioned parent drops every partition (and their cloned triggers).
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE IF EXISTS events_archive;
                 DROP TABLE IF EXISTS events_archive_keys;
                 DROP FUNCTION IF EXISTS wg_ensure_archive_partitions(date, integer);
                 DROP FUNCTION IF EXISTS wg_archive_append_only();",
            )
            .await?;
        Ok(())
    }
}
