//! Migrations against a real PostgreSQL: up, the archive's guarantees, down to nothing, up again.

// Integration tests: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement, TransactionTrait,
};

const TABLES: &[&str] = &[
    "rollen",
    "knoten",
    "faeden",
    "antraege",
    "stimmen",
    "delegationen",
    "zahlungen",
    "events_archive",
    "events_archive_default",
    "events_archive_keys",
    "aggregate_heads",
    "nachrichten",
    "rolle_keys",
    "sessions",
    "einsprueche",
    "antrag_counted_votes",
    "flags",
    "rolle_activity",
];
const ENUMS: &[&str] = &[
    "knoten_typ",
    "faden_typ",
    "antrag_status",
    "vote",
    "zahlung_status",
    "zahlung_source",
];

async fn one(conn: &DatabaseConnection, sql: &str) -> QueryResult {
    conn.query_one(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

async fn count(conn: &DatabaseConnection, sql: &str) -> i64 {
    one(conn, sql).await.try_get::<i64>("", "n").unwrap()
}

async fn text(conn: &DatabaseConnection, sql: &str) -> String {
    one(conn, sql).await.try_get::<String>("", "t").unwrap()
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn tables_present(conn: &DatabaseConnection) -> i64 {
    count(
        conn,
        &format!(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
             WHERE s.nspname = 'public' AND c.relname IN ({})",
            quoted_list(TABLES)
        ),
    )
    .await
}

async fn enums_present(conn: &DatabaseConnection) -> i64 {
    count(
        conn,
        &format!(
            "SELECT count(*) AS n FROM pg_type WHERE typname IN ({})",
            quoted_list(ENUMS)
        ),
    )
    .await
}

fn archive_insert(id: &str, msg_id: &str, ts: &str) -> String {
    format!(
        "INSERT INTO events_archive_keys (id, msg_id, ts) VALUES ('{id}', '{msg_id}', {ts});
         INSERT INTO events_archive (id, msg_id, type, version, aggregate_id, aggregate_type,
             prev_hash, hash, ts, subject, stream, stream_seq, envelope)
         VALUES ('{id}', '{msg_id}', 'KnotenGeknuepft', 1, '0b0e5b0c-4d0f-4c1e-9a7e-0c9a3c1d2e3f',
             'knoten', NULL, 'abc', {ts}, 'wg.test.social.knoten.x', 'wg_test_social', 1, '{{}}')"
    )
}

#[tokio::test]
async fn migrations_go_up_keep_the_archive_append_only_go_down_to_nothing_and_up_again() {
    let db = testkit::fresh_empty_database().await;
    let conn = &db.conn;

    Migrator::up(conn, None).await.unwrap();
    assert_eq!(tables_present(conn).await, TABLES.len() as i64);
    assert_eq!(enums_present(conn).await, ENUMS.len() as i64);
    // The current month and the next 12 have their own partitions.
    assert_eq!(
        count(
            conn,
            "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'events_archive'::regclass"
        )
        .await,
        14
    );

    // An event of now lands in this month's partition.
    conn.execute_unprepared(&archive_insert("01A", "m-1", "now()"))
        .await
        .unwrap();
    let partition = text(
        conn,
        "SELECT tableoid::regclass::text AS t FROM events_archive WHERE id = '01A'",
    )
    .await;
    let expected = text(
        conn,
        "SELECT to_char(now() AT TIME ZONE 'UTC', '\"events_archive_y\"YYYY\"m\"MM') AS t",
    )
    .await;
    assert_eq!(partition, expected);

    // Append-only: no UPDATE, no DELETE, on the parent or directly on a partition.
    for sql in [
        "UPDATE events_archive SET hash = 'forged' WHERE id = '01A'".to_owned(),
        "DELETE FROM events_archive WHERE id = '01A'".to_owned(),
        format!("UPDATE {partition} SET hash = 'forged'"),
        "UPDATE events_archive_keys SET msg_id = 'other' WHERE id = '01A'".to_owned(),
    ] {
        let err = conn.execute_unprepared(&sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        text(
            conn,
            "SELECT hash AS t FROM events_archive WHERE id = '01A'"
        )
        .await,
        "abc"
    );

    // UNIQUE(id) and UNIQUE(msg_id) through the companion table, in one transaction with the
    // archive row: a duplicate leaves no second archive row behind.
    for (id, msg_id) in [("01A", "m-2"), ("01B", "m-1")] {
        let txn = conn.begin().await.unwrap();
        let err = txn
            .execute_unprepared(&archive_insert(id, msg_id, "now()"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("duplicate key"), "{err}");
        txn.rollback().await.unwrap();
    }
    assert_eq!(
        count(conn, "SELECT count(*) AS n FROM events_archive").await,
        1
    );

    // Ensuring partitions again is a no-op; an event outside them goes to the default partition
    // and moves into its month's partition once that is created.
    assert_eq!(
        count(
            conn,
            "SELECT wg_ensure_archive_partitions((now() AT TIME ZONE 'UTC')::date, 13)::bigint AS n"
        )
        .await,
        0
    );
    conn.execute_unprepared(&archive_insert("01C", "m-3", "'2099-03-15T12:00:00Z'"))
        .await
        .unwrap();
    assert_eq!(
        text(
            conn,
            "SELECT tableoid::regclass::text AS t FROM events_archive WHERE id = '01C'"
        )
        .await,
        "events_archive_default"
    );
    assert_eq!(
        count(
            conn,
            "SELECT wg_ensure_archive_partitions('2099-02-01', 3)::bigint AS n"
        )
        .await,
        3
    );
    assert_eq!(
        text(
            conn,
            "SELECT tableoid::regclass::text AS t FROM events_archive WHERE id = '01C'"
        )
        .await,
        "events_archive_y2099m03"
    );
    // ... and is still protected there.
    assert!(
        conn.execute_unprepared("DELETE FROM events_archive_y2099m03")
            .await
            .is_err()
    );

    // Down removes everything: tables, enums, functions, extensions.
    Migrator::down(conn, None).await.unwrap();
    assert_eq!(tables_present(conn).await, 0);
    assert_eq!(enums_present(conn).await, 0);
    assert_eq!(
        count(
            conn,
            "SELECT count(*) AS n FROM pg_proc WHERE proname LIKE 'wg\\_%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            conn,
            "SELECT count(*) AS n FROM pg_extension WHERE extname IN ('postgis', 'pg_trgm')"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            conn,
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'"
        )
        .await,
        0
    );

    // ... and up works again on the emptied database.
    Migrator::up(conn, None).await.unwrap();
    assert_eq!(tables_present(conn).await, TABLES.len() as i64);
    assert_eq!(enums_present(conn).await, ENUMS.len() as i64);

    db.drop_db().await;
}

#[tokio::test]
async fn a_second_vote_of_the_same_role_on_an_antrag_is_refused() {
    let db = testkit::fresh_database().await;
    let conn = &db.conn;
    let antrag = uuid::Uuid::new_v4();
    let rolle = uuid::Uuid::new_v4();
    let other = uuid::Uuid::new_v4();
    let vote = |rolle: uuid::Uuid, vote: &str| {
        format!(
            "INSERT INTO stimmen (id, antrag_id, rolle_id, vote, created_at)
             VALUES ('{}', '{antrag}', '{rolle}', '{vote}', now())",
            uuid::Uuid::new_v4()
        )
    };

    conn.execute_unprepared(&vote(rolle, "ja")).await.unwrap();
    let err = conn
        .execute_unprepared(&vote(rolle, "nein"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("stimmen_antrag_id_rolle_id_key"),
        "{err}"
    );
    conn.execute_unprepared(&vote(other, "enthaltung"))
        .await
        .unwrap();
    assert_eq!(count(conn, "SELECT count(*) AS n FROM stimmen").await, 2);

    db.drop_db().await;
}

/// How many migrations up to and including the social one (`m20261127_000006_social`).
const SOCIAL: u32 = 6;
/// ... and the governance one (`m20261127_000007_governance`).
const GOVERNANCE: u32 = 7;

/// Columns, indexes and constraints of the public schema, as sorted lines.
async fn schema_fingerprint(conn: &DatabaseConnection) -> Vec<String> {
    let rows = conn
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT format('column %s.%s %s %s %s', table_name, column_name, udt_name, is_nullable,
                           coalesce(column_default, '-')) AS line
               FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name NOT LIKE 'events_archive_y%'
             UNION ALL
             SELECT format('index %s %s', indexname, indexdef) FROM pg_indexes
              WHERE schemaname = 'public' AND tablename NOT LIKE 'events_archive_y%'
             UNION ALL
             SELECT format('constraint %s %s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
               FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
              WHERE n.nspname = 'public' AND c.conrelid <> 0
                AND c.conrelid::regclass::text NOT LIKE 'events_archive_y%'
             ORDER BY 1",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "line").unwrap())
        .collect()
}

#[tokio::test]
async fn the_social_migration_goes_down_to_the_previous_schema_and_up_to_the_same_one() {
    let db = testkit::fresh_empty_database().await;
    let conn = &db.conn;

    Migrator::up(conn, Some(SOCIAL - 1)).await.unwrap();
    let before = schema_fingerprint(conn).await;
    Migrator::up(conn, Some(1)).await.unwrap();
    let with_social = schema_fingerprint(conn).await;
    for expected in [
        "column knoten.yarn_at timestamptz YES -",
        "column faeden.renewed_at timestamptz YES -",
        "column faeden.yarn_at timestamptz YES -",
        "column rollen.deleted_at timestamptz YES -",
        "column nachrichten.text text YES -",
        "column nachrichten.mentions _uuid NO '{}'::uuid[]",
        "column rolle_keys.key bytea YES -",
        "column sessions.token_hash text NO -",
    ] {
        assert!(
            with_social.iter().any(|l| l == expected),
            "missing {expected:?} in {with_social:#?}"
        );
    }
    for index in [
        "faeden_to_knoten_live_idx",
        "faeden_expires_at_live_idx",
        "nachrichten_knoten_id_created_at_id_idx",
        "nachrichten_author_idx",
        "nachrichten_mentions_idx",
        "sessions_rolle_id_idx",
        "sessions_token_hash_key",
    ] {
        assert!(
            with_social
                .iter()
                .any(|l| l.starts_with(&format!("index {index} "))),
            "missing index {index}"
        );
    }

    // A data key is 32 bytes, and either present or destroyed.
    let rolle = uuid::Uuid::new_v4();
    for bad in [
        format!("INSERT INTO rolle_keys (rolle_id, key) VALUES ('{rolle}', '\\x0102')"),
        format!("INSERT INTO rolle_keys (rolle_id, key) VALUES ('{rolle}', NULL)"),
        format!(
            "INSERT INTO rolle_keys (rolle_id, key, destroyed_at)
             VALUES ('{rolle}', decode(repeat('ab', 32), 'hex'), now())"
        ),
    ] {
        assert!(conn.execute_unprepared(&bad).await.is_err(), "{bad}");
    }
    conn.execute_unprepared(&format!(
        "INSERT INTO rolle_keys (rolle_id, key) VALUES ('{rolle}', decode(repeat('ab', 32), 'hex'));
         UPDATE rolle_keys SET key = NULL, destroyed_at = now() WHERE rolle_id = '{rolle}'"
    ))
    .await
    .unwrap();

    // Down one step, with rows in the new tables, is exactly the schema before it; up again is
    // exactly the schema with it.
    Migrator::down(conn, Some(1)).await.unwrap();
    assert_eq!(schema_fingerprint(conn).await, before);
    Migrator::up(conn, Some(1)).await.unwrap();
    assert_eq!(schema_fingerprint(conn).await, with_social);

    db.drop_db().await;
}

#[tokio::test]
async fn the_governance_migration_goes_down_to_the_previous_schema_and_up_to_the_same_one() {
    let db = testkit::fresh_empty_database().await;
    let conn = &db.conn;
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(
        names[GOVERNANCE as usize - 1],
        "m20261127_000007_governance"
    );

    Migrator::up(conn, Some(GOVERNANCE - 1)).await.unwrap();
    let before = schema_fingerprint(conn).await;
    Migrator::up(conn, Some(1)).await.unwrap();
    let with_governance = schema_fingerprint(conn).await;
    for expected in [
        "column antraege.decided_at timestamptz YES -",
        "column antraege.quorum_reached bool YES -",
        "column antraege.ja int4 NO 0",
        "column antraege.nein int4 NO 0",
        "column antraege.enthaltung int4 NO 0",
        "column antraege.participation int4 YES -",
        "column antraege.active_roles int4 YES -",
        "column antraege.quorum_percent int4 YES -",
        "column antraege.hidden_at timestamptz YES -",
        "column einsprueche.reason text YES -",
        "column einsprueche.by uuid NO -",
        "column antrag_counted_votes.voice uuid NO -",
        "column antrag_counted_votes.vote vote NO -",
        "column antrag_counted_votes.delegated_from uuid YES -",
        "column delegationen.ended_at timestamptz YES -",
        "column delegationen.ended_reason text YES -",
        "column rollen.last_active_at timestamptz YES -",
        "column rollen.is_admin bool NO false",
        "column rollen.verification_confirmations _uuid NO '{}'::uuid[]",
        "column rollen.hidden_at timestamptz YES -",
        "column rolle_activity.last_active_at timestamptz NO -",
        "column flags.target_kind text NO -",
        "column flags.outcome text YES -",
        "column flags.resolved_at timestamptz YES -",
        "column knoten.hidden_at timestamptz YES -",
        "column nachrichten.hidden_at timestamptz YES -",
    ] {
        assert!(
            with_governance.iter().any(|l| l == expected),
            "missing {expected:?} in {with_governance:#?}"
        );
    }
    for index in [
        "antraege_decision_deadline_open_idx",
        "einsprueche_antrag_id_created_at_idx",
        "antrag_counted_votes_pkey",
        "delegationen_from_rolle_active_idx",
        "delegationen_valid_until_active_idx",
        "flags_target_kind_target_id_idx",
        "flags_open_idx",
    ] {
        assert!(
            with_governance
                .iter()
                .any(|l| l.starts_with(&format!("index {index} "))),
            "missing index {index}"
        );
    }

    // One active outgoing delegation per role; an end always has its reason.
    let from = uuid::Uuid::new_v4();
    let delegation = |ended: &str| {
        format!(
            "INSERT INTO delegationen (id, from_rolle, to_rolle, valid_until, created_at, ended_at, ended_reason)
             VALUES ('{}', '{from}', '{}', now() + interval '1 day', now(), {ended})",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4()
        )
    };
    conn.execute_unprepared(&delegation("NULL, NULL"))
        .await
        .unwrap();
    conn.execute_unprepared(&delegation("now(), 'replaced'"))
        .await
        .unwrap();
    for bad in [
        delegation("NULL, NULL"),
        delegation("now(), NULL"),
        delegation("now(), 'vanished'"),
    ] {
        assert!(conn.execute_unprepared(&bad).await.is_err(), "{bad}");
    }
    // A counted voice is its delegator's, or the voter's own.
    let (antrag, a, b) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    conn.execute_unprepared(&format!(
        "INSERT INTO antrag_counted_votes (antrag_id, voice, rolle, vote, delegated_from)
         VALUES ('{antrag}', '{a}', '{a}', 'ja', NULL), ('{antrag}', '{b}', '{a}', 'ja', '{b}')"
    ))
    .await
    .unwrap();
    assert!(
        conn.execute_unprepared(&format!(
            "INSERT INTO antrag_counted_votes (antrag_id, voice, rolle, vote, delegated_from)
             VALUES ('{antrag}', '{}', '{a}', 'nein', NULL)",
            uuid::Uuid::new_v4()
        ))
        .await
        .is_err()
    );
    for bad in [
        "INSERT INTO flags (id, target_kind, target_id, raised_by, created_at)
         VALUES (gen_random_uuid(), 'faden', gen_random_uuid(), gen_random_uuid(), now())",
        "INSERT INTO flags (id, target_kind, target_id, raised_by, created_at, outcome)
         VALUES (gen_random_uuid(), 'knoten', gen_random_uuid(), gen_random_uuid(), now(), 'deleted')",
    ] {
        assert!(conn.execute_unprepared(bad).await.is_err(), "{bad}");
    }

    // Down one step, with rows in the new tables and columns, is exactly the schema before it;
    // up again is exactly the schema with it.
    Migrator::down(conn, Some(1)).await.unwrap();
    assert_eq!(schema_fingerprint(conn).await, before);
    Migrator::up(conn, Some(1)).await.unwrap();
    assert_eq!(schema_fingerprint(conn).await, with_governance);

    db.drop_db().await;
}
