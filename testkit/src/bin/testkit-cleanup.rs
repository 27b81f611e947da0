//! Remove what crashed test runs left behind on the shared services: JetStream streams of test
//! Orte (`wg_t<10 chars>_*`) and `wg_test_*` databases. Run by `./dev.sh test` before the tests.
//!
//! It must never touch anything else: no other stream, no other database, no Redis key, and
//! never a server that is not the tests' own.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use futures::StreamExt;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

#[tokio::main]
async fn main() {
    let client = async_nats::connect(testkit::nats_url())
        .await
        .expect("NATS for tests");
    let js = async_nats::jetstream::new(client);
    let mut names = js.stream_names();
    let mut stale = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        if is_test_stream(&name) {
            stale.push(name);
        }
    }
    for name in &stale {
        let _ = js.delete_stream(name).await;
    }
    let db = Database::connect(testkit::admin_url())
        .await
        .expect("PostgreSQL for tests");
    let rows = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT datname FROM pg_database WHERE datname LIKE 'wg\\_test\\_%'".to_owned(),
        ))
        .await
        .expect("list databases");
    let mut dropped = 0;
    for row in rows {
        let name: String = row.try_get("", "datname").unwrap();
        if db
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .is_ok()
        {
            dropped += 1;
        }
    }
    println!(
        "testkit-cleanup: removed {} test streams and {dropped} test databases",
        stale.len()
    );
}

fn is_test_stream(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("wg_t") else {
        return false;
    };
    let Some((ort_tail, _domain)) = rest.split_once('_') else {
        return false;
    };
    ort_tail.len() == 10
        && ort_tail
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}
