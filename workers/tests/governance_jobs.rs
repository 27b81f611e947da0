#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The jobs worker's Webrat timers (decision deadlines, delegation expiry) against real NATS
//! JetStream and PostgreSQL, with a projection worker filling the tables it reads and a fake
//! clock moved by the test. Roles, Anträge, votes and delegations are made by their aggregates
//! through `Bus::execute`, as the API makes them.

mod support;

use chrono::{DateTime, Utc};
use domain::antrag::{Abstimmen, Antrag, AntragCommand, Stellen};
use domain::delegation::{Delegation, DelegationCommand, Erstellen, delegation_id};
use domain::events::{AdminActionExecuted, Vote};
use domain::rolle::{Registrieren, Rolle, RolleCommand};
use domain::verification::{ACTION_VERIFY_ROLLE, Bestaetigen};
use domain::{Actor, AggregateType, Envelope, EventContext};
use uuid::Uuid;
use workers::JobsReport;

use support::timers::{World, sum, world};
use support::{HOME, days, hours, meta, random_bytes, weberei_h3};

const ELSEWHERE: (f64, f64) = (48.137, 11.575);

impl World {
    /// A role registered at `at` with its home at `home`, its data key stored as the API does.
    async fn register(&self, name: &str, home: (f64, f64), at: DateTime<Utc>) -> Uuid {
        let id = Uuid::new_v4();
        let key: [u8; 32] = random_bytes();
        self.save_key(id, key).await;
        let cmd = RolleCommand::Registrieren(Registrieren {
            id,
            name: name.into(),
            lat: home.0,
            lng: home.1,
            key,
            nonce: random_bytes(),
        });
        self.bus
            .execute::<Rolle>(
                id,
                &cmd,
                meta(Actor::Rolle(id), format!("register:{id}")),
                at,
                bus::Expect::NewChain,
            )
            .await
            .unwrap();
        id
    }

