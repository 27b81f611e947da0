//! api: the viewport query `knoten(bbox)` (with each Knoten's live Fäden, batched by the
//! dataloader) over HTTP against `weberei up`, open loop at a fixed request rate, with a town of
//! 10,000 Knoten and 30,000 Fäden loaded. Latency counts from the moment a request was due, so
//! queueing shows.
//!
//! Baseline (same run, same rate, same boxes): the two SQL statements the resolver runs (the
//! Knoten in the box, then their Fäden), sent straight to PostgreSQL from the bench.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use domain::events::FadenTyp;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;
use uuid::Uuid;

use crate::env::{self, BenchDb, Weberei};
use crate::report::{Row, Target, p50_95_99};
use crate::town::{self, TownBuilder};

pub struct Opts {
    pub knoten: usize,
    pub faeden: usize,
    pub rate: f64,
    pub duration: Duration,
}

const QUERY: &str = "query($b: BboxInput!) { knoten(bbox: $b, first: 100) { edges { node { id title lat lng faeden { id typ expiresAt } } } } }";

pub async fn run(opts: &Opts) -> Result<Vec<Row>> {
    let ort = env::unique_ort();
    let db = BenchDb::create(8).await?;
    let result = run_with(opts, &ort, &db).await;
    if let Ok(bus) = env::bus(&ort, 64 * 1024 * 1024).await {
        let _ = bus.delete_streams().await;
    }
    db.drop_db().await?;
    result
}

async fn run_with(opts: &Opts, ort: &str, db: &BenchDb) -> Result<Vec<Row>> {
    let t = Instant::now();
    load_town(opts, ort, &db.conn).await?;
    eprintln!(
        "api: {} Knoten and {} Fäden loaded in {:.1} s",
        opts.knoten,
        opts.faeden,
        t.elapsed().as_secs_f64()
    );
    db.conn.execute_unprepared("ANALYZE").await?;
    let t = Instant::now();
    let server = Weberei::up(ort, &db.url, 1500).await?;
    eprintln!("api: weberei up in {:.1} s", t.elapsed().as_secs_f64());
    let result = measure(opts, &server, &db.url).await;
    let t = Instant::now();
    server.stop().await?;
    eprintln!("api: weberei stopped in {:.1} s", t.elapsed().as_secs_f64());
    result
}

/// The town goes in through the projector (archive, heads and projections, batches of 500):
/// events sealed by the same domain code as the command path.
async fn load_town(opts: &Opts, ort: &str, db: &DatabaseConnection) -> Result<()> {
    let mut town = TownBuilder::new(domain::Ort::new(ort)?);
    let projector = workers::Projector::new(db.clone());
    let mut ids = Vec::with_capacity(opts.knoten);
    let mut batch = Vec::with_capacity(500);
    for i in 0..opts.knoten as u64 {
        let (id, m) = town.knoten(i)?;
        ids.push(id);
        batch.push(m);
        if batch.len() == 500 {
            apply(&projector, &mut batch).await?;
        }
    }
    apply(&projector, &mut batch).await?;
    let roles: Vec<Uuid> = (0..2000).map(|_| Uuid::new_v4()).collect();
    let typs = [FadenTyp::Interesse, FadenTyp::Beitrag, FadenTyp::Mitarbeit];
    let k = ids.len().max(1);
    for j in 0..opts.faeden {
        // (Knoten, typ) is unique for j < 3 × Knoten, so no two Fäden share an id.
        let knoten = ids[j % k];
        let typ = typs[(j / k) % 3];
        batch.push(town.faden(roles[j % roles.len()], knoten, typ)?);
        if batch.len() == 500 {
            apply(&projector, &mut batch).await?;
        }
    }
    apply(&projector, &mut batch).await
}

async fn apply(projector: &workers::Projector, batch: &mut Vec<workers::Incoming>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let report = projector.apply_batch(batch).await?;
    if let Some(d) = report.dead.first() {
        return Err(anyhow!(
            "{} dead letters while loading: {}",
            report.dead.len(),
            d.detail
        ));
    }
    batch.clear();
    Ok(())
}

/// A street-level viewport (about 1.4 km × 1.3 km) somewhere in the town.
fn bbox(i: u64) -> (f64, f64, f64, f64) {
    let (lat, lng) = town::spot(i.wrapping_mul(7919) + 17);
    (lng - 0.01, lat - 0.006, lng + 0.01, lat + 0.006)
}

