#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A chain outlives JetStream's max_age: the next command continues it from the archive.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, BusConfig};
use chrono::Utc;
use domain::events::KnotenTyp;
use domain::knoten::{CreateKnoten, Gestalten, Knoten, KnotenCommand};
use domain::{Actor, Ort, StreamDomain};
use tokio::sync::watch;
use uuid::Uuid;

use support::{Env, meta};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_older_than_the_stream_continues_from_the_archive() {
    let db = testkit::fresh_database().await;
    let mut cfg = BusConfig::new(Ort::new(&testkit::unique_ort()).unwrap(), 64 * 1024 * 1024);
    cfg.max_age = Duration::from_secs(2);
    cfg.duplicate_window = Duration::from_secs(1);
    let env = Env {
        bus: support::bus_with(cfg).await,
        db,
    };
    let (bus, db) = (&env.bus, &env.db);
    bus.set_archive(Arc::new(workers::ArchiveReader::new(db.conn.clone())));
    let (stop, rx) = watch::channel(false);
    let worker = workers::ProjectionWorker::new(
        bus.clone(),
        workers::Projector::new(db.conn.clone()),
        Default::default(),
    );
    let task = tokio::spawn(worker.run(rx));

    let id = Uuid::new_v4();
    let create = KnotenCommand::Create(CreateKnoten {
        id,
        title: "Garn, das bleibt".into(),
        typ: KnotenTyp::Ressource,
        content: None,
        lat: 50.98,
        lng: 11.32,
        now: Utc::now(),
        ttl: chrono::Duration::days(7),
        fine_res: domain::geo::FINE_RES,
    });
    bus.execute::<Knoten>(
        id,
        &create,
        meta(Actor::System, "c1".into()),
        Utc::now(),
        bus::Expect::NewChain,
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while env.count("SELECT count(*) FROM events_archive").await < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let JetStream drop it.
    while bus.stream_messages(StreamDomain::Social).await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline + Duration::from_secs(10),
            "max_age did not expire the event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A new process (no cached head) edits the design area: the chain comes from the archive.
    let fresh = Bus::connect(&testkit::nats_url(), bus.config().clone(), None)
        .await
        .unwrap();
    fresh.set_archive(Arc::new(workers::ArchiveReader::new(db.conn.clone())));
    let edit = KnotenCommand::Gestalten(Gestalten {
        expected_version: 0,
        content: serde_json::json!({"note": "still here"}),
        editor: Uuid::new_v4(),
        editor_may_edit: true,
    });
    let done = fresh
        .execute::<Knoten>(
            id,
            &edit,
            meta(Actor::System, "g1".into()),
            Utc::now(),
            bus::Expect::ExistingChain,
        )
        .await
        .unwrap();
    let first_hash: String = env
        .string(&format!(
            "SELECT hash FROM events_archive WHERE aggregate_id = '{id}'"
        ))
        .await;
    assert_eq!(
        done.events[0].envelope.prev_hash.as_deref(),
        Some(first_hash.as_str()),
        "linked to the archived head"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while env
        .count(&format!(
            "SELECT count(*) FROM knoten WHERE id = '{id}' AND design_version = 1"
        ))
        .await
        < 1
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the continued chain was not projected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        bus.subject_messages(StreamDomain::Dlq, &bus.config().ort.dead_subject())
            .await
            .unwrap(),
        0
    );
    stop.send(true).unwrap();
    task.await.unwrap();
    env.finish().await;
}
