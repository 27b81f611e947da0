#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The demo town a newcomer sees after `./dev.sh up`: `weberei up` with the demo on (fresh
//! database, unique Ort, the machine's shared NATS/PostgreSQL/Redis) seeds it at start, its
//! projection and jobs workers project it and twist the garden into yarn. Then `weberei demo`
//! runs again on the same Ort and must add nothing.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use testkit::up::{Options, Up};
use uuid::Uuid;

const GARTEN: &str = "Gemeinschaftsgarten am Ilmufer";
const REPARATURCAFE: &str = "Reparaturcafé im Stadtteilzentrum";
const WAIT: Duration = Duration::from_secs(30);

async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// What the projection holds of the town, as one comparable snapshot.
async fn counts(db: &DatabaseConnection) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for (name, sql) in [
        ("knoten", "SELECT count(*) FROM knoten"),
        ("rollen", "SELECT count(*) FROM rollen"),
        (
            "verified",
            "SELECT count(*) FROM rollen WHERE verified_at IS NOT NULL",
        ),
        ("faeden", "SELECT count(*) FROM faeden"),
        ("yarn faeden", "SELECT count(*) FROM faeden WHERE is_yarn"),
        ("yarn knoten", "SELECT count(*) FROM knoten WHERE is_yarn"),
        ("nachrichten", "SELECT count(*) FROM nachrichten"),
        ("antraege", "SELECT count(*) FROM antraege"),
        ("stimmen", "SELECT count(*) FROM stimmen"),
        ("einsprueche", "SELECT count(*) FROM einsprueche"),
        ("delegationen", "SELECT count(*) FROM delegationen"),
        ("archived events", "SELECT count(*) FROM events_archive"),
        ("data keys", "SELECT count(*) FROM rolle_keys"),
    ] {
        out.push((name, scalar_i64(db, sql).await));
    }
    out
}