async fn measure(opts: &Opts, server: &Weberei, db_url: &str) -> Result<Vec<Row>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(256)
        .build()?;
    let url = format!("{}/graphql", server.http());
    let returned = Arc::new(AtomicU64::new(0));
    let request = {
        let (http, url, returned) = (http.clone(), url.clone(), returned.clone());
        move |i: u64| {
            let (http, url, returned) = (http.clone(), url.clone(), returned.clone());
            async move {
                let (w, s, e, n) = bbox(i);
                let body = json!({ "query": QUERY, "variables": { "b": { "west": w, "south": s, "east": e, "north": n } } });
                let resp = http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
                if !status.is_success() || v.get("errors").is_some() {
                    return Err(format!("{status}: {v}"));
                }
                let n = v["data"]["knoten"]["edges"].as_array().map_or(0, Vec::len);
                returned.fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
        }
    };
    // Warm up: connections, plans, the allocator.
    for i in 0..20 {
        let _ = request(1_000_000 + i).await;
    }
    let (mut http_lat, http_err) = open_loop(opts.rate, opts.duration, request).await;
    let sent = http_lat.len() as u64 + http_err;
    let per_request = returned.load(Ordering::Relaxed) as f64 / sent.max(1) as f64;

    let pool = env::connect(db_url, 16).await?;
    let sql = {
        let pool = pool.clone();
        move |i: u64| {
            let pool = pool.clone();
            async move { direct_sql(&pool, i).await.map_err(|e| e.to_string()) }
        }
    };
    for i in 0..20 {
        let _ = sql(1_000_000 + i).await;
    }
    let (mut sql_lat, sql_err) = open_loop(opts.rate, opts.duration, sql).await;
    pool.close().await?;

    let (h50, h95, h99) = p50_95_99(&mut http_lat);
    let (s50, s95, s99) = p50_95_99(&mut sql_lat);
    let s = "api";
    let rate = opts.rate;
    Ok(vec![
        Row::new(s, format!("knoten(bbox) at {rate:.0} req/s, p50"), h50, "ms").baseline(s50),
        Row::new(s, format!("knoten(bbox) at {rate:.0} req/s, p95"), h95, "ms")
            .baseline(s95)
            .target(Target::at_most(Some(250.0), Some(25.0)))
            .note(format!(
                "{} Knoten / {} Fäden loaded; {per_request:.0} Knoten (with their Fäden) per answer; baseline = the resolver's two SQL statements sent straight to PostgreSQL at the same rate",
                opts.knoten, opts.faeden
            )),
        Row::new(s, format!("knoten(bbox) at {rate:.0} req/s, p99"), h99, "ms").baseline(s99),
        Row::new(s, "errors", http_err as f64, "requests")
            .baseline(sql_err as f64)
            .target(Target::at_most(Some(0.0), Some(0.0)))
            .note(format!("of {sent} requests")),
    ])
}

async fn direct_sql(db: &DatabaseConnection, i: u64) -> Result<()> {
    let (w, s, e, n) = bbox(i);
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, typ::text AS typ, title, content, ST_Y(point::geometry) AS lat, ST_X(point::geometry) AS lng, h3, \
             created_at, expires_at, is_yarn, decayed_at, design_version, created_by FROM knoten \
             WHERE decayed_at IS NULL AND point && ST_MakeEnvelope($1, $2, $3, $4, 4326)::geography \
             AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT 101",
            [
                w.into(),
                s.into(),
                e.into(),
                n.into(),
                chrono::DateTime::<chrono::Utc>::UNIX_EPOCH.into(),
                Uuid::nil().into(),
            ],
        ))
        .await?;
    let ids: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r.try_get::<Uuid>("", "id").ok())
        .collect();
    db.query_all(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id, typ::text AS typ, from_rolle, to_knoten, created_at, renewed_at, expires_at, is_yarn \
         FROM faeden WHERE to_knoten = ANY($1) AND decayed_at IS NULL ORDER BY created_at, id",
        [ids.into()],
    ))
    .await?;
    Ok(())
}

/// Fire `call(i)` at `rate` per second for `duration`, each on schedule whether or not earlier
/// ones finished. Returns the latencies in ms (from when each was due) and the error count.
async fn open_loop<F, Fut>(rate: f64, duration: Duration, call: F) -> (Vec<f64>, u64)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let started = tokio::time::Instant::now();
    let total = (rate * duration.as_secs_f64()) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let fut = call(i);
        tasks.spawn(async move {
            let r = fut.await;
            (due.elapsed().as_secs_f64() * 1000.0, r)
        });
    }
    let mut lat = Vec::with_capacity(total as usize);
    let mut errors = 0u64;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((ms, Ok(()))) => lat.push(ms),
            Ok((_, Err(e))) => {
                if errors < 3 {
                    eprintln!("api: request failed: {e}");
                }
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    (lat, errors)
}
