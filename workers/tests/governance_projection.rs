#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat's projections of Anträge and delegations against real NATS JetStream and
//! PostgreSQL: Anträge with their objections, votes, decision and audit; a missed quorum;
//! delegation history; redelivery and rebuilds. Events are built directly as envelopes on
//! their chains, each numbered on its own stream as JetStream would. Roles:
//! `verification_projection.rs`; flags and hidden content: `moderation_projection.rs`.

mod support;

use chrono::{DateTime, Utc};
use domain::events::{
    AntragEntschieden, AntragGestellt, AntragStatus, DelegationAbgelaufen, DelegationErstellt,
    DelegationWiderrufen, EinspruchEingegangen, QuorumErreicht, StimmeAbgegeben, Vote,
};
use domain::governance::audit_decision;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use uuid::Uuid;
use workers::Incoming;

use support::governance::{decision, ms, t0, world};
use support::{seal, secs, weberei_h3};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_antrag_with_objections_votes_and_a_delegated_voice_is_decided_with_its_audit() {
    let mut w = world().await;
    let (stop, task) = w.start_worker();
    let t = t0();
    let [anna, bert, carl, dora] = [
        w.person().await,
        w.person().await,
        w.person().await,
        w.person().await,
    ];
    let antrag = Uuid::new_v4();
    let deadline = t + chrono::Duration::days(7);
    let mut events = vec![
        w.register(anna, "Anna", t),
        w.register(bert, "Bert", t),
        w.register(carl, "Carl", t),
        w.register(dora, "Dora", t),
    ];
    events.push(w.by(
        antrag,
        &AntragGestellt {
            by: anna.id,
            title: "Bank am Teich".into(),
            content: json!({"kosten": 300}),
            weavery_h3: weberei_h3(),
            decision_deadline: deadline,
        },
        anna.id,
        t + secs(1),
    ));
    events.push(w.by(
        antrag,
        &EinspruchEingegangen {
            by: bert.id,
            reason: seal(&bert.key, bert.id, "Der Teich braucht Ruhe"),
        },
        bert.id,
        t + secs(2),
    ));
    let votes = [
        (anna.id, Vote::Ja),
        (bert.id, Vote::Nein),
        (carl.id, Vote::Enthaltung),
    ];
    for (n, (rolle, vote)) in votes.iter().enumerate() {
        events.push(w.by(
            antrag,
            &StimmeAbgegeben {
                by: *rolle,
                vote: *vote,
            },
            *rolle,
            t + secs(3 + n as i64),
        ));
    }
    // Dora delegated to Anna and did not vote: she counts with Anna's ja.
    let dora_chain = domain::delegation::delegation_id(dora.id);
    events.push(w.by(
        dora_chain,
        &DelegationErstellt {
            from: dora.id,
            to: anna.id,
            valid_until: deadline + chrono::Duration::days(30),
            replaces: None,
        },
        dora.id,
        t + secs(10),
    ));
    w.publish(&events).await;
    w.wait_for("SELECT count(*) FROM stimmen", 3).await;
    w.wait_for("SELECT count(*) FROM delegationen", 1).await;

    // Open: the direct votes so far, the objection readable, nothing decided.
    let row = w
        .row(&format!(
            "SELECT status::text AS s, ja, nein, enthaltung, created_by, weavery_h3, decided_at IS NULL AS open, \
                    quorum_reached IS NULL AS q FROM antraege WHERE id = '{antrag}'"
        ))
        .await;
    assert_eq!(row.try_get::<String>("", "s").unwrap(), "offen");
    assert_eq!(
        (
            row.try_get::<i32>("", "ja").unwrap(),
            row.try_get::<i32>("", "nein").unwrap(),
            row.try_get::<i32>("", "enthaltung").unwrap()
        ),
        (1, 1, 1)
    );
    assert_eq!(row.try_get::<Uuid>("", "created_by").unwrap(), anna.id);
    let weberei: h3o::CellIndex = weberei_h3().parse().unwrap();
    assert_eq!(
        row.try_get::<i64>("", "weavery_h3").unwrap(),
        domain::geo::cell_to_i64(weberei)
    );
    assert!(row.try_get::<bool>("", "open").unwrap() && row.try_get::<bool>("", "q").unwrap());
    assert_eq!(
        w.text(&format!(
            "SELECT reason FROM einsprueche WHERE antrag_id = '{antrag}' AND by = '{}'",
            bert.id
        ))
        .await
        .as_deref(),
        Some("Der Teich braucht Ruhe")
    );
    // Direct votes only, one row per role with its UUIDv5 id.
    for (rolle, vote) in votes {
        let id = Uuid::new_v5(&antrag, rolle.hyphenated().to_string().as_bytes());
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM stimmen WHERE id = '{id}' AND antrag_id = '{antrag}' \
                 AND rolle_id = '{rolle}' AND vote = '{}' AND delegated_from IS NULL",
                vote.as_str()
            ))
            .await,
            1
        );
    }

    // The deadline: 4 voices of 20 active roles reach 10 %; 2 ja beat 1 nein.
    let decided = decision(&votes, &[(dora.id, anna.id)], 20, 10);
    assert_eq!(decided.status, AntragStatus::Angenommen);
    let quorum = QuorumErreicht {
        participation: decided.participation,
        active_roles: 20,
        quorum_percent: 10,
    };
    let decided_at = deadline + secs(5);
    let end = [
        w.system(antrag, &quorum, decided_at),
        w.system(antrag, &decided, decided_at),
    ];
    w.publish(&end).await;
    w.wait_for(
        &format!("SELECT count(*) FROM antraege WHERE id = '{antrag}' AND decided_at IS NOT NULL"),
        1,
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    // Each role's latest event, whichever stream was projected first.
    for (p, d) in [(anna, 3), (bert, 4), (carl, 5), (dora, 10)] {
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM rollen WHERE id = '{}' AND last_active_at = '{}'",
                p.id,
                (t + secs(d)).to_rfc3339()
            ))
            .await,
            1,
            "last_active_at of {}",
            p.id
        );
    }

    let row = w
        .row(&format!(
            "SELECT status::text AS s, ja, nein, enthaltung, participation, active_roles, quorum_percent, \
                    quorum_reached, decided_at FROM antraege WHERE id = '{antrag}'"
        ))
        .await;
    assert_eq!(row.try_get::<String>("", "s").unwrap(), "angenommen");
    let ints: Vec<i32> = [
        "ja",
        "nein",
        "enthaltung",
        "participation",
        "active_roles",
        "quorum_percent",
    ]
    .iter()
    .map(|c| row.try_get::<i32>("", c).unwrap())
    .collect();
    assert_eq!(ints, [2, 1, 1, 4, 20, 10]);
    assert!(row.try_get::<bool>("", "quorum_reached").unwrap());
    assert_eq!(
        row.try_get::<DateTime<Utc>>("", "decided_at").unwrap(),
        decided_at
    );
    // The audit: every counted voice, Dora's with delegated_from; it reproduces the decision.
    let audit = w
        .lines(&format!(
            "SELECT format('%s|%s|%s|%s', voice, rolle, vote, coalesce(delegated_from::text, '-')) \
             FROM antrag_counted_votes WHERE antrag_id = '{antrag}' ORDER BY voice"
        ))
        .await;
    let mut expected: Vec<String> = decided
        .counted
        .iter()
        .map(|c| {
            format!(
                "{}|{}|{}|{}",
                c.voice(),
                c.rolle,
                c.vote.as_str(),
                c.delegated_from.map_or("-".into(), |d| d.to_string())
            )
        })
        .collect();
    expected.sort();
    assert_eq!(audit, expected);
    assert!(audit.contains(&format!("{}|{}|ja|{}", dora.id, anna.id, dora.id)));
    let recomputed = w
        .db
        .conn
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT rolle, vote::text AS vote, delegated_from FROM antrag_counted_votes \
                 WHERE antrag_id = '{antrag}' ORDER BY voice"
            ),
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| domain::events::CountedVote {
            rolle: r.try_get("", "rolle").unwrap(),
            vote: serde_json::from_value(json!(r.try_get::<String>("", "vote").unwrap())).unwrap(),
            delegated_from: r.try_get("", "delegated_from").unwrap(),
        })
        .collect();
    audit_decision(&AntragEntschieden {
        counted: recomputed,
        ..decided.clone()
    })
    .unwrap();
    // Still only the direct votes in stimmen.
    assert_eq!(w.count("SELECT count(*) FROM stimmen").await, 3);

    // A rebuild from the archive (governance is replayed before social) gives the same state.
    let before = w.state().await;
    w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(w.state().await, before);
    w.finish().await;
}