    /// `weberei admin verify`: the admin action on the system stream, then `RolleVerifiziert`.
    async fn admin_verify(&self, rolle: Uuid, at: DateTime<Utc>) {
        let action = Envelope::standalone(
            self.bus
                .config()
                .ort
                .aggregate_subject(AggregateType::System, Uuid::new_v4()),
            &AdminActionExecuted {
                action: ACTION_VERIFY_ROLLE.into(),
                target: Some(rolle),
                detail: String::new(),
            },
            EventContext {
                id: ulid::Ulid::new(),
                ts: at,
                meta: meta(Actor::System, format!("admin:verify:{rolle}")),
            },
            Uuid::new_v4(),
        )
        .unwrap();
        self.bus
            .jetstream()
            .publish(
                action.subject.clone(),
                serde_json::to_vec(&action).unwrap().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        let cmd = RolleCommand::AdminVerifizieren {
            admin_action_id: action.id,
        };
        self.bus
            .execute::<Rolle>(
                rolle,
                &cmd,
                meta(Actor::System, format!("admin:verified:{rolle}")),
                at,
                bus::Expect::ExistingChain,
            )
            .await
            .unwrap();
    }

    /// Two verified roles confirm `rolle`: it is verified by its peers.
    async fn peer_verify(&self, rolle: Uuid, confirmers: [Uuid; 2], at: DateTime<Utc>) {
        for by in confirmers {
            let cmd = RolleCommand::Bestaetigen(Bestaetigen {
                target: rolle,
                by,
                by_verified: true,
            });
            let executed = self
                .bus
                .execute::<Rolle>(
                    rolle,
                    &cmd,
                    meta(Actor::Rolle(by), format!("confirm:{rolle}:{by}")),
                    at,
                    bus::Expect::ExistingChain,
                )
                .await
                .unwrap();
            assert!(!executed.events.is_empty());
        }
    }

    async fn file(&self, by: Uuid, deadline: DateTime<Utc>, at: DateTime<Utc>) -> Uuid {
        let id = Uuid::new_v4();
        let cmd = AntragCommand::Stellen(Stellen {
            id,
            title: format!("Antrag {id}"),
            content: None,
            weavery_h3: weberei_h3(),
            deadline,
            now: at,
            min_deadline: hours(1),
            by,
            by_verified: true,
        });
        self.bus
            .execute::<Antrag>(
                id,
                &cmd,
                meta(Actor::Rolle(by), format!("file:{id}")),
                at,
                bus::Expect::NewChain,
            )
            .await
            .unwrap();
        id
    }

    async fn vote(&self, antrag: Uuid, by: Uuid, vote: Vote, at: DateTime<Utc>) {
        let cmd = AntragCommand::Abstimmen(Abstimmen {
            by,
            vote,
            now: at,
            by_verified: true,
        });
        self.bus
            .execute::<Antrag>(
                antrag,
                &cmd,
                meta(Actor::Rolle(by), format!("vote:{antrag}:{by}")),
                at,
                bus::Expect::ExistingChain,
            )
            .await
            .unwrap();
    }

    async fn delegate(&self, from: Uuid, to: Uuid, valid_until: DateTime<Utc>, at: DateTime<Utc>) {
        let cmd = DelegationCommand::Erstellen(Erstellen {
            from,
            to,
            valid_until,
            now: at,
            to_exists: true,
        });
        self.bus
            .execute::<Delegation>(
                delegation_id(from),
                &cmd,
                meta(
                    Actor::Rolle(from),
                    format!("delegate:{from}:{}", at.timestamp_millis()),
                ),
                at,
                bus::Expect::ExistingChain,
            )
            .await
            .unwrap();
    }

    async fn revoke(&self, from: Uuid, at: DateTime<Utc>) {
        self.bus
            .execute::<Delegation>(
                delegation_id(from),
                &DelegationCommand::Widerrufen { now: at },
                meta(
                    Actor::Rolle(from),
                    format!("revoke:{from}:{}", at.timestamp_millis()),
                ),
                at,
                bus::Expect::ExistingChain,
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anträge_past_their_deadline_while_the_worker_was_down_are_decided_once_at_start_on_the_quorum_at_their_deadline()
 {
    let w = world().await;
    let t0 = w.t0;

    // Ten active, verified roles homed in the Weberei: two verified by an admin, eight by them.
    let anna = w.register("Anna", HOME, t0).await;
    let bert = w.register("Bert", HOME, t0).await;
    w.admin_verify(anna, t0).await;
    w.admin_verify(bert, t0).await;
    let mut members = vec![anna, bert];
    for n in 0..8 {
        let rolle = w.register(&format!("Mitglied {n}"), HOME, t0).await;
        w.peer_verify(rolle, [anna, bert], t0).await;
        members.push(rolle);
    }
    // Not in the quorum base: homed elsewhere, not verified, or not active for 40 days.
    let elsewhere = w.register("Fern", ELSEWHERE, t0).await;
    w.peer_verify(elsewhere, [anna, bert], t0).await;
    let _unverified = w.register("Neu", HOME, t0).await;
    let asleep = w.register("Schläfer", HOME, t0 - days(40)).await;
    w.admin_verify(asleep, t0 - days(40)).await;

    // A: 1 voice of 10 active roles is exactly 10 %: reached, 1 ja > 0 nein.
    let a = w.file(anna, t0 + days(2), t0).await;
    w.vote(a, anna, Vote::Ja, t0 + hours(1)).await;
    // B: an eleventh role is verified before B's deadline: 1 voice of 11 is below 10 %.
    let b = w.file(anna, t0 + days(3), t0).await;
    w.vote(b, bert, Vote::Ja, t0 + hours(1)).await;
    let late = w.register("Spät", HOME, t0 + days(2) + hours(12)).await;
    w.peer_verify(late, [anna, bert], t0 + days(2) + hours(12))
        .await;
    w.settle().await;

    // Before the first deadline nothing is due.
    w.clock
        .set(t0 + days(2) - chrono::Duration::milliseconds(1));
    assert_eq!(w.jobs().scan_once().await.unwrap(), JobsReport::default());

    // The jobs worker was down across both deadlines and starts at t0 + 5 days.
    w.clock.set(t0 + days(5));
    let reports = w.restart_jobs().await;
    let total = sum(&reports);
    assert_eq!(total.failed, 0, "{reports:?}");
    assert!(total.antraege_decided <= 2, "{reports:?}");

    for antrag in [a, b] {
        assert_eq!(
            w.in_stream(AggregateType::Antrag, antrag, "AntragEntschieden")
                .await,
            1,
            "Antrag {antrag}"
        );
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM events_archive WHERE aggregate_id = '{antrag}' \
                 AND type = 'AntragEntschieden' AND msg_id LIKE 'entscheidung:{antrag}%'"
            ))
            .await,
            1
        );
    }
    assert_eq!(
        w.in_stream(AggregateType::Antrag, a, "QuorumErreicht")
            .await,
        1
    );
    assert_eq!(
        w.in_stream(AggregateType::Antrag, b, "QuorumErreicht")
            .await,
        0
    );
    let decided = |antrag: Uuid| {
        format!(
            "SELECT format('%s|%s|%s|%s|%s|%s|%s', status, quorum_reached, ja, nein, participation, \
                    active_roles, quorum_percent) FROM antraege WHERE id = '{antrag}'"
        )
    };
    assert_eq!(w.string(&decided(a)).await, "angenommen|t|1|0|1|10|10");
    assert_eq!(w.string(&decided(b)).await, "quorum_verfehlt|f|1|0|1|11|10");
    // The decision is the system's, at the worker's now.
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM events_archive WHERE type IN ('QuorumErreicht', 'AntragEntschieden') \
             AND envelope->'meta'->>'actor' = 'system' AND ts = '{}'",
            (t0 + days(5)).to_rfc3339()
        ))
        .await,
        3
    );
    // The audit of A: Anna's voice.
    assert_eq!(
        w.lines(&format!(
            "SELECT format('%s|%s|%s|%s', voice, rolle, vote, delegated_from) \
             FROM antrag_counted_votes WHERE antrag_id = '{a}'"
        ))
        .await,
        [format!("{anna}|{anna}|ja|")]
    );

    // Later scans find nothing to do.
    assert_eq!(w.jobs().scan_once().await.unwrap(), JobsReport::default());
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delegator_who_did_not_vote_counts_with_the_delegates_vote_and_a_direct_vote_beats_the_delegation()
 {
    let w = world().await;
    let t0 = w.t0;
    let deadline = t0 + days(2);
    let anna = w.register("Anna", HOME, t0).await;
    let bert = w.register("Bert", HOME, t0).await;
    w.admin_verify(anna, t0).await;
    w.admin_verify(bert, t0).await;
    let mut verified = Vec::new();
    for name in ["Carl", "Dora", "Gero", "Hanna"] {
        let rolle = w.register(name, HOME, t0).await;
        w.peer_verify(rolle, [anna, bert], t0).await;
        verified.push(rolle);
    }
    let [carl, dora, gero, hanna] = verified[..] else {
        unreachable!()
    };
    let fritz = w.register("Fritz (nicht verifiziert)", HOME, t0).await;

    let antrag = w.file(anna, deadline, t0).await;
    let at = t0 + hours(1);
    // Carl delegates to Anna and does not vote: counted with Anna's ja.
    w.delegate(carl, anna, deadline + days(30), at).await;
    // Dora delegates to Bert but votes herself: her own ja counts, not Bert's nein.
    w.delegate(dora, bert, deadline + days(30), at).await;
    // Not counted: an unverified delegator, a revoked delegation, one that lapsed before the
    // deadline.
    w.delegate(fritz, anna, deadline + days(30), at).await;
    w.delegate(gero, anna, deadline + days(30), at).await;
    w.revoke(gero, at + hours(1)).await;
    w.delegate(hanna, anna, t0 + days(1), at).await;
    w.vote(antrag, anna, Vote::Ja, at).await;
    w.vote(antrag, bert, Vote::Nein, at).await;
    w.vote(antrag, dora, Vote::Ja, at).await;
    w.settle().await;

    w.clock.set(deadline + hours(1));
    let reports = w.restart_jobs().await;
    // The running worker's own scans are not in the reports: each at most once here.
    let total = sum(&reports);
    assert_eq!(total.failed, 0, "{reports:?}");
    assert!(
        total.antraege_decided <= 1 && total.delegations_expired <= 1,
        "{reports:?}"
    );
    assert_eq!(
        w.in_stream(AggregateType::Antrag, antrag, "AntragEntschieden")
            .await,
        1
    );

    // 4 voices (3 direct, Carl's delegated) of 6 active roles; 3 ja beat 1 nein.
    assert_eq!(
        w.string(&format!(
            "SELECT format('%s|%s|%s|%s|%s', status, ja, nein, participation, active_roles) \
             FROM antraege WHERE id = '{antrag}'"
        ))
        .await,
        "angenommen|3|1|4|6"
    );
    let mut expected = vec![
        format!("{anna}|{anna}|ja|-"),
        format!("{bert}|{bert}|nein|-"),
        format!("{carl}|{anna}|ja|{carl}"),
        format!("{dora}|{dora}|ja|-"),
    ];
    expected.sort();
    assert_eq!(
        w.lines(&format!(
            "SELECT format('%s|%s|%s|%s', voice, rolle, vote, coalesce(delegated_from::text, '-')) \
             FROM antrag_counted_votes WHERE antrag_id = '{antrag}' ORDER BY voice::text"
        ))
        .await,
        expected
    );
    // stimmen holds the direct votes only.
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM stimmen WHERE antrag_id = '{antrag}' AND delegated_from IS NULL"
        ))
        .await,
        3
    );
    assert_eq!(w.count("SELECT count(*) FROM stimmen").await, 3);
    // The recorded decision passes the audit.
    let recorded: domain::events::AntragEntschieden = serde_json::from_str(
        &w.string(&format!(
            "SELECT (envelope->'payload')::text FROM events_archive \
             WHERE aggregate_id = '{antrag}' AND type = 'AntragEntschieden'"
        ))
        .await,
    )
    .unwrap();
    domain::governance::audit_decision(&recorded).unwrap();
    assert!(!recorded.transitive);
    // Hanna's lapsed delegation was recorded as expired in the same start.
    assert_eq!(
        w.in_stream(
            AggregateType::Delegation,
            delegation_id(hanna),
            "DelegationAbgelaufen"
        )
        .await,
        1
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delegation_past_its_valid_until_is_recorded_as_expired_exactly_once() {
    let w = world().await;
    let t0 = w.t0;
    let (anna, bert, carl) = (
        w.register("Anna", HOME, t0).await,
        w.register("Bert", HOME, t0).await,
        w.register("Carl", HOME, t0).await,
    );
    let until = t0 + days(1);
    w.delegate(anna, bert, until, t0).await;
    w.delegate(carl, bert, t0 + days(10), t0).await;
    w.settle().await;

    w.clock.set(until - chrono::Duration::milliseconds(1));
    assert_eq!(w.jobs().scan_once().await.unwrap(), JobsReport::default());

    w.clock.set(t0 + days(3));
    let reports = w.restart_jobs().await;
    let total = sum(&reports);
    assert_eq!(total.failed, 0, "{reports:?}");
    assert!(total.delegations_expired <= 1, "{reports:?}");
    let chain = delegation_id(anna);
    assert_eq!(
        w.in_stream(AggregateType::Delegation, chain, "DelegationAbgelaufen")
            .await,
        1
    );
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM events_archive WHERE aggregate_id = '{chain}' \
             AND type = 'DelegationAbgelaufen' AND msg_id = 'ablauf:{anna}:{}' \
             AND envelope->'meta'->>'actor' = 'system'",
            until.timestamp_millis()
        ))
        .await,
        1
    );
    assert_eq!(
        w.lines(&format!(
            "SELECT format('%s|%s|%s', from_rolle, ended_reason, ended_at = valid_until) \
             FROM delegationen ORDER BY from_rolle = '{anna}' DESC"
        ))
        .await,
        [format!("{anna}|expired|t"), format!("{carl}||")]
    );
    assert_eq!(w.jobs().scan_once().await.unwrap(), JobsReport::default());
    w.finish().await;
}
