#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat end to end through the real binary: `weberei up` (API + projection + jobs
//! workers) against the shared NATS, PostgreSQL and Redis; three roles verified with
//! `weberei admin verify`; one delegation; a decision reached by the jobs worker at the deadline;
//! the audit query reproduces it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Up {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

impl Up {
    async fn start(ort: &str, db_url: &str) -> Up {
        let addr = format!("127.0.0.1:{}", testkit::free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_weberei"))
            .arg("up")
            .env("NATS_URL", testkit::nats_url())
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", testkit::redis_url())
            .env("WEBEREI_ORT", ort)
            .env("WEBEREI_DEMO", "false")
            .env("WEBEREI_HTTP_ADDR", &addr)
            .env("WEBEREI_MIN_DECISION_SECONDS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("weberei up");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("http://") {
                    return;
                }
            }
            panic!("weberei up ended before printing its URL");
        })
        .await
        .expect("URL within 60 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Up {
            child,
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
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

    /// Register a role at home in Weimar; returns (id, token).
    async fn register(&self, name: &str) -> (String, String) {
        let r = self
            .gql(
                "",
                "mutation($i: RegisterInput!) { register(input: $i) { token rolle { id } } }",
                json!({"i": {"idempotencyKey": uuid::Uuid::new_v4().to_string(), "name": name, "lat": 50.9795, "lng": 11.3235}}),
            )
            .await;
        let reg = &r["data"]["register"];
        (
            reg["rolle"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .to_owned(),
            reg["token"].as_str().unwrap().to_owned(),
        )
    }
}

async fn admin_verify(ort: &str, db_url: &str, rolle: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_weberei"))
        .args(["admin", "verify", rolle])
        .env("NATS_URL", testkit::nats_url())
        .env("DATABASE_URL", db_url)
        .env("WEBEREI_ORT", ort)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "admin verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_verified_roles_one_delegation_and_the_audit_reproduces_the_decision() {
    let db = testkit::fresh_database().await;
    let ort = testkit::unique_ort();
    let up = Up::start(&ort, &db.url).await;
    let (anna, anna_t) = up.register("Anna").await;
    let (ben, ben_t) = up.register("Ben").await;
    let (cara, cara_t) = up.register("Cara").await;
    for id in [&anna, &ben, &cara] {
        admin_verify(&ort, &db.url, id).await;
    }
    until("three verified roles", 20, async || {
        let r = up
            .gql(
                &anna_t,
                "query($id: ID!) { rolle(id: $id) { verification { verified } } }",
                json!({"id": cara}),
            )
            .await;
        r["data"]["rolle"]["verification"]["verified"] == true
    })
    .await;

    let deadline = (chrono::Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    let filed = up
        .gql(&anna_t, "mutation($i: FileAntragInput!) { fileAntrag(input: $i) { antrag { id } } }",
            json!({"i": {"idempotencyKey": "a1", "title": "Bänke am Frauenplan", "content": {"anzahl": 4}, "decisionDeadline": deadline}}))
        .await;
    let antrag = filed["data"]["fileAntrag"]["antrag"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{filed}"))
        .to_owned();
    let delegated = up
        .gql(&cara_t, "mutation($i: DelegateInput!) { delegate(input: $i) { event { id } } }",
            json!({"i": {"idempotencyKey": "d1", "to": anna, "validUntil": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339()}}))
        .await;
    assert!(delegated["errors"].is_null(), "{delegated}");
    let vote = async |token: &str, key: &str, v: &str| {
        up.gql(
            token,
            "mutation($i: CastStimmeInput!) { castStimme(input: $i) { event { id } replayed } }",
            json!({"i": {"idempotencyKey": key, "antragId": antrag, "vote": v}}),
        )
        .await
    };
    assert!(vote(&anna_t, "v1", "JA").await["errors"].is_null());
    assert!(vote(&ben_t, "v1", "NEIN").await["errors"].is_null());
    let retry = vote(&ben_t, "v1", "NEIN").await;
    assert_eq!(
        retry["data"]["castStimme"]["replayed"], true,
        "a retried vote is the same vote: {retry}"
    );
    let twice = vote(&ben_t, "v2", "JA").await;
    assert_eq!(
        twice["errors"][0]["extensions"]["code"], "CONFLICT",
        "{twice}"
    );

    // The jobs worker decides at the deadline (it scans every 2 s).
    let q = "query($id: ID!) { antrag(id: $id) { status audit { status ja nein enthaltung participation activeRoles quorumReached recomputed counted { voiceId rolleId vote delegatedFromId } } } }";
    let mut audit = Value::Null;
    until("the decision", 30, async || {
        let r = up.gql("", q, json!({"id": antrag})).await;
        audit = r["data"]["antrag"]["audit"].clone();
        !audit.is_null()
    })
    .await;
    assert_eq!(audit["status"], "ANGENOMMEN", "{audit}");
    assert_eq!(
        (audit["ja"].as_i64(), audit["nein"].as_i64()),
        (Some(2), Some(1)),
        "Cara counts with Anna's vote"
    );
    assert_eq!(audit["activeRoles"], 3);
    assert_eq!(audit["quorumReached"], true);
    assert_eq!(
        audit["recomputed"], true,
        "the audit reproduces the decision"
    );
    let counted = audit["counted"].as_array().unwrap();
    let cara_voice = counted
        .iter()
        .find(|c| c["voiceId"] == cara.as_str())
        .expect("Cara's voice is counted");
    assert_eq!(cara_voice["rolleId"], anna.as_str());
    assert_eq!(cara_voice["delegatedFromId"], cara.as_str());
    drop(up);
    let js = async_nats::jetstream::new(async_nats::connect(testkit::nats_url()).await.unwrap());
    for d in ["social", "governance", "finance", "dlq", "system"] {
        let _ = js.delete_stream(format!("wg_{ort}_{d}")).await;
    }
    db.drop_db().await;
}
