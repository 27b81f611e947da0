//! The one typed configuration of the binary, read once at start from flags and environment.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use domain::Ort;

use crate::Urls;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// The town's slug (a-z, 0-9, _): names the streams and subjects.
    #[arg(long, env = "WEBEREI_ORT", default_value = "demo", global = true)]
    pub ort: String,
    /// Where the HTTP server listens.
    #[arg(
        long,
        env = "WEBEREI_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub http_addr: String,
    #[arg(long, env = "NATS_URL", global = true)]
    pub nats_url: Option<String>,
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Data directory of the embedded servers (`weberei up`).
    #[arg(
        long,
        env = "WEBEREI_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    #[arg(
        long,
        env = "WEBEREI_NATS_PORT",
        default_value_t = 14222,
        global = true
    )]
    pub nats_port: u16,
    #[arg(long, env = "WEBEREI_PG_PORT", default_value_t = 15432, global = true)]
    pub pg_port: u16,
    #[arg(
        long,
        env = "WEBEREI_REDIS_PORT",
        default_value_t = 16379,
        global = true
    )]
    pub redis_port: u16,
    /// JetStream storage the embedded nats-server may use.
    #[arg(
        long,
        env = "WEBEREI_NATS_MAX_FILE_STORE",
        default_value = "4G",
        global = true
    )]
    pub nats_max_file_store: String,
    /// max_bytes of each stream. The seed's 20 GB belongs on a server sized for it; JetStream
    /// reserves it per stream up front.
    #[arg(long, env = "WEBEREI_STREAM_MAX_BYTES", default_value_t = 512 * 1024 * 1024, global = true)]
    pub stream_max_bytes: i64,
    /// Stream replicas: 1 in phase A, 3 with a NATS cluster.
    #[arg(
        long,
        env = "WEBEREI_STREAM_REPLICAS",
        default_value_t = 1,
        global = true
    )]
    pub stream_replicas: usize,
    /// Salt of the ip/ua hashes. Random per process when unset.
    #[arg(long, env = "WEBEREI_HASH_SALT", global = true, hide_env_values = true)]
    pub hash_salt: Option<String>,
    /// Viewport batching tick in milliseconds.
    #[arg(
        long,
        env = "WEBEREI_WS_TICK_MS",
        default_value_t = 1500,
        global = true
    )]
    pub ws_tick_ms: u64,
    /// Feature flags (DESIGN.md §9).
    #[arg(long, env = "FF_SEARCH", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub ff_search: bool,
    #[arg(long, env = "FF_TOUR", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub ff_tour: bool,
    #[arg(long, env = "FF_TIMELINE_DELTA", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub ff_timeline_delta: bool,
    #[arg(long, env = "FF_PUSH", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub ff_push: bool,
    #[arg(long, env = "FF_TRANSITIVE_DELEGATION", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub ff_transitive_delegation: bool,
    #[arg(long, env = "FF_STRIPE", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub ff_stripe: bool,
    /// Share of a Weberei's active roles that must take part for a decision (percent).
    #[arg(long, env = "QUORUM_PERCENT", default_value_t = 10, global = true)]
    pub quorum_percent: u32,
    /// A role counts as active with any event in this many days.
    #[arg(long, env = "ACTIVE_DAYS", default_value_t = 30, global = true)]
    pub active_days: i64,
    /// Distinct roles whose threads twist a Knoten into yarn.
    #[arg(long, env = "YARN_MIN_ROLES", default_value_t = 3, global = true)]
    pub yarn_min_roles: usize,
    /// Seed the demo town at `weberei up` (idempotent).
    #[arg(long, env = "WEBEREI_DEMO", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub demo: bool,
    /// Largest viewport / query box in square degrees.
    #[arg(
        long,
        env = "WEBEREI_MAX_BBOX_DEG2",
        default_value_t = 25.0,
        global = true
    )]
    pub max_bbox_deg2: f64,
    /// Directory of the built web client, served at `/` (relative paths: from the working
    /// directory). Without an `index.html` there, `/` redirects to GraphiQL.
    #[arg(
        long,
        env = "WEBEREI_WEB_DIR",
        default_value = "web/build",
        global = true
    )]
    pub web_dir: PathBuf,
    /// MapLibre style URL for the web map's base tiles; unset: the offline default style.
    #[arg(long, env = "WEBEREI_MAP_STYLE_URL", global = true)]
    pub map_style_url: Option<String>,
    /// Viewport deliveries a slow WebSocket client may have queued before they are dropped and
    /// replaced by one `resync` notice.
    #[arg(long, env = "WEBEREI_WS_QUEUE", default_value_t = 64, global = true)]
    pub ws_queue: usize,
    /// Shortest time between filing an Antrag and its decision deadline, in seconds.
    #[arg(
        long,
        env = "WEBEREI_MIN_DECISION_SECONDS",
        default_value_t = 24 * 3600,
        global = true
    )]
    pub min_decision_seconds: i64,
}

impl Settings {
    pub fn ort(&self) -> Result<Ort> {
        Ok(Ort::new(&self.ort)?)
    }

    pub fn require_database_url(&self) -> Result<&str> {
        match &self.database_url {
            Some(u) => Ok(u),
            None => bail!("DATABASE_URL is not set (only `weberei up` starts its own PostgreSQL)"),
        }
    }

    pub fn explicit_urls(&self) -> Result<Urls> {
        let (Some(nats), Some(database), Some(redis)) =
            (&self.nats_url, &self.database_url, &self.redis_url)
        else {
            bail!(
                "NATS_URL, DATABASE_URL and REDIS_URL must all be set (only `weberei up` starts its own servers)"
            );
        };
        Ok(Urls {
            nats: nats.clone(),
            database: database.clone(),
            redis: redis.clone(),
        })
    }

    pub fn embedded_config(&self) -> crate::embedded::EmbeddedConfig {
        crate::embedded::EmbeddedConfig {
            data_dir: self.data_dir.clone(),
            nats_port: self.nats_port,
            pg_port: self.pg_port,
            redis_port: self.redis_port,
            nats_max_file_store: self.nats_max_file_store.clone(),
        }
    }

    pub fn bus_config(&self, ort: Ort) -> bus::BusConfig {
        let mut cfg = bus::BusConfig::new(ort, self.stream_max_bytes);
        cfg.replicas = self.stream_replicas;
        cfg
    }

    pub fn api_config(&self) -> api::ApiConfig {
        let salt = self.hash_salt.clone().unwrap_or_else(|| {
            use rand::Rng;
            let bytes: [u8; 16] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
        api::ApiConfig {
            ws_tick: Duration::from_millis(self.ws_tick_ms),
            max_bbox_area_deg2: self.max_bbox_deg2,
            ws_queue: self.ws_queue,
            min_decision_period: chrono::Duration::seconds(self.min_decision_seconds.max(0)),
            hash_salt: salt,
            flags: api::Flags {
                search: self.ff_search,
                tour: self.ff_tour,
                timeline_delta: self.ff_timeline_delta,
                push: self.ff_push,
                transitive_delegation: self.ff_transitive_delegation,
                stripe: self.ff_stripe,
            },
            web_dir: Some(self.web_dir.clone()),
            map_style_url: self.map_style_url.clone().filter(|u| !u.trim().is_empty()),
            ..api::ApiConfig::default()
        }
    }
}
