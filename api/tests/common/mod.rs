//! Shared set-up: the API in-process (`api::app` on a real socket) against real NATS,
//! PostgreSQL and Redis, with a projection worker, for one test.
#![allow(dead_code)]

pub mod governance;

use std::net::SocketAddr;
use std::time::Duration;

use bus::{Bus, BusConfig, Fallback};
use domain::{Ort, StreamDomain};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use tokio::sync::watch;

pub struct Server {
    pub url: String,
    pub bus: Bus,
    pub db: testkit::TestDb,
    pub stop: watch::Sender<bool>,
    pub http: reqwest::Client,
    /// Session of a role registered at start; `gql` sends it.
    pub token: String,
}

pub async fn server(metrics: Option<metrics_exporter_prometheus::PrometheusHandle>) -> Server {
    server_with(metrics, api::Flags::default()).await
}

pub async fn server_with(
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    flags: api::Flags,
) -> Server {
    let config = api::ApiConfig {
        ws_tick: Duration::from_millis(100),
        flags,
        ..Default::default()
    };
    server_with_config(metrics, config).await
}

/// A server with the given API settings (e.g. a short minimum decision period).
pub async fn server_with_config(
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    config: api::ApiConfig,
) -> Server {
    let ort = Ort::new(&testkit::unique_ort()).unwrap();
    let fallback = Fallback::connect(&testkit::redis_url(), &ort)
        .await
        .unwrap();
    let bus = Bus::connect(
        &testkit::nats_url(),
        BusConfig::new(ort, 64 * 1024 * 1024),
        Some(fallback),
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
    tokio::spawn(worker.run(rx.clone()));
    let hub = api::LiveHub::spawn(bus.clone(), db.conn.clone(), rx);
    let state = api::AppState::new(bus.clone(), db.conn.clone(), hub, config, metrics);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            api::app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let mut s = Server {
        url: format!("http://{addr}"),
        bus,
        db,
        stop,
        http: reqwest::Client::new(),
        token: String::new(),
    };
    s.token = s.register("Testerin").await;
    s
}

impl Server {
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_as(&self.token, query, variables).await
    }

    /// A request with another session token ("" sends none).
    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let mut req = self.http.post(format!("{}/graphql", self.url));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        req.json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Register a new role; returns its session token.
    pub async fn register(&self, name: &str) -> String {
        let r = self
            .gql_as(
                "",
                "mutation($i: RegisterInput!) { register(input: $i) { token rolle { id } } }",
                json!({"i": {"idempotencyKey": uuid::Uuid::new_v4().to_string(), "name": name, "lat": 50.98, "lng": 11.32}}),
            )
            .await;
        r["data"]["register"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("register failed: {r}"))
            .to_owned()
    }

    pub async fn create(&self, key: &str, title: &str, lat: f64, lng: f64) -> Value {
        self.gql(
            "mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id title lat lng h3 } event { id hash prevHash streamSequence } replayed } }",
            json!({"i": {"idempotencyKey": key, "title": title, "typ": "RESSOURCE", "lat": lat, "lng": lng}}),
        )
        .await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .db
            .conn
            .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    pub async fn rejected(&self) -> u64 {
        self.bus
            .subject_messages(StreamDomain::Dlq, &self.bus.config().ort.rejected_subject())
            .await
            .unwrap()
    }

    pub async fn finish(self) {
        self.stop.send(true).unwrap();
        self.bus.delete_streams().await.unwrap();
        self.db.drop_db().await;
    }
}

pub fn code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}
