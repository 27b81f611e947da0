#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A quick local figure (not the benchmark harness): N Knoten created through the real command
//! path (`Bus::execute`: JCS hash, msg-id dedup, expected sequence) with C in flight, while the
//! projection worker runs; prints published/s and published+projected/s.
//!
//! `cargo run --release -p workers --example quick_ingest -- 5000 64` (shared local services).

use std::sync::Arc;
use std::time::Instant;

use bus::{Bus, BusConfig};
use chrono::Utc;
use domain::events::KnotenTyp;
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};
use domain::{Actor, AggregateType, Meta, Ort};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(5000);
    let in_flight = args.get(1).copied().unwrap_or(64);
    let ort = Ort::new(&testkit::unique_ort()).unwrap();
    let bus = Bus::connect(
        &testkit::nats_url(),
        BusConfig::new(ort, 256 * 1024 * 1024),
        None,
    )
    .await
    .unwrap();
    bus.ensure_streams().await.unwrap();
    let db = testkit::fresh_database().await;
    let (stop, rx) = watch::channel(false);
    let worker = workers::ProjectionWorker::new(
        bus.clone(),
        workers::Projector::new(db.conn.clone()),
        Default::default(),
    );
    let task = tokio::spawn(worker.run(rx));

    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(in_flight));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let bus = bus.clone();
        handles.push(tokio::spawn(async move {
            let id = Uuid::new_v4();
            let cmd = KnotenCommand::Create(CreateKnoten {
                id,
                title: format!("Knoten {i}"),
                typ: KnotenTyp::Ideen,
                content: None,
                lat: 50.0 + (i % 1000) as f64 * 0.001,
                lng: 11.0 + (i / 1000) as f64 * 0.001,
                now: Utc::now(),
                ttl: chrono::Duration::days(7),
                fine_res: domain::geo::FINE_RES,
            });
            let meta = Meta {
                actor: Actor::System,
                ip_hash: None,
                ua_hash: None,
                msg_id: format!("q-{id}"),
            };
            bus.execute::<Knoten>(AggregateType::Knoten, id, &cmd, meta, Utc::now(), true)
                .await
                .unwrap();
            drop(permit);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let published = start.elapsed();
    loop {
        let row = db
            .conn
            .query_one(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) FROM knoten".to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get_by_index::<i64>(0).unwrap() as usize >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let projected = start.elapsed();
    println!(
        "{n} events, {in_flight} in flight: published in {:.2} s ({:.0} events/s); published and projected in {:.2} s ({:.0} events/s)",
        published.as_secs_f64(),
        n as f64 / published.as_secs_f64(),
        projected.as_secs_f64(),
        n as f64 / projected.as_secs_f64()
    );
    stop.send(true).unwrap();
    task.await.unwrap();
    bus.delete_streams().await.unwrap();
    db.drop_db().await;
}
