//! What the workers' integration tests share: a bus on its own Ort with its streams, a fresh
//! database, SQL probes, waiting for the projection, keys and sealed texts, clocks.
//!
//! Each test file is its own crate and includes this module with `mod support;`; a file uses
//! only a part of it, hence `dead_code` is allowed here. `chains` builds events as envelopes
//! on their chains (projection tests), `timers` is the world of the jobs worker's tests,
//! `social` and `governance` the worlds of the projection tests of those stream domains.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

/// `impl Deref<Target = Env>` for a test world with an `env` field, so tests write `w.count(..)`
/// and `w.bus`.
macro_rules! deref_env {
    ($world:ty) => {
        impl std::ops::Deref for $world {
            type Target = super::Env;
            fn deref(&self) -> &Self::Target {
                &self.env
            }
        }
    };
}

pub mod chains;
pub mod governance;
pub mod social;
pub mod timers;

use std::time::Duration;

use bus::{Bus, BusConfig};
use chrono::{DateTime, Utc};
use domain::{Actor, AggregateType, Envelope, Meta, Ort, StreamDomain, privacy};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use tokio::sync::watch;
use uuid::Uuid;
use workers::{ProjectionConfig, ProjectionWorker, Projector};

/// A home in Jena (Weberei, home and fine cells are taken from it).
pub const HOME: (f64, f64) = (50.9795, 11.3235);

/// `Meta` as the API or a timer writes it, without ip/ua hashes.
pub fn meta(actor: Actor, msg_id: String) -> Meta {
    Meta {
        actor,
        ip_hash: None,
        ua_hash: None,
        msg_id,
    }
}

/// Now, at the millisecond precision events carry.
pub fn now() -> DateTime<Utc> {
    domain::envelope::truncate_millis(Utc::now())
}

pub fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

pub fn hours(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}

pub fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(16) {
        chunk.copy_from_slice(&Uuid::new_v4().as_bytes()[..chunk.len()]);
    }
    out
}

/// A role's 32-byte data key.
pub fn random_key() -> [u8; 32] {
    random_bytes()
}

/// `text` sealed for `rolle` with `key`, as the API seals it.
pub fn seal(key: &[u8; 32], rolle: Uuid, text: &str) -> privacy::Sealed {
    privacy::seal(key, &random_bytes(), rolle, text).unwrap()
}

pub fn home_point() -> domain::geo::Point {
    domain::geo::Point::new(HOME.0, HOME.1).unwrap()
}

/// The Weberei (res-7 cell) of [`HOME`].
pub fn weberei_h3() -> String {
    home_point().cell(domain::geo::WEAVERY_RES).to_string()
}

/// The home cell (res 9) of [`HOME`].
pub fn home_h3() -> String {
    home_point().cell(domain::geo::HOME_RES).to_string()
}

/// A bus on a fresh Ort (64 MiB per stream) with its streams created.
pub async fn bus() -> Bus {
    bus_with(BusConfig::new(
        Ort::new(&testkit::unique_ort()).unwrap(),
        64 * 1024 * 1024,
    ))
    .await
}

/// A bus with `cfg`, its streams created.
pub async fn bus_with(cfg: BusConfig) -> Bus {
    let bus = Bus::connect(&testkit::nats_url(), cfg, None).await.unwrap();
    bus.ensure_streams().await.unwrap();
    bus
}

/// A bus on its own Ort and a fresh migrated database; `finish` deletes both.
pub struct Env {
    pub bus: Bus,
    pub db: testkit::TestDb,
}

impl Env {
    pub async fn new() -> Self {
        Self {
            bus: bus().await,
            db: testkit::fresh_database().await,
        }
    }

    /// Chains of events on this Ort, built as envelopes and numbered per stream.
    pub fn chains(&self) -> chains::Chains {
        chains::Chains::new(self.bus.config().ort.clone())
    }

    pub fn projector(&self) -> Projector {
        Projector::new(self.db.conn.clone())
    }

    /// A projection worker on this Ort's streams; send `true` to stop it.
    pub fn start_worker(&self) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let worker = ProjectionWorker::new(
            self.bus.clone(),
            self.projector(),
            ProjectionConfig::default(),
        );
        (tx, tokio::spawn(worker.run(rx)))
    }

    /// What the API does at register: store the role's data key.
    pub async fn save_key(&self, rolle: Uuid, key: [u8; 32]) {
        self.db
            .conn
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO rolle_keys (rolle_id, key) VALUES ($1, $2)",
                [rolle.into(), key.to_vec().into()],
            ))
            .await
            .unwrap();
    }

    /// Publish envelopes straight to JetStream (not through `Bus::execute`).
    pub async fn publish(&self, envs: &[Envelope]) {
        for env in envs {
            self.bus
                .jetstream()
                .publish(env.subject.clone(), serde_json::to_vec(env).unwrap().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }

    /// The one row `sql` returns.
    pub async fn row(&self, sql: &str) -> QueryResult {
        self.db
            .conn
            .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: no row"))
    }

    /// The BIGINT in the first column of the one row `sql` returns.
    pub async fn count(&self, sql: &str) -> i64 {
        self.row(sql).await.try_get_by_index::<i64>(0).unwrap()
    }

    /// The text (or NULL) in the first column of the one row `sql` returns.
    pub async fn text(&self, sql: &str) -> Option<String> {
        self.row(sql)
            .await
            .try_get_by_index::<Option<String>>(0)
            .unwrap()
    }

    /// The text, never NULL, in the first column of the one row `sql` returns.
    pub async fn string(&self, sql: &str) -> String {
        self.row(sql).await.try_get_by_index::<String>(0).unwrap()
    }

    /// The texts in the first column of every row `sql` returns.
    pub async fn lines(&self, sql: &str) -> Vec<String> {
        self.db
            .conn
            .query_all(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    /// Wait (at most 20 s) until `sql` counts `want`.
    pub async fn wait_for(&self, sql: &str, want: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.count(sql).await;
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sql}: got {got}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the projection has caught up with everything in the streams.
    pub async fn settle(&self) {
        let mut total = 0u64;
        for domain in StreamDomain::PROJECTED {
            total += self.bus.stream_messages(domain).await.unwrap();
        }
        self.wait_for("SELECT count(*) FROM events_archive", total as i64)
            .await;
    }

    /// Every event of `event_type` on the aggregate's chain in the stream (not only the
    /// projected ones).
    pub async fn in_stream(
        &self,
        aggregate_type: AggregateType,
        id: Uuid,
        event_type: &str,
    ) -> usize {
        self.bus
            .history(aggregate_type, id)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.envelope.event_type == event_type)
            .count()
    }

    /// Messages on `wg.<ort>.dlq.dead`.
    pub async fn dead(&self) -> u64 {
        self.bus
            .subject_messages(StreamDomain::Dlq, &self.bus.config().ort.dead_subject())
            .await
            .unwrap()
    }

    pub async fn finish(self) {
        self.bus.delete_streams().await.unwrap();
        self.db.drop_db().await;
    }
}
