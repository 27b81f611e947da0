#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Rust client's typed errors end to end through the real binary (`weberei up` against the
//! machine's shared NATS, PostgreSQL and Redis): bad input -> VALIDATION, no or a wrong token ->
//! UNAUTHENTICATED, a second vote and a stale design version -> CONFLICT, a too-large viewport
//! -> VALIDATION on the stream. Subscriptions: `client_rust_e2e.rs`; the shared set-up:
//! `common/client.rs`.

mod common;

use std::time::Duration;

use futures::StreamExt;
use weberei_client::{
    CastStimme, CreateKnoten, Error, ErrorCode, FileAntrag, Rolle, UpdateKnotenDesign, Viewport,
    Vote, cast_stimme, create_knoten, file_antrag, rolle, update_knoten_design, viewport,
};

use common::client::*;

fn code(result: Result<impl std::fmt::Debug, Error>) -> Option<ErrorCode> {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            println!("error: {e}");
            e.code()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_come_back_typed() {
    let (up, client) = start().await;
    let (anna_id, anna) = register(&client, "Anna").await;

    // Bad input: VALIDATION, naming the field; nothing was created.
    let err = anna
        .mutate::<CreateKnoten>(create_knoten::Variables {
            input: knoten_input("", 0),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Validation), "{err}");
    assert!(err.to_string().contains("title"), "{err}");
    let Error::Server { path, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        path,
        &[weberei_client::PathSegment::Field("createKnoten".into())]
    );
    let mut far = knoten_input("Zu weit im Norden", 0);
    far.lat = 91.0;
    assert_eq!(
        code(
            anna.mutate::<CreateKnoten>(create_knoten::Variables { input: far })
                .await
        ),
        Some(ErrorCode::Validation)
    );

    // No session, and a session that does not exist: UNAUTHENTICATED (HTTP and WebSocket).
    assert_eq!(
        code(
            client
                .mutate::<CreateKnoten>(create_knoten::Variables {
                    input: knoten_input("Ohne Sitzung", 0)
                })
                .await
        ),
        Some(ErrorCode::Unauthenticated)
    );
    let forged = client.with_token(format!("wb_{}", "0".repeat(64)));
    assert_eq!(
        code(
            forged
                .mutate::<CreateKnoten>(create_knoten::Variables {
                    input: knoten_input("Gefälscht", 0)
                })
                .await
        ),
        Some(ErrorCode::Unauthenticated)
    );
    assert_eq!(
        code(forged.subscribe::<Viewport>(weimar()).await),
        Some(ErrorCode::Unauthenticated)
    );

    // A box larger than the server allows: VALIDATION on the stream, which then ends.
    let mut huge = anna
        .subscribe::<Viewport>(viewport::Variables {
            bbox: viewport::BboxInput {
                west: 0.0,
                south: 0.0,
                east: 60.0,
                north: 60.0,
            },
            zoom: None,
            after: None,
        })
        .await
        .unwrap();
    let first = tokio::time::timeout(STEP, huge.next()).await.unwrap();
    assert_eq!(
        code(first.expect("an error item")),
        Some(ErrorCode::Validation)
    );
    assert!(
        tokio::time::timeout(STEP, huge.next())
            .await
            .unwrap()
            .is_none()
    );

    // A retry with the same key is the same Knoten; a stale design version is CONFLICT.
    let mut input = knoten_input("Werkstatt", 0);
    input.idempotency_key = weberei_client::new_idempotency_key();
    let a = anna
        .mutate::<CreateKnoten>(create_knoten::Variables {
            input: input.clone(),
        })
        .await
        .unwrap();
    let b = anna
        .mutate::<CreateKnoten>(create_knoten::Variables { input })
        .await
        .unwrap();
    assert_eq!(a.create_knoten.knoten.id, b.create_knoten.knoten.id);
    assert!(b.create_knoten.replayed);
    let knoten = a.create_knoten.knoten.id;
    let design = |version: i64, text: &str| update_knoten_design::Variables {
        input: update_knoten_design::UpdateKnotenDesignInput {
            idempotency_key: String::new(),
            knoten_id: knoten.clone(),
            expected_version: version,
            content: serde_json::json!({ "text": text }),
        },
    };
    let saved = until_found(|| anna.mutate::<UpdateKnotenDesign>(design(0, "erste Fassung"))).await;
    assert_eq!(saved.update_knoten_design.design.version, 1);
    assert_eq!(
        code(
            anna.mutate::<UpdateKnotenDesign>(design(0, "veraltet"))
                .await
        ),
        Some(ErrorCode::Conflict)
    );

    // A second vote is CONFLICT (voting needs a verified role).
    let verified = up.run(&["admin", "verify", &anna_id]).await;
    assert!(
        verified.status.success(),
        "admin verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let r = anna
            .query::<Rolle>(rolle::Variables {
                id: anna_id.clone(),
            })
            .await
            .unwrap();
        if r.rolle
            .and_then(|r| r.verification)
            .is_some_and(|v| v.verified)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Anna was not verified"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let filed = anna
        .mutate::<FileAntrag>(file_antrag::Variables {
            input: file_antrag::FileAntragInput {
                idempotency_key: String::new(),
                title: "Bänke am Frauenplan".to_owned(),
                content: Some(serde_json::json!({ "anzahl": 4 })),
                decision_deadline: chrono::Utc::now() + chrono::Duration::hours(1),
            },
        })
        .await
        .unwrap();
    let antrag = filed.file_antrag.antrag.id;
    let vote = |v: Vote| cast_stimme::Variables {
        input: cast_stimme::CastStimmeInput {
            idempotency_key: String::new(),
            antrag_id: antrag.clone(),
            vote: v,
        },
    };
    let cast = until_found(|| anna.mutate::<CastStimme>(vote(Vote::Ja))).await;
    assert_eq!(cast.cast_stimme.stimme.vote, Vote::Ja);
    assert_eq!(
        code(anna.mutate::<CastStimme>(vote(Vote::Nein)).await),
        Some(ErrorCode::Conflict)
    );
    drop(up);
}

/// Retry while the server answers NOT_FOUND (what it acts on may not be projected yet).
async fn until_found<T, F>(mut call: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Result<T, Error>>,
{
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match call().await {
            Ok(v) => return v,
            Err(e)
                if e.code() == Some(ErrorCode::NotFound)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}
