#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The backbone against a real NATS JetStream and Redis: chains, dedup, optimistic
//! concurrency, and the Redis fallback across a nats-server outage.

use std::time::Duration;

use bus::{Bus, BusConfig, Fallback, Outcome};
use chrono::Utc;
use domain::aggregate::{Aggregate, NewEvent};
use domain::events::{EventType, KnotenTyp, Payload};
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};
use domain::{Actor, AggregateType, DomainError, Envelope, Meta, Ort, StreamDomain};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A test-only payload on a Knoten chain: each tick carries the count so far.
#[derive(Debug, Serialize, Deserialize)]
struct Tick {
    n: u64,
}

impl Payload for Tick {
    const TYPE: EventType = EventType::KnotenGestaltet;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

#[derive(Default, Clone)]
struct Counter {
    n: u64,
}

impl Aggregate for Counter {
    const TYPE: AggregateType = AggregateType::Knoten;
    type Command = ();
    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        self.n = event.decode::<Tick>()?.n;
        Ok(())
    }
    fn decide(&self, _: &()) -> Result<Vec<NewEvent>, DomainError> {
        Ok(vec![NewEvent::from_payload(&Tick { n: self.n + 1 })?])
    }
}

fn meta(msg_id: &str) -> Meta {
    Meta {
        actor: Actor::System,
        ip_hash: None,
        ua_hash: None,
        msg_id: msg_id.to_owned(),
    }
}

fn create(id: Uuid, title: &str) -> KnotenCommand {
    KnotenCommand::Create(CreateKnoten {
        id,
        title: title.to_owned(),
        typ: KnotenTyp::Ideen,
        content: None,
        lat: 50.98,
        lng: 11.32,
        now: Utc::now(),
        ttl: chrono::Duration::days(7),
        fine_res: domain::geo::FINE_RES,
    })
}

