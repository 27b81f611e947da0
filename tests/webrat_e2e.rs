#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat end to end through the real binary: `weberei up` (API + projection + jobs
//! workers, started by `testkit::up`) against the shared NATS, PostgreSQL and Redis, spoken
//! to through the Rust client (`weberei-client`); three roles verified with
//! `weberei admin verify`; one delegation; a decision reached by the jobs worker at the
//! deadline; the audit query reproduces it.

use std::time::Duration;

use testkit::up::{Options, Up};
use weberei_client::{
    Antrag, AntragStatus, CastStimme, Client, Delegate, ErrorCode, FileAntrag, Register, Rolle,
    Vote, antrag, cast_stimme, delegate, file_antrag, register, rolle,
};

/// Register a role at home in Weimar; returns (id, a client with its session).
async fn register(client: &Client, name: &str) -> (String, Client) {
    let reg = client
        .mutate::<Register>(register::Variables {
            input: register::RegisterInput {
                idempotency_key: String::new(),
                name: name.to_owned(),
                lat: 50.9795,
                lng: 11.3235,
                device_label: None,
            },
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e}"));
    (
        reg.register.rolle.rolle_core_fields.id,
        client.with_token(reg.register.token),
    )
}

async fn admin_verify(up: &Up, rolle: &str) {
    let out = up.run(&["admin", "verify", rolle]).await;
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
    let up = Up::start(
        env!("CARGO_BIN_EXE_weberei"),
        Options::default().env("WEBEREI_MIN_DECISION_SECONDS", "1"),
    )
    .await;
    let client = Client::new(up.url()).unwrap();
    let (anna, anna_c) = register(&client, "Anna").await;
    let (ben, ben_c) = register(&client, "Ben").await;
    let (cara, cara_c) = register(&client, "Cara").await;
    for id in [&anna, &ben, &cara] {
        admin_verify(&up, id).await;
    }
    until("three verified roles", 20, async || {
        let r = anna_c
            .query::<Rolle>(rolle::Variables { id: cara.clone() })
            .await
            .unwrap();
        r.rolle
            .and_then(|r| r.verification)
            .is_some_and(|v| v.verified)
    })
    .await;

    let filed = anna_c
        .mutate::<FileAntrag>(file_antrag::Variables {
            input: file_antrag::FileAntragInput {
                idempotency_key: "a1".to_owned(),
                title: "Bänke am Frauenplan".to_owned(),
                content: Some(serde_json::json!({"anzahl": 4})),
                decision_deadline: chrono::Utc::now() + chrono::Duration::seconds(6),
            },
        })
        .await
        .unwrap_or_else(|e| panic!("fileAntrag: {e}"));
    let antrag = filed.file_antrag.antrag.id;
    cara_c
        .mutate::<Delegate>(delegate::Variables {
            input: delegate::DelegateInput {
                idempotency_key: "d1".to_owned(),
                to: anna.clone(),
                valid_until: chrono::Utc::now() + chrono::Duration::days(7),
            },
        })
        .await
        .unwrap_or_else(|e| panic!("delegate: {e}"));
    let vote = async |client: &Client, key: &str, v: Vote| {
        client
            .mutate::<CastStimme>(cast_stimme::Variables {
                input: cast_stimme::CastStimmeInput {
                    idempotency_key: key.to_owned(),
                    antrag_id: antrag.clone(),
                    vote: v,
                },
            })
            .await
    };
    vote(&anna_c, "v1", Vote::Ja).await.unwrap();
    vote(&ben_c, "v1", Vote::Nein).await.unwrap();
    let retry = vote(&ben_c, "v1", Vote::Nein).await.unwrap();
    assert!(
        retry.cast_stimme.replayed,
        "a retried vote is the same vote: {retry:?}"
    );
    let twice = vote(&ben_c, "v2", Vote::Ja).await.unwrap_err();
    assert_eq!(twice.code(), Some(ErrorCode::Conflict), "{twice}");

    // The jobs worker decides at the deadline (it scans every 2 s).
    let mut audit = None;
    until("the decision", 30, async || {
        let r = client
            .query::<Antrag>(antrag::Variables { id: antrag.clone() })
            .await
            .unwrap();
        audit = r.antrag.and_then(|a| a.audit);
        audit.is_some()
    })
    .await;
    let audit = audit.unwrap();
    assert_eq!(audit.status, AntragStatus::Angenommen, "{audit:?}");
    assert_eq!(
        (audit.ja, audit.nein),
        (2, 1),
        "Cara counts with Anna's vote"
    );
    assert_eq!(audit.active_roles, 3);
    assert!(audit.quorum_reached);
    assert!(audit.recomputed, "the audit reproduces the decision");
    let cara_voice = audit
        .counted
        .iter()
        .find(|c| c.voice_id == cara)
        .expect("Cara's voice is counted");
    assert_eq!(cara_voice.rolle_id, anna);
    assert_eq!(cara_voice.delegated_from_id.as_deref(), Some(cara.as_str()));
    // Dropping `up` stops the binary, deletes the Ort's streams and drops the database.
}
