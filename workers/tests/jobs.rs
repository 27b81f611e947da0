#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The jobs worker (decay and yarn timers) against real NATS JetStream and PostgreSQL, with a
//! projection worker filling the tables it reads and a fake clock moved by the test.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::events::{FadenTyp, KnotenTyp};
use domain::faden::{Faden, FadenCommand, Spinnen, faden_id};
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};
use domain::{Actor, AggregateType};
use tokio::sync::watch;
use uuid::Uuid;
use workers::JobsReport;

use support::timers::{World, sum, world};
use support::{days, meta};

impl World {
    /// A Knoten tied at `at` (expiring 7 days later).
    async fn knoten(&self, at: DateTime<Utc>) -> Uuid {
        let id = Uuid::new_v4();
        let cmd = KnotenCommand::Create(CreateKnoten {
            id,
            title: format!("Knoten {id}"),
            typ: KnotenTyp::Ideen,
            content: None,
            lat: 50.98,
            lng: 11.32,
            now: at,
            ttl: days(7),
            fine_res: domain::geo::FINE_RES,
        });
        let meta = meta(Actor::Rolle(Uuid::new_v4()), format!("c-{id}"));
        self.bus
            .execute::<Knoten>(id, &cmd, meta, at, bus::Expect::NewChain)
            .await
            .unwrap();
        id
    }

    /// `rolle` spins (or renews) its `typ` thread to `knoten` at `at`.
    async fn spin(&self, rolle: Uuid, knoten: Uuid, typ: FadenTyp, at: DateTime<Utc>) -> Uuid {
        let id = faden_id(rolle, knoten, typ);
        let cmd = FadenCommand::Spinnen(Spinnen {
            rolle,
            knoten,
            typ,
            now: at,
            ttl: days(7),
            knoten_alive: true,
        });
        let meta = meta(
            Actor::Rolle(rolle),
            format!("s-{id}-{}", at.timestamp_millis()),
        );
        self.bus
            .execute::<Faden>(id, &cmd, meta, at, bus::Expect::ExistingChain)
            .await
            .unwrap();
        id
    }

