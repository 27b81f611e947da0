#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `weberei verify` through the real binary: every chain of the demo town checks out, and a
//! rewritten envelope in the archive is found and named, with a non-zero exit.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use testkit::up::{Options, Up};
use uuid::Uuid;

async fn archived(db: &DatabaseConnection) -> i64 {
    db.query_one(Statement::from_string(
        DbBackend::Postgres,
        "SELECT count(*) FROM events_archive",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_the_demo_town_and_names_a_rewritten_chain() {
    let up = Up::start(
        env!("CARGO_BIN_EXE_weberei"),
        Options {
            demo: true,
            ..Options::default()
        },
    )
    .await;
    let db = Database::connect(up.db_url()).await.unwrap();
    // The demo town is seeded at start; wait until the projection stops archiving new events.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = -1;
    loop {
        let n = archived(&db).await;
        if n > 30 && n == last {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} events archived");
        last = n;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    let ok = up.run(&["verify"]).await;
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains(", 0 broken chains"), "{stdout}");
    assert!(!stdout.starts_with("0 events"), "{stdout}");

    // An operator with database access rewrites one archived event (the archive refuses
    // UPDATE through its trigger, so the trigger is switched off first).
    let row = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            // The first event of a chain with more than one: its successor's prev_hash no
            // longer matches.
            "SELECT id, aggregate_id FROM events_archive e WHERE prev_hash IS NULL \
             AND (SELECT count(*) FROM events_archive x WHERE x.aggregate_id = e.aggregate_id) > 1 \
             LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap();
    let (event_id, aggregate): (String, Uuid) = (
        row.try_get("", "id").unwrap(),
        row.try_get("", "aggregate_id").unwrap(),
    );
    for sql in [
        "ALTER TABLE events_archive DISABLE TRIGGER USER".to_owned(),
        format!(
            "UPDATE events_archive SET envelope = jsonb_set(envelope, '{{ts}}', \
             '\"2020-01-01T00:00:00Z\"') WHERE id = '{event_id}'"
        ),
        "ALTER TABLE events_archive ENABLE TRIGGER USER".to_owned(),
    ] {
        db.execute(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap();
    }

    let bad = up.run(&["verify"]).await;
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "a rewritten event passed: {stdout}");
    assert!(
        stdout.contains(&format!("aggregate {aggregate}")),
        "{stdout}"
    );
    assert!(stdout.contains(", 1 broken chains"), "{stdout}");
}