#[tokio::test]
async fn a_missed_quorum_is_recorded_and_the_batch_applied_again_changes_nothing() {
    let mut w = world().await;
    let t = t0();
    let anna = w.person().await;
    let antrag = Uuid::new_v4();
    let deadline = t + chrono::Duration::days(7);
    let mut events = vec![
        w.register(anna, "Anna", t),
        w.by(
            antrag,
            &AntragGestellt {
                by: anna.id,
                title: "Laternenfest".into(),
                content: json!({}),
                weavery_h3: weberei_h3(),
                decision_deadline: deadline,
            },
            anna.id,
            t + secs(1),
        ),
        w.by(
            antrag,
            &StimmeAbgegeben {
                by: anna.id,
                vote: Vote::Ja,
            },
            anna.id,
            t + secs(2),
        ),
    ];
    // 1 voice of 11 active roles is below 10 %.
    let decided = decision(&[(anna.id, Vote::Ja)], &[], 11, 10);
    assert_eq!(decided.status, AntragStatus::QuorumVerfehlt);
    events.push(w.system(antrag, &decided, deadline));
    let batch: Vec<Incoming> = events.iter().map(|e| w.chains.incoming(e)).collect();
    let projector = w.projector();
    let first = projector.apply_batch(&batch).await.unwrap();
    assert_eq!((first.applied, first.dead.len()), (events.len(), 0));
    let row = w
        .row(&format!(
            "SELECT status::text AS s, quorum_reached, ja, participation FROM antraege WHERE id = '{antrag}'"
        ))
        .await;
    assert_eq!(row.try_get::<String>("", "s").unwrap(), "quorum_verfehlt");
    assert!(!row.try_get::<bool>("", "quorum_reached").unwrap());
    assert_eq!(row.try_get::<i32>("", "ja").unwrap(), 1);
    assert_eq!(row.try_get::<i32>("", "participation").unwrap(), 1);
    assert_eq!(
        w.count("SELECT count(*) FROM antrag_counted_votes").await,
        1
    );

    let before = w.state().await;
    let second = projector.apply_batch(&batch).await.unwrap();
    assert_eq!((second.applied, second.skipped), (0, events.len()));
    assert_eq!(w.state().await, before);
    w.finish().await;
}

