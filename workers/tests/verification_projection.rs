#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat's projections onto `rollen` against real PostgreSQL: peer verification, admin
//! rights granted by admin actions, and each role's latest activity, also across streams and
//! rebuilds. Events are built directly as envelopes on their chains.

mod support;

use domain::events::{
    AdminActionExecuted, AntragGestellt, FlagRaised, FlagTarget, FlagTargetKind, RolleVerifiziert,
    StimmeAbgegeben, VerifizierungBestaetigt, Vote,
};
use domain::verification::{ACTION_GRANT_ADMIN, ACTION_VERIFY_ROLLE};
use serde_json::json;
use uuid::Uuid;

use support::governance::{Person, ms, t0, world};
use support::{seal, secs, weberei_h3};

#[tokio::test]
async fn verification_admin_rights_and_the_latest_activity_of_a_role_are_projected_onto_rollen() {
    let mut w = world().await;
    let t = t0();
    let [admin, anna, bert, carl] = [
        w.person().await,
        w.person().await,
        w.person().await,
        w.person().await,
    ];
    let mut events = vec![
        w.register(admin, "Admin", t),
        w.register(anna, "Anna", t),
        w.register(bert, "Bert", t),
        w.register(carl, "Carl", t),
    ];
    // The admin CLI: grant admin rights, verify the first two roles.
    let grant = w.system(
        Uuid::new_v4(),
        &AdminActionExecuted {
            action: ACTION_GRANT_ADMIN.into(),
            target: Some(admin.id),
            detail: "erste Admin-Rolle".into(),
        },
        t + secs(1),
    );
    events.push(grant);
    for (n, p) in [anna, bert].into_iter().enumerate() {
        let action = w.system(
            Uuid::new_v4(),
            &AdminActionExecuted {
                action: ACTION_VERIFY_ROLLE.into(),
                target: Some(p.id),
                detail: String::new(),
            },
            t + secs(2 + n as i64),
        );
        let by_admin_action = Some(action.id);
        events.push(action);
        events.push(w.system(
            p.id,
            &RolleVerifiziert {
                verified_by: vec![],
                by_admin_action,
            },
            t + secs(2 + n as i64),
        ));
    }
    // Anna and Bert confirm Carl.
    events.push(w.by(
        carl.id,
        &VerifizierungBestaetigt { by: anna.id },
        anna.id,
        t + secs(10),
    ));
    events.push(w.by(
        carl.id,
        &VerifizierungBestaetigt { by: bert.id },
        bert.id,
        t + secs(20),
    ));
    events.push(w.by(
        carl.id,
        &RolleVerifiziert {
            verified_by: vec![anna.id, bert.id],
            by_admin_action: None,
        },
        bert.id,
        t + secs(20),
    ));
    // Anna's vote on another stream is her latest event.
    let antrag = Uuid::new_v4();
    events.push(w.by(
        antrag,
        &AntragGestellt {
            by: bert.id,
            title: "Bücherschrank".into(),
            content: json!({}),
            weavery_h3: weberei_h3(),
            decision_deadline: t + chrono::Duration::days(7),
        },
        bert.id,
        t + secs(25),
    ));
    events.push(w.by(
        antrag,
        &StimmeAbgegeben {
            by: anna.id,
            vote: Vote::Ja,
        },
        anna.id,
        t + secs(30),
    ));
    w.apply(&events).await;

    let rolle = |p: Person| {
        format!(
            "SELECT format('%s|%s|%s|%s|%s', is_admin, verified_by, verification_confirmations, \
                    verified_at IS NOT NULL, {}) FROM rollen WHERE id = '{}'",
            ms("last_active_at"),
            p.id
        )
    };
    let at = |d: i64| (t + secs(d)).timestamp_millis();
    assert_eq!(
        w.text(&rolle(admin)).await.unwrap(),
        format!("t|{{}}|{{}}|f|{}", at(0))
    );
    assert_eq!(
        w.text(&rolle(anna)).await.unwrap(),
        format!("f|{{}}|{{}}|t|{}", at(30))
    );
    assert_eq!(
        w.text(&rolle(carl)).await.unwrap(),
        format!(
            "f|{{{},{}}}|{{{},{}}}|t|{}",
            anna.id,
            bert.id,
            anna.id,
            bert.id,
            at(0)
        )
    );
    assert_eq!(
        w.text(&rolle(bert)).await.unwrap(),
        format!("f|{{}}|{{}}|t|{}", at(25))
    );

    // Activity only moves forward: an older event applied later does not move it back.
    let older = w.by(
        Uuid::new_v4(),
        &FlagRaised {
            by: anna.id,
            target: FlagTarget {
                kind: FlagTargetKind::Rolle,
                id: carl.id,
            },
            reason: seal(&anna.key, anna.id, "Doppelte Rolle?"),
            author_of_target: Some(carl.id),
        },
        anna.id,
        t + secs(5),
    );
    w.apply(&[older]).await;
    assert!(
        w.text(&rolle(anna))
            .await
            .unwrap()
            .ends_with(&format!("|{}", at(30)))
    );

    // The streams are projected independently: Eva's vote (governance) arrives before her
    // registration (social) created her row, and still counts as her latest activity.
    let eva = w.person().await;
    let vote = w.by(
        antrag,
        &StimmeAbgegeben {
            by: eva.id,
            vote: Vote::Nein,
        },
        eva.id,
        t + secs(40),
    );
    w.apply(&[vote]).await;
    let registered = w.register(eva, "Eva", t + secs(35));
    w.apply(&[registered]).await;
    assert_eq!(
        w.text(&rolle(eva)).await.unwrap(),
        format!("f|{{}}|{{}}|f|{}", at(40))
    );

    let before = w.state().await;
    w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(w.state().await, before);
    w.finish().await;
}
