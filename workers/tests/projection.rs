#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The projection worker against real NATS JetStream and PostgreSQL (each test: its own Ort
//! streams and its own database).

mod support;

use std::time::Duration;

use chrono::Utc;
use domain::events::KnotenTyp;
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};
use domain::{Actor, AggregateType, StreamDomain};
use uuid::Uuid;
use workers::Incoming;

use support::Env as World;
use support::meta;

async fn world() -> World {
    World::new().await
}

impl World {
    async fn create(&self, n: usize) -> Uuid {
        let id = Uuid::new_v4();
        let cmd = KnotenCommand::Create(CreateKnoten {
            id,
            title: format!("Knoten {n}"),
            typ: KnotenTyp::Event,
            content: Some(serde_json::json!({"n": n})),
            lat: 50.9 + n as f64 * 0.001,
            lng: 11.3,
            now: Utc::now(),
            ttl: chrono::Duration::days(7),
            fine_res: domain::geo::FINE_RES,
        });
        let meta = meta(Actor::System, format!("c-{id}"));
        self.bus
            .execute::<Knoten>(id, &cmd, meta, Utc::now(), bus::Expect::NewChain)
            .await
            .unwrap();
        id
    }

    /// Everything a rebuild must reproduce, as text.
    async fn state(&self) -> Vec<String> {
        self.lines(
            "SELECT format('%s|%s|%s|%s|%s|%s', id, typ, title, content, ST_AsText(point), h3) AS r FROM knoten \
             UNION ALL SELECT format('head|%s|%s|%s|%s', aggregate_id, last_hash, last_seq, event_count) FROM aggregate_heads \
             ORDER BY 1",
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knoten_events_become_rows_archive_entries_and_heads() {
    let w = world().await;
    let (stop, task) = w.start_worker();
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(w.create(n).await);
    }
    w.wait_for("SELECT count(*) FROM knoten", 25).await;
    assert_eq!(w.count("SELECT count(*) FROM events_archive").await, 25);
    assert_eq!(
        w.count("SELECT count(*) FROM events_archive_keys").await,
        25
    );
    assert_eq!(
        w.count("SELECT count(*) FROM aggregate_heads WHERE event_count = 1")
            .await,
        25
    );
    let sql = format!(
        "SELECT count(*) FROM knoten WHERE id = '{}' AND title = 'Knoten 3' AND typ = 'event' \
         AND abs(ST_Y(point::geometry) - 50.903) < 1e-9 AND content->>'n' = '3' AND expires_at > now() + interval '6 days'",
        ids[3]
    );
    assert_eq!(w.count(&sql).await, 1);
    stop.send(true).unwrap();
    task.await.unwrap();
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_link_or_garbage_is_dead_lettered_and_the_rest_still_projects() {
    let w = world().await;
    let (stop, task) = w.start_worker();
    let ort = w.bus.config().ort.clone();
    // A forged first event claiming a predecessor that never existed.
    let forged_id = Uuid::new_v4();
    let mut forged = serde_json::to_value(
        w.bus
            .history(AggregateType::Knoten, w.create(0).await)
            .await
            .unwrap()[0]
            .envelope
            .clone(),
    )
    .unwrap();
    let subject = ort.aggregate_subject(AggregateType::Knoten, forged_id);
    forged["aggregateId"] = forged_id.to_string().into();
    forged["subject"] = subject.clone().into();
    forged["prev_hash"] = "ab".repeat(32).into();
    forged["meta"]["msg_id"] = "forged".into();
    forged["id"] = ulid::Ulid::new().to_string().into();
    let js = w.bus.jetstream();
    js.publish(subject.clone(), serde_json::to_vec(&forged).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    js.publish(subject.clone(), "this is not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    js.publish(subject, r#"{"id": "nope"}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    for n in 1..6 {
        w.create(n).await;
    }
    w.wait_for("SELECT count(*) FROM knoten", 6).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.dead().await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "three dead letters expected, got {}",
            w.dead().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM knoten WHERE id = '{forged_id}'"
        ))
        .await,
        0
    );
    // The dead letters say why.
    let dlq = w
        .bus
        .jetstream()
        .get_stream(ort.stream_name(StreamDomain::Dlq))
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for seq in 1..=3 {
        let m = dlq.get_raw_message(seq).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["type"], "DLQEvent");
        reasons.push(v["payload"]["reason"].as_str().unwrap().to_owned());
    }
    reasons.sort();
    assert_eq!(reasons, ["bad_envelope", "hash_mismatch", "not_json"]);
    stop.send(true).unwrap();
    task.await.unwrap();
    w.finish().await;
}

#[tokio::test]
async fn applying_the_same_batch_twice_changes_nothing_the_second_time() {
    let w = world().await;
    for n in 0..5 {
        w.create(n).await;
    }
    let stream = w.bus.config().ort.stream_name(StreamDomain::Social);
    let js_stream = w.bus.jetstream().get_stream(&stream).await.unwrap();
    let mut batch = Vec::new();
    for seq in 1..=5 {
        let m = js_stream.get_raw_message(seq).await.unwrap();
        batch.push(Incoming {
            stream: stream.clone(),
            seq,
            subject: m.subject.to_string(),
            payload: m.payload.to_vec(),
            published: None,
        });
    }
    let projector = w.projector();
    let first = projector.apply_batch(&batch).await.unwrap();
    assert_eq!((first.applied, first.skipped, first.dead.len()), (5, 0, 0));
    let before = w.state().await;
    let second = projector.apply_batch(&batch).await.unwrap();
    assert_eq!(
        (second.applied, second.skipped, second.dead.len()),
        (0, 5, 0)
    );
    assert_eq!(w.state().await, before);
    assert_eq!(w.count("SELECT count(*) FROM events_archive").await, 5);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_batches_resumes_to_the_state_of_a_clean_rebuild() {
    let w = world().await;
    let (_stop, task) = w.start_worker();
    for n in 0..30 {
        w.create(n).await;
    }
    w.wait_for("SELECT count(*) FROM knoten", 30).await;
    // "Between batches": the last batch is acknowledged too (rows commit before the ack; a kill
    // in that gap is redelivered only after ack_wait, 60 s).
    let stream = w
        .bus
        .jetstream()
        .get_stream(w.bus.config().ort.stream_name(StreamDomain::Social))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer("projection").await.unwrap();
        let info = consumer.info().await.unwrap();
        if info.num_ack_pending == 0 && info.num_pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never acknowledged its last batch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let _ = task.await;
    // The aborted worker's last pull request stays open on the server until it expires
    // (`fetch_wait`, 250 ms); a message published into it now would wait out ack_wait (60 s),
    // like a crashed worker's in-flight batch. Start writing once no request is waiting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer("projection").await.unwrap();
        if consumer.info().await.unwrap().num_waiting == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the aborted worker's pull request never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 30..60 {
        w.create(n).await;
    }
    assert_eq!(
        w.count("SELECT count(*) FROM knoten").await,
        30,
        "nothing projects while the worker is down"
    );
    let (stop, task) = w.start_worker();
    w.wait_for("SELECT count(*) FROM knoten", 60).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let resumed = w.state().await;
    let applied = w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(applied, 60);
    assert_eq!(w.state().await, resumed);
    w.finish().await;
}