    /// How many events of `event_type` the aggregate has in the archive.
    async fn archived(&self, aggregate: Uuid, event_type: &str) -> i64 {
        self.count(&format!(
            "SELECT count(*) FROM events_archive WHERE aggregate_id = '{aggregate}' AND type = '{event_type}'"
        ))
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_jobs_worker_down_for_days_decays_everything_due_exactly_once_at_start() {
    let w = world().await;
    let t0 = w.t0;
    let (anna, bernd) = (Uuid::new_v4(), Uuid::new_v4());

    let garten = w.knoten(t0).await;
    let werkstatt = w.knoten(t0).await;
    let later = w.knoten(t0 + days(5)).await; // expires t0+12d: not due at t0+10d
    let f1 = w.spin(anna, garten, FadenTyp::Interesse, t0).await;
    let f1_renewed_at = t0 + days(1);
    w.spin(anna, garten, FadenTyp::Interesse, f1_renewed_at)
        .await; // renewal: expires t0+8d
    let f2 = w.spin(bernd, garten, FadenTyp::Beitrag, t0 + days(1)).await;
    let f3 = w
        .spin(anna, werkstatt, FadenTyp::Mitarbeit, t0 + days(2))
        .await;
    let f4 = w
        .spin(bernd, later, FadenTyp::Interesse, t0 + days(5))
        .await; // expires t0+12d
    w.settle().await;
    assert_eq!(w.count("SELECT count(*) FROM faeden").await, 4);

    // One millisecond before the first expiry nothing is due.
    w.clock
        .set(t0 + days(7) - chrono::Duration::milliseconds(1));
    assert_eq!(w.jobs().scan_once().await.unwrap(), JobsReport::default());

    // The worker was "down" for three days; now it starts while a second instance scans too.
    w.clock.set(t0 + days(10));
    let reports = w.restart_jobs().await;
    w.wait_for(
        "SELECT count(*) FROM knoten WHERE decayed_at IS NOT NULL",
        2,
    )
    .await;
    w.wait_for(
        "SELECT count(*) FROM faeden WHERE decayed_at IS NOT NULL",
        3,
    )
    .await;

    let total = sum(&reports);
    assert_eq!(total.failed, 0, "{reports:?}");
    assert!(
        total.knoten_decayed <= 2 && total.faeden_decayed <= 3,
        "{reports:?}"
    );
    for k in [garten, werkstatt] {
        assert_eq!(w.archived(k, "KnotenVerfallen").await, 1, "Knoten {k}");
        assert_eq!(
            w.in_stream(AggregateType::Knoten, k, "KnotenVerfallen")
                .await,
            1
        );
    }
    for f in [f1, f2, f3] {
        assert_eq!(w.archived(f, "FadenVerfallen").await, 1, "Faden {f}");
        assert_eq!(
            w.in_stream(AggregateType::Faden, f, "FadenVerfallen").await,
            1
        );
    }
    assert_eq!(w.archived(later, "KnotenVerfallen").await, 0);
    assert_eq!(w.archived(f4, "FadenVerfallen").await, 0);
    // The renewed thread decayed at its renewed expiry, under the key of that expiry.
    let expired_at: String = w
        .string(&format!(
            "SELECT envelope->'payload'->>'expired_at' || '|' || msg_id AS r FROM events_archive \
                 WHERE aggregate_id = '{f1}' AND type = 'FadenVerfallen'"
        ))
        .await;
    let expires = f1_renewed_at + days(7);
    assert!(
        expired_at.ends_with(&format!("|verfall:{f1}:{}", expires.timestamp_millis())),
        "{expired_at}"
    );
    // Every decay event is the system's, at the fake now.
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM events_archive WHERE type IN ('KnotenVerfallen', 'FadenVerfallen') \
             AND envelope->'meta'->>'actor' = 'system' AND ts = '{}'",
            (t0 + days(10)).to_rfc3339()
        ))
        .await,
        5
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_third_distinct_role_twists_knoten_and_threads_into_yarn_that_never_decays() {
    let w = world().await;
    let t0 = w.t0;
    let roles: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let jobs = w.jobs();

    let garten = w.knoten(t0).await;
    let solo = w.knoten(t0).await;
    let a = w
        .spin(roles[0], garten, FadenTyp::Interesse, t0 + days(1))
        .await;
    let b = w
        .spin(roles[1], garten, FadenTyp::Beitrag, t0 + days(1))
        .await;
    // Three threads of one role to another Knoten are one role, not yarn.
    let mut solo_threads = Vec::new();
    for typ in [FadenTyp::Interesse, FadenTyp::Beitrag, FadenTyp::Mitarbeit] {
        solo_threads.push(w.spin(roles[0], solo, typ, t0 + days(1)).await);
    }
    w.settle().await;
    w.clock.set(t0 + days(2));
    let two_roles = jobs.scan_once().await.unwrap();
    assert_eq!(two_roles, JobsReport::default(), "two roles are not yarn");

    let c = w
        .spin(roles[2], garten, FadenTyp::Mitarbeit, t0 + days(2))
        .await;
    w.settle().await;
    let mut reports = vec![jobs.scan_once().await.unwrap()];
    assert_eq!(reports[0].knoten_twisted, 1, "{reports:?}");
    assert_eq!(reports[0].faeden_twisted, 3, "{reports:?}");
    // Again before and after the projection caught up: nothing twice.
    reports.push(jobs.scan_once().await.unwrap());
    w.wait_for(
        &format!("SELECT count(*) FROM knoten WHERE id = '{garten}' AND is_yarn"),
        1,
    )
    .await;
    w.wait_for("SELECT count(*) FROM faeden WHERE is_yarn", 3)
        .await;
    reports.push(jobs.scan_once().await.unwrap());
    assert_eq!(sum(&reports[1..]), JobsReport::default(), "{reports:?}");

    // A thread spun to a Knoten that is already yarn is twisted by the next scan.
    let d = w
        .spin(roles[3], garten, FadenTyp::Interesse, t0 + days(3))
        .await;
    w.settle().await;
    w.clock.set(t0 + days(3));
    let late = jobs.scan_once().await.unwrap();
    assert_eq!(
        (late.knoten_twisted, late.faeden_twisted),
        (0, 1),
        "{late:?}"
    );
    w.settle().await;

    // A month later: yarn has not decayed; the Knoten of one role's threads has.
    w.clock.set(t0 + days(30));
    let month = jobs.scan_once().await.unwrap();
    assert_eq!(
        (month.knoten_decayed, month.faeden_decayed),
        (1, 3),
        "{month:?}"
    );
    w.settle().await;
    assert_eq!(jobs.scan_once().await.unwrap(), JobsReport::default());

    assert_eq!(w.archived(garten, "KnotenVerzwirnt").await, 1);
    assert_eq!(w.archived(garten, "KnotenVerfallen").await, 0);
    let roles_in_event: String = w
        .string(&format!(
            "SELECT (envelope->'payload'->'roles')::text AS r FROM events_archive \
                 WHERE aggregate_id = '{garten}' AND type = 'KnotenVerzwirnt'"
        ))
        .await;
    let mut first_three = roles[..3].to_vec();
    first_three.sort();
    assert_eq!(
        roles_in_event,
        serde_json::to_string(&first_three)
            .unwrap()
            .replace(',', ", ")
    );
    for f in [a, b, c, d] {
        assert_eq!(w.archived(f, "FadenVerzwirnt").await, 1, "Faden {f}");
        assert_eq!(w.archived(f, "FadenVerfallen").await, 0, "Faden {f}");
    }
    assert_eq!(w.archived(solo, "KnotenVerzwirnt").await, 0);
    assert_eq!(w.archived(solo, "KnotenVerfallen").await, 1);
    for f in solo_threads {
        assert_eq!(w.archived(f, "FadenVerzwirnt").await, 0);
        assert_eq!(w.archived(f, "FadenVerfallen").await, 1);
    }
    assert_eq!(
        w.count("SELECT count(*) FROM knoten WHERE decayed_at IS NULL AND is_yarn")
            .await,
        1
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_worker_stops_when_told() {
    let w = world().await;
    let (stop, rx) = watch::channel(false);
    let running = tokio::spawn(w.jobs().run(rx));
    tokio::time::sleep(Duration::from_millis(250)).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the worker stops within a tick")
        .unwrap();
    w.finish().await;
}