#[tokio::test]
async fn a_delegation_keeps_its_history_replaced_revoked_and_expired() {
    let mut w = world().await;
    let t = t0();
    let [anna, bert, carl] = [w.person().await, w.person().await, w.person().await];
    let chain = domain::delegation::delegation_id(anna.id);
    let until = t + chrono::Duration::days(10);
    let later = t + chrono::Duration::days(20);
    let events = vec![
        w.by(
            chain,
            &DelegationErstellt {
                from: anna.id,
                to: bert.id,
                valid_until: until,
                replaces: None,
            },
            anna.id,
            t,
        ),
        w.by(
            chain,
            &DelegationErstellt {
                from: anna.id,
                to: carl.id,
                valid_until: until,
                replaces: Some(bert.id),
            },
            anna.id,
            t + secs(1),
        ),
        w.by(
            chain,
            &DelegationWiderrufen {
                from: anna.id,
                to: carl.id,
            },
            anna.id,
            t + secs(2),
        ),
        w.by(
            chain,
            &DelegationErstellt {
                from: anna.id,
                to: bert.id,
                valid_until: later,
                replaces: None,
            },
            anna.id,
            t + secs(3),
        ),
    ];
    w.apply(&events).await;
    let rows_sql = format!(
        "SELECT format('%s|%s|%s|%s|%s', to_rolle, {}, {}, coalesce(ended_reason, '-'), {}) \
         FROM delegationen WHERE from_rolle = '{}' ORDER BY created_at",
        ms("valid_until"),
        ms("ended_at"),
        ms("revoked_at"),
        anna.id
    );
    let m = |ts: DateTime<Utc>| ts.timestamp_millis();
    let expected = |last: String| {
        vec![
            format!("{}|{}|{}|replaced|-", bert.id, m(until), m(t + secs(1))),
            format!(
                "{}|{}|{}|revoked|{}",
                carl.id,
                m(until),
                m(t + secs(2)),
                m(t + secs(2))
            ),
            format!("{}|{}|{last}", bert.id, m(later)),
        ]
    };
    assert_eq!(w.lines(&rows_sql).await, expected("-|-|-".into()));
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM delegationen WHERE from_rolle = '{}' AND ended_at IS NULL",
            anna.id
        ))
        .await,
        1
    );

    // The expiry timer records the last one: it ended at its valid_until.
    let expired = w.system(
        chain,
        &DelegationAbgelaufen {
            from: anna.id,
            to: bert.id,
            valid_until: later,
        },
        later + secs(30),
    );
    w.apply(&[expired]).await;
    assert_eq!(
        w.lines(&rows_sql).await,
        expected(format!("{}|expired|-", m(later)))
    );
    let before = w.state().await;
    w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(w.state().await, before);
    w.finish().await;
}
