// Integration tests: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

async fn database_exists(name: &str) -> bool {
    let admin = Database::connect(testkit::admin_url()).await.unwrap();
    let row = admin
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    admin.close().await.unwrap();
    n == 1
}

#[tokio::test]
async fn fresh_database_is_migrated_and_drop_db_removes_it() {
    let db = testkit::fresh_database().await;
    assert!(db.name.starts_with("wg_test_"));
    assert!(db.url.ends_with(&db.name));
    assert!(database_exists(&db.name).await);

    let row = db
        .conn
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT to_regclass('knoten') IS NOT NULL AS migrated",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(row.try_get::<bool>("", "migrated").unwrap());

    let name = db.name.clone();
    db.drop_db().await;
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn fresh_empty_database_has_no_tables() {
    let db = testkit::fresh_empty_database().await;
    let row = db
        .conn
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
    db.drop_db().await;
}