async fn bus_on(url: &str, ort: &str, with_fallback: bool) -> Bus {
    let ort = Ort::new(ort).unwrap();
    let fallback = if with_fallback {
        Some(
            Fallback::connect(&testkit::redis_url(), &ort)
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let mut cfg = BusConfig::new(ort, 64 * 1024 * 1024);
    cfg.publish_timeout = Duration::from_millis(700);
    let bus = Bus::connect(url, cfg, fallback).await.unwrap();
    bus.ensure_streams().await.unwrap();
    bus
}

fn raw_chain(stored: &[bus::Stored]) -> Vec<serde_json::Value> {
    stored
        .iter()
        .map(|s| serde_json::to_value(&s.envelope).unwrap())
        .collect()
}

#[tokio::test]
async fn streams_are_created_with_the_seed_policies_and_setup_is_idempotent() {
    let bus = bus_on(&testkit::nats_url(), &testkit::unique_ort(), false).await;
    bus.ensure_streams().await.unwrap();
    let ort = &bus.config().ort;
    for d in StreamDomain::ALL {
        let mut s = bus
            .jetstream()
            .get_stream(ort.stream_name(d))
            .await
            .unwrap();
        let c = s.info().await.unwrap().config.clone();
        assert_eq!(c.subjects, vec![ort.stream_filter(d)]);
        assert_eq!(c.max_age, Duration::from_secs(336 * 3600));
        assert_eq!(c.duplicate_window, Duration::from_secs(120));
        assert_eq!(c.storage, async_nats::jetstream::stream::StorageType::File);
        assert_eq!(c.num_replicas, 1);
        assert_eq!(
            c.discard,
            async_nats::jetstream::stream::DiscardPolicy::New,
            "a full stream never drops events"
        );
    }
    bus.delete_streams().await.unwrap();
}

#[tokio::test]
async fn the_same_msg_id_twice_gives_one_event() {
    let bus = bus_on(&testkit::nats_url(), &testkit::unique_ort(), false).await;
    let id = Uuid::new_v4();
    let first = bus
        .execute::<Knoten>(
            id,
            &create(id, "Garten"),
            meta("key-1"),
            Utc::now(),
            bus::Expect::NewChain,
        )
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::Appended);
    let again = bus
        .execute::<Knoten>(
            id,
            &create(id, "Garten"),
            meta("key-1"),
            Utc::now(),
            bus::Expect::NewChain,
        )
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyDone);
    assert_eq!(again.events[0].envelope.id, first.events[0].envelope.id);
    assert_eq!(again.events[0].hash, first.events[0].hash);
    assert_eq!(
        bus.history(AggregateType::Knoten, id).await.unwrap().len(),
        1
    );
    assert_eq!(bus.stream_messages(StreamDomain::Social).await.unwrap(), 1);
    // A different key on an existing Knoten is a domain conflict, not a second event.
    let err = bus
        .execute::<Knoten>(
            id,
            &create(id, "Garten"),
            meta("key-2"),
            Utc::now(),
            bus::Expect::NewChain,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, bus::ExecuteError::Refused(DomainError::Conflict(_))),
        "{err}"
    );
    bus.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_aggregate_leave_one_linear_chain() {
    let ort = testkit::unique_ort();
    let bus = bus_on(&testkit::nats_url(), &ort, false).await;
    // A second connection stands for a second API process: its cached heads go stale.
    let other = bus_on(&testkit::nats_url(), &ort, false).await;
    let id = Uuid::new_v4();
    let writer = |name: &'static str, bus: &Bus| {
        let bus = bus.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                bus.execute::<Counter>(
                    id,
                    &(),
                    meta(&format!("{name}-{i}")),
                    Utc::now(),
                    bus::Expect::ExistingChain,
                )
                .await
                .unwrap();
            }
        })
    };
    let (a, b) = (writer("a", &bus), writer("b", &other));
    a.await.unwrap();
    b.await.unwrap();
    let chain = bus.history(AggregateType::Knoten, id).await.unwrap();
    assert_eq!(chain.len(), 400);
    domain::verify_chain(&raw_chain(&chain)).expect("one linear chain");
    let counts: Vec<u64> = chain
        .iter()
        .map(|s| s.envelope.decode::<Tick>().unwrap().n)
        .collect();
    assert_eq!(
        counts,
        (1..=400).collect::<Vec<_>>(),
        "every writer saw the latest state"
    );
    bus.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_nats_outage_through_redis_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = testkit::OwnNats::start(dir.path());
    let ort = testkit::unique_ort();
    let bus = bus_on(&nats.url(), &ort, true).await;

    let mut ids = Vec::new();
    let mut write = |n: usize| {
        let id = Uuid::new_v4();
        ids.push(id);
        (
            id,
            create(id, &format!("Knoten {n}")),
            meta(&format!("k-{n}")),
        )
    };
    for n in 0..20 {
        let (id, cmd, m) = write(n);
        let r = bus
            .execute::<Knoten>(id, &cmd, m, Utc::now(), bus::Expect::NewChain)
            .await
            .unwrap();
        assert!(r.events[0].seq.is_some());
    }
    nats.stop();
    for n in 20..60 {
        let (id, cmd, m) = write(n);
        let r = bus
            .execute::<Knoten>(id, &cmd, m, Utc::now(), bus::Expect::NewChain)
            .await
            .unwrap();
        assert_eq!(r.events[0].seq, None, "event {n} waits in the fallback");
    }
    let fb = bus.fallback().unwrap();
    assert!(fb.is_active());
    assert_eq!(
        fb.pending().await.unwrap(),
        41,
        "40 events and one FallbackActivated"
    );
    // Retrying a command whose event waits in Redis is deduplicated there.
    let (_, m) = (ids[30], meta("k-30"));
    let again = bus
        .execute::<Knoten>(
            ids[30],
            &create(ids[30], "Knoten 30"),
            m,
            Utc::now(),
            bus::Expect::NewChain,
        )
        .await
        .unwrap();
    assert_eq!(again.events[0].seq, None);
    assert_eq!(fb.pending().await.unwrap(), 41);

    nats.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match bus.drain_fallback().await {
            Ok(_) if fb.pending().await.unwrap() == 0 => break,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "drain did not finish"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!fb.is_active());
    // Every Knoten is on JetStream exactly once, in the order written.
    let mut seqs = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let chain = bus.history(AggregateType::Knoten, *id).await.unwrap();
        assert_eq!(chain.len(), 1, "Knoten {n}");
        domain::verify_chain(&raw_chain(&chain)).unwrap();
        assert_eq!(chain[0].envelope.meta.msg_id, format!("k-{n}"));
        seqs.push(chain[0].seq.unwrap());
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "drained in order: {seqs:?}"
    );
    assert_eq!(bus.stream_messages(StreamDomain::Social).await.unwrap(), 60);
    assert_eq!(
        bus.stream_messages(StreamDomain::System).await.unwrap(),
        1,
        "one FallbackActivated"
    );
    // The drain is idempotent: running it again publishes nothing.
    assert_eq!(bus.drain_fallback().await.unwrap(), 0);
    assert_eq!(bus.stream_messages(StreamDomain::Social).await.unwrap(), 60);
}
