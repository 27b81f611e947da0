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
