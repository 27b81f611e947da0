//! replay: one aggregate's 500 events read back and their chain verified (`verify_chain`),
//! from `events_archive` and from JetStream, p50/p95 over many runs; and a full
//! `Projector::rebuild_from_archive` in events/s.
//!
//! Baselines (same run): the same archive rows fetched as bytes only (no parse, no hashing),
//! and a plain paged read of the whole archive in the order the rebuild reads it.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use bus::Bus;
use chrono::Utc;
use domain::events::FadenTyp;
use domain::knoten::Knoten;
use domain::{AggregateType, StreamDomain};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::env::{self, BenchDb};
use crate::report::{Row, Target, percentile};
use crate::town::{self, TownBuilder};

pub struct Opts {
    pub chain: u32,
    pub runs: usize,
    pub rebuild_events: usize,
}

pub async fn run(opts: &Opts) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    {
        let ort = env::unique_ort();
        let bus = env::bus(&ort, 64 * 1024 * 1024).await?;
        let db = BenchDb::create(4).await?;
        let r = chain_replay(opts, &bus, &db.conn).await;
        let _ = bus.delete_streams().await;
        db.drop_db().await?;
        rows.extend(r?);
    }
    {
        let db = BenchDb::create(4).await?;
        let r = rebuild(opts, &db.conn).await;
        db.drop_db().await?;
        rows.extend(r?);
    }
    Ok(rows)
}

async fn chain_replay(opts: &Opts, bus: &Bus, db: &DatabaseConnection) -> Result<Vec<Row>> {
    // One Knoten with 499 design changes, through the real command path, then projected.
    let id = Uuid::new_v4();
    let now = Utc::now();
    bus.execute::<Knoten>(
        id,
        &town::create_knoten(id, 1, now),
        town::meta(format!("bench:r:{id}:0")),
        now,
        bus::Expect::NewChain,
    )
    .await?;
    for n in 1..opts.chain {
        let now = Utc::now();
        bus.execute::<Knoten>(
            id,
            &town::design(n - 1, u64::from(n)),
            town::meta(format!("bench:r:{id}:{n}")),
            now,
            bus::Expect::ExistingChain,
        )
        .await?;
    }
    let (stop, stop_rx) = watch::channel(false);
    let worker = workers::ProjectionWorker::new(
        bus.clone(),
        workers::Projector::new(db.clone()),
        Default::default(),
    );
    let worker = tokio::spawn(worker.run(stop_rx));
    let deadline = Instant::now() + Duration::from_secs(60);
    while archived(db, id).await? < i64::from(opts.chain) {
        if Instant::now() > deadline {
            return Err(anyhow!("the chain was not archived within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let _ = worker.await;

    let mut from_archive = Vec::with_capacity(opts.runs);
    let mut bytes_only = Vec::with_capacity(opts.runs);
    let mut from_stream = Vec::with_capacity(opts.runs);
    for _ in 0..opts.runs {
        let t = Instant::now();
        let texts = archive_texts(db, id).await?;
        bytes_only.push(ms(t));

        let t = Instant::now();
        let texts2 = archive_texts(db, id).await?;
        verify(&texts2)?;
        from_archive.push(ms(t));

        let t = Instant::now();
        let raw = stream_payloads(bus, id).await?;
        verify(&raw)?;
        from_stream.push(ms(t));
        if texts.len() != opts.chain as usize || raw.len() != opts.chain as usize {
            return Err(anyhow!(
                "read {} / {} events, wanted {}",
                texts.len(),
                raw.len(),
                opts.chain
            ));
        }
    }
    for v in [&mut from_archive, &mut bytes_only, &mut from_stream] {
        v.sort_by(f64::total_cmp);
    }
    let s = "replay";
    let n = opts.chain;
    let runs = opts.runs;
    let target = Target::at_most(Some(300.0), Some(10.0));
    Ok(vec![
        Row::new(
            s,
            format!("{n} events from events_archive + verify_chain, p50"),
            percentile(&from_archive, 50.0),
            "ms",
        )
        .baseline(percentile(&bytes_only, 50.0)),
        Row::new(
            s,
            format!("{n} events from events_archive + verify_chain, p95"),
            percentile(&from_archive, 95.0),
            "ms",
        )
        .baseline(percentile(&bytes_only, 95.0))
        .target(target)
        .note(format!(
            "{runs} runs; baseline = the same rows fetched as text only (no parse, no hash)"
        )),
        Row::new(
            s,
            format!("{n} events from JetStream + verify_chain, p50"),
            percentile(&from_stream, 50.0),
            "ms",
        )
        .baseline(percentile(&bytes_only, 50.0)),
        Row::new(
            s,
            format!("{n} events from JetStream + verify_chain, p95"),
            percentile(&from_stream, 95.0),
            "ms",
        )
        .baseline(percentile(&bytes_only, 95.0))
        .target(target)
        .note(
            "ordered consumer filtered on the aggregate's subject, as bus::Bus::history reads it",
        ),
    ])
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

async fn archived(db: &DatabaseConnection, id: Uuid) -> Result<i64> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM events_archive WHERE aggregate_id = $1",
            [id.into()],
        ))
        .await?
        .ok_or_else(|| anyhow!("no count"))?;
    Ok(row.try_get("", "n")?)
}

async fn archive_texts(db: &DatabaseConnection, id: Uuid) -> Result<Vec<String>> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT envelope::text AS envelope FROM events_archive WHERE aggregate_id = $1 ORDER BY stream, stream_seq",
            [id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "envelope").map_err(Into::into))
        .collect()
}