fn get(counts: &[(&'static str, i64)], name: &str) -> i64 {
    counts.iter().find(|(n, _)| *n == name).unwrap().1
}

/// Wait until the projection shows the whole town, the garden twisted into yarn.
async fn wait_for_town(db: &DatabaseConnection) -> Vec<(&'static str, i64)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = counts(db).await;
        let done = get(&c, "knoten") == 8
            && get(&c, "rollen") == 4
            && get(&c, "verified") == 3
            && get(&c, "faeden") == 8
            && get(&c, "yarn faeden") == 3
            && get(&c, "yarn knoten") == 1
            && get(&c, "nachrichten") == 7
            && get(&c, "antraege") == 1
            && get(&c, "stimmen") == 1
            && get(&c, "einsprueche") == 1
            && get(&c, "delegationen") == 1;
        if done {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "the demo town was not projected within {WAIT:?}: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn id_of(db: &DatabaseConnection, sql: &str) -> Uuid {
    let r = rows(db, sql).await;
    assert_eq!(r.len(), 1, "{sql}");
    r[0].try_get::<Uuid>("", "id").unwrap()
}

async fn graphql(up: &Up, query: &str, variables: serde_json::Value) -> serde_json::Value {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/graphql", up.url()))
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_seeds_the_demo_town_once_and_a_second_run_adds_nothing() {
    let up = Up::start(
        env!("CARGO_BIN_EXE_weberei"),
        Options {
            demo: true,
            ..Options::default()
        },
    )
    .await;
    let db = Database::connect(up.db_url()).await.unwrap();
    let before = wait_for_town(&db).await;

    // Roles: four, homed in four different cells; Anna, Ben and Carla verified, Deniz not.
    let r = rows(
        &db,
        "SELECT name, h3, verified_at IS NOT NULL AS verified FROM rollen ORDER BY name",
    )
    .await;
    let people: Vec<(String, bool)> = r
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "name").unwrap(),
                r.try_get::<bool>("", "verified").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        people,
        [
            ("Anna".to_owned(), true),
            ("Ben".to_owned(), true),
            ("Carla".to_owned(), true),
            ("Deniz".to_owned(), false),
        ]
    );
    let mut homes: Vec<i64> = r.iter().map(|r| r.try_get("", "h3").unwrap()).collect();
    homes.sort();
    homes.dedup();
    assert_eq!(homes.len(), 4, "every demo role has a home of its own");
    assert_eq!(
        scalar_i64(
            &db,
            "SELECT count(*) FROM rolle_keys k JOIN rollen r ON r.id = k.rolle_id WHERE k.key IS NOT NULL"
        )
        .await,
        4,
        "each role has its data key"
    );

    let anna = id_of(&db, "SELECT id FROM rollen WHERE name = 'Anna'").await;
    let ben = id_of(&db, "SELECT id FROM rollen WHERE name = 'Ben'").await;
    let carla = id_of(&db, "SELECT id FROM rollen WHERE name = 'Carla'").await;
    let deniz = id_of(&db, "SELECT id FROM rollen WHERE name = 'Deniz'").await;
    let garten = id_of(
        &db,
        &format!("SELECT id FROM knoten WHERE title = '{GARTEN}'"),
    )
    .await;
    let reparatur = id_of(
        &db,
        &format!("SELECT id FROM knoten WHERE title = '{REPARATURCAFE}'"),
    )
    .await;

    // Threads: Anna, Ben and Carla to the garden (yarn), the others from every role's home,
    // the non-yarn ones fading in 7 days.
    let r = rows(
        &db,
        &format!("SELECT from_rolle FROM faeden WHERE to_knoten = '{garten}' AND is_yarn ORDER BY from_rolle"),
    )
    .await;
    let mut garden: Vec<Uuid> = r
        .iter()
        .map(|r| r.try_get("", "from_rolle").unwrap())
        .collect();
    let mut expected = vec![anna, ben, carla];
    expected.sort();
    garden.sort();
    assert_eq!(garden, expected);
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM knoten WHERE id = '{garten}' AND is_yarn")
        )
        .await,
        1,
        "three distinct roles twisted the garden into yarn"
    );
    assert_eq!(
        scalar_i64(&db, "SELECT count(DISTINCT from_rolle) FROM faeden").await,
        4,
        "every demo role has a thread"
    );
    assert_eq!(
        scalar_i64(
            &db,
            "SELECT count(*) FROM faeden WHERE NOT is_yarn AND decayed_at IS NULL \
             AND expires_at BETWEEN now() + interval '6 days' AND now() + interval '7 days'"
        )
        .await,
        5,
        "the single threads live 7 days"
    );
    assert_eq!(
        scalar_i64(
            &db,
            "SELECT count(*) FROM knoten WHERE expires_at > now() + interval '360 days'"
        )
        .await,
        8,
        "the demo Knoten live a year"
    );

    // Messages: readable in two rooms, through the API as a visitor sees them.
    assert_eq!(
        scalar_i64(&db, "SELECT count(DISTINCT knoten_id) FROM nachrichten").await,
        2
    );
    assert_eq!(
        scalar_i64(&db, "SELECT count(*) FROM nachrichten WHERE text IS NULL").await,
        0
    );
    let room = r#"query Room($id: ID!) { room(knotenId: $id) { thread(first: 50) { edges { node { text author { name } } } } participants { name } } }"#;
    let body = graphql(&up, room, serde_json::json!({ "id": garten.to_string() })).await;
    let thread: Vec<(String, String)> = body["data"]["room"]["thread"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["author"]["name"].as_str().unwrap().to_owned(),
                e["node"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let authors: Vec<&str> = thread.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(authors, ["Anna", "Ben", "Carla", "Anna"], "{thread:?}");
    assert!(thread[0].1.starts_with("Hallo zusammen!"), "{thread:?}");
    assert_eq!(
        body["data"]["room"]["participants"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let body = graphql(
        &up,
        room,
        serde_json::json!({ "id": reparatur.to_string() }),
    )
    .await;
    let n = body["data"]["room"]["thread"]["edges"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 3, "{body}");

    // The Webrat: Anna's Antrag, open 14 days; Ben's JA; Carla's objection and her delegation
    // to Anna until the deadline.
    let r = rows(
        &db,
        "SELECT id, title, created_by, status::text AS status, \
         extract(epoch FROM decision_deadline - now())::float8 AS left_s, decision_deadline FROM antraege",
    )
    .await;
    let antrag: Uuid = r[0].try_get("", "id").unwrap();
    assert_eq!(
        r[0].try_get::<String>("", "title").unwrap(),
        "Mehr Bänke am Frauenplan"
    );
    assert_eq!(
        r[0].try_get::<Option<Uuid>>("", "created_by").unwrap(),
        Some(anna)
    );
    assert_eq!(r[0].try_get::<String>("", "status").unwrap(), "offen");
    let left = r[0].try_get::<f64>("", "left_s").unwrap();
    assert!(
        (13.9 * 86_400.0..=14.0 * 86_400.0).contains(&left),
        "deadline in 14 days, not {left} s"
    );
    let deadline: chrono::DateTime<chrono::Utc> = r[0].try_get("", "decision_deadline").unwrap();
    let r = rows(
        &db,
        "SELECT antrag_id, rolle_id, vote::text AS vote FROM stimmen",
    )
    .await;
    assert_eq!(r[0].try_get::<Uuid>("", "antrag_id").unwrap(), antrag);
    assert_eq!(r[0].try_get::<Uuid>("", "rolle_id").unwrap(), ben);
    assert_eq!(r[0].try_get::<String>("", "vote").unwrap(), "ja");
    let r = rows(&db, "SELECT antrag_id, by, reason FROM einsprueche").await;
    assert_eq!(r[0].try_get::<Uuid>("", "antrag_id").unwrap(), antrag);
    assert_eq!(r[0].try_get::<Uuid>("", "by").unwrap(), carla);
    let reason: Option<String> = r[0].try_get("", "reason").unwrap();
    assert!(
        reason.as_deref().is_some_and(|t| t.contains("Goethehaus")),
        "{reason:?}"
    );
    let r = rows(
        &db,
        "SELECT from_rolle, to_rolle, valid_until, ended_at FROM delegationen",
    )
    .await;
    assert_eq!(r[0].try_get::<Uuid>("", "from_rolle").unwrap(), carla);
    assert_eq!(r[0].try_get::<Uuid>("", "to_rolle").unwrap(), anna);
    assert_eq!(
        r[0].try_get::<chrono::DateTime<chrono::Utc>>("", "valid_until")
            .unwrap(),
        deadline
    );
    assert!(
        r[0].try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "ended_at")
            .unwrap()
            .is_none()
    );
    assert_ne!(deniz, anna);

    // A second run on the same Ort writes nothing and says so.
    let out = up.run(&["demo"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("demo town: 0 new"),
        "a second run must add nothing: {stdout}"
    );
    // Give the projection time to show anything the second run might have written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = counts(&db).await;
    assert_eq!(before, after);
    db.close().await.unwrap();
}
