#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The social projections of renewal, design, decay and yarn (knoten, faeden) against real
//! PostgreSQL: a Faden is renewed, decays, revives and twists; a Knoten is designed, decays
//! and twists. Events are built directly as envelopes on their chains.

mod support;

use chrono::{DateTime, Utc};
use domain::events::{
    FadenGesponnen, FadenTyp, FadenVerfallen, FadenVerzwirnt, KnotenGestaltet, KnotenVerfallen,
    KnotenVerzwirnt,
};
use domain::{Actor, Envelope};
use serde_json::json;
use uuid::Uuid;

use support::now;
use support::social::{World, world};

#[tokio::test]
async fn a_faden_is_renewed_decays_revives_and_twists_and_a_knoten_is_designed_decays_and_twists() {
    let mut w = world().await;
    let projector = w.projector();
    let (rolle, knoten, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let faden = Uuid::new_v4();
    let t0 = now() - chrono::Duration::days(20);
    let day = |n: i64| t0 + chrono::Duration::days(n);
    let spin = |at: DateTime<Utc>| FadenGesponnen {
        from_rolle: rolle,
        to_knoten: knoten,
        typ: FadenTyp::Mitarbeit,
        expires_at: at + chrono::Duration::days(7),
    };
    let actor = Actor::Rolle(rolle);
    let mut all = Vec::new();
    let mut apply = async |w: &mut World, envs: Vec<Envelope>| {
        let batch = w.batch(&envs);
        let report = projector.apply_batch(&batch).await.unwrap();
        assert_eq!(
            (report.applied, report.skipped, report.dead.len()),
            (envs.len(), 0, 0),
            "{:?}",
            report.dead
        );
        all.extend(batch);
    };
    let faden_row = async |w: &World| {
        let r = w
            .row(&format!(
                "SELECT from_rolle, to_knoten, typ::text AS typ, created_at, expires_at, renewed_at, \
                 decayed_at, is_yarn, yarn_at FROM faeden WHERE id = '{faden}'"
            ))
            .await;
        let at = |c: &str| r.try_get::<Option<DateTime<Utc>>>("", c).unwrap();
        assert_eq!(r.try_get::<Uuid>("", "from_rolle").unwrap(), rolle);
        assert_eq!(r.try_get::<Uuid>("", "to_knoten").unwrap(), knoten);
        assert_eq!(r.try_get::<String>("", "typ").unwrap(), "mitarbeit");
        (
            at("created_at"),
            at("expires_at"),
            at("renewed_at"),
            at("decayed_at"),
            r.try_get::<bool>("", "is_yarn").unwrap(),
            at("yarn_at"),
        )
    };

    let e = vec![
        w.knoten(knoten, t0),
        w.knoten(other, t0),
        w.chains.event(faden, &spin(t0), actor, t0),
    ];
    apply(&mut w, e).await;
    assert_eq!(
        faden_row(&w).await,
        (Some(t0), Some(day(7)), None, None, false, None)
    );

    // Spinning the same thread again renews it.
    let e = vec![w.chains.event(faden, &spin(day(2)), actor, day(2))];
    apply(&mut w, e).await;
    assert_eq!(
        faden_row(&w).await,
        (Some(t0), Some(day(9)), Some(day(2)), None, false, None)
    );

    // It decays, and spinning it again revives it.
    let e = vec![w.chains.event(
        faden,
        &FadenVerfallen { expired_at: day(9) },
        Actor::System,
        day(9),
    )];
    apply(&mut w, e).await;
    assert_eq!(
        faden_row(&w).await,
        (
            Some(t0),
            Some(day(9)),
            Some(day(2)),
            Some(day(9)),
            false,
            None
        )
    );
    let e = vec![w.chains.event(faden, &spin(day(10)), actor, day(10))];
    apply(&mut w, e).await;
    assert_eq!(
        faden_row(&w).await,
        (Some(t0), Some(day(17)), Some(day(10)), None, false, None)
    );

    // The design area moves forward by version; the Knoten is twisted with its thread; the
    // other Knoten decays.
    let e = vec![
        w.chains.event(
            knoten,
            &KnotenGestaltet {
                version: 1,
                content: json!({"plan": "Beete"}),
            },
            actor,
            day(11),
        ),
        w.chains.event(
            knoten,
            &KnotenGestaltet {
                version: 2,
                content: json!({"plan": "Beete und Kompost"}),
            },
            actor,
            day(12),
        ),
        w.chains.event(
            knoten,
            &KnotenVerzwirnt {
                roles: vec![rolle, Uuid::new_v4(), Uuid::new_v4()],
            },
            Actor::System,
            day(13),
        ),
        w.chains
            .event(faden, &FadenVerzwirnt { knoten }, Actor::System, day(13)),
        w.chains.event(
            other,
            &KnotenVerfallen { expired_at: day(7) },
            Actor::System,
            day(7),
        ),
    ];
    apply(&mut w, e).await;
    assert_eq!(
        faden_row(&w).await,
        (
            Some(t0),
            Some(day(17)),
            Some(day(10)),
            None,
            true,
            Some(day(13))
        )
    );
    let r = w
        .row(&format!(
            "SELECT content->>'plan' AS plan, design_version, updated_at, is_yarn, yarn_at, decayed_at \
             FROM knoten WHERE id = '{knoten}'"
        ))
        .await;
    assert_eq!(
        r.try_get::<String>("", "plan").unwrap(),
        "Beete und Kompost"
    );
    assert_eq!(r.try_get::<i32>("", "design_version").unwrap(), 2);
    assert_eq!(
        r.try_get::<DateTime<Utc>>("", "updated_at").unwrap(),
        day(12)
    );
    assert!(r.try_get::<bool>("", "is_yarn").unwrap());
    assert_eq!(
        r.try_get::<Option<DateTime<Utc>>>("", "yarn_at").unwrap(),
        Some(day(13))
    );
    assert_eq!(
        r.try_get::<Option<DateTime<Utc>>>("", "decayed_at")
            .unwrap(),
        None
    );
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM knoten WHERE id = '{other}' AND decayed_at = '{}' AND NOT is_yarn",
            day(7).to_rfc3339()
        ))
        .await,
        1
    );

    // Redelivering everything changes nothing; a rebuild gives the same state.
    let before = w.state().await;
    let again = projector.apply_batch(&all).await.unwrap();
    assert_eq!(
        (again.applied, again.skipped, again.dead.len()),
        (0, all.len(), 0)
    );
    assert_eq!(w.state().await, before);
    assert_eq!(
        projector.rebuild_from_archive().await.unwrap(),
        all.len() as u64
    );
    assert_eq!(w.state().await, before);
    w.finish().await;
}