async fn stream_payloads(bus: &Bus, id: Uuid) -> Result<Vec<String>> {
    let subject = bus
        .config()
        .ort
        .aggregate_subject(AggregateType::Knoten, id);
    let stream = bus
        .jetstream()
        .get_stream(bus.config().ort.stream_name(StreamDomain::Social))
        .await?;
    let last = stream
        .get_last_raw_message_by_subject(&subject)
        .await?
        .sequence;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await? {
        let m = m?;
        let seq = m.info().map_err(|e| anyhow!("{e}"))?.stream_sequence;
        out.push(String::from_utf8(m.payload.to_vec())?);
        if seq >= last {
            break;
        }
    }
    Ok(out)
}

fn verify(texts: &[String]) -> Result<()> {
    let values: Vec<Value> = texts
        .iter()
        .map(|t| serde_json::from_str(t))
        .collect::<Result<_, _>>()?;
    domain::verify_chain(&values).map_err(|b| anyhow!("chain broken: {}", b.reason))?;
    Ok(())
}

/// Fill the archive through the projector (a town's Knoten and Fäden plus some long chains),
/// then rebuild every projection from it.
async fn rebuild(opts: &Opts, db: &DatabaseConnection) -> Result<Vec<Row>> {
    let ort = domain::Ort::new(&env::unique_ort())?;
    let mut town = TownBuilder::new(ort);
    let projector = workers::Projector::new(db.clone());
    let roles: Vec<Uuid> = (0..500).map(|_| Uuid::new_v4()).collect();
    let mut knoten = Vec::new();
    let mut batch = Vec::with_capacity(500);
    let mut total = 0usize;
    let mut load_secs = 0.0;
    let mut i = 0u64;
    while total < opts.rebuild_events {
        if i % 200 == 199 {
            let (_, chain) = town.long_chain(i, 9)?;
            total += chain.len();
            batch.extend(chain);
        } else if i % 4 == 3 && !knoten.is_empty() {
            let k = knoten[(i as usize * 7) % knoten.len()];
            let r = roles[i as usize % roles.len()];
            batch.push(town.faden(r, k, FadenTyp::Beitrag)?);
            total += 1;
        } else {
            let (id, m) = town.knoten(i)?;
            knoten.push(id);
            batch.push(m);
            total += 1;
        }
        i += 1;
        if batch.len() >= 500 || total >= opts.rebuild_events {
            let t = Instant::now();
            let report = projector.apply_batch(&batch).await?;
            load_secs += t.elapsed().as_secs_f64();
            if !report.dead.is_empty() {
                return Err(anyhow!(
                    "{} dead letters while loading: {}",
                    report.dead.len(),
                    report.dead[0].detail
                ));
            }
            batch.clear();
        }
    }

    // Baseline: read the whole archive the way the rebuild does (one cursor in stream order,
    // pages of 2000), without applying anything.
    let t = Instant::now();
    let mut read = 0u64;
    {
        use sea_orm::TransactionTrait;
        let txn = db.begin().await?;
        txn.execute_unprepared(
            "DECLARE bench_scan NO SCROLL CURSOR FOR \
             SELECT stream, stream_seq, subject, envelope::text AS envelope FROM events_archive \
             ORDER BY stream, stream_seq",
        )
        .await?;
        loop {
            let rows = txn
                .query_all(Statement::from_string(
                    DbBackend::Postgres,
                    "FETCH 2000 FROM bench_scan",
                ))
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let _: String = r.try_get("", "envelope")?;
            }
            read += rows.len() as u64;
        }
        txn.rollback().await?;
    }
    let scan = read as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let applied = projector.rebuild_from_archive().await?;
    let rebuild = applied as f64 / t.elapsed().as_secs_f64();
    let load = total as f64 / load_secs;
    let s = "replay";
    Ok(vec![
        Row::new(
            s,
            format!("rebuild_from_archive ({applied} events)"),
            rebuild,
            "events/s",
        )
        .baseline(scan)
        .target(Target::at_least(None, Some(20_000.0)))
        .note("baseline = reading the same archive through the same cursor without applying it"),
        Row::new(
            s,
            "projector apply_batch (500 per batch, archive + projections)",
            load,
            "events/s",
        )
        .baseline(scan)
        .note("how the archive was filled: the projector's own rate without NATS"),
    ])
}
