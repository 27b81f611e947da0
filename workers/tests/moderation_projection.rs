#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Moderation in the projections against real PostgreSQL: resolved flags hide their content
//! from queries and keep it in the archive; shredding a role blanks the reasons it wrote.
//! Events are built directly as envelopes on their chains.

mod support;

use domain::events::{
    AntragGestellt, EinspruchEingegangen, FlagOutcome, FlagRaised, FlagResolved, FlagTarget,
    FlagTargetKind, KnotenGeknuepft, KnotenTyp, NachrichtGeschrieben, UserDeleted,
};
use serde_json::json;
use uuid::Uuid;

use support::governance::{point, t0, world};
use support::{HOME, seal, secs, weberei_h3};

#[tokio::test]
async fn resolved_flags_hide_content_from_queries_keep_it_in_the_archive_and_shredding_blanks_their_reasons()
 {
    let mut w = world().await;
    let t = t0();
    let [anna, bert, carl] = [w.person().await, w.person().await, w.person().await];
    let knoten = Uuid::new_v4();
    let nachricht = Uuid::new_v4();
    let antrag = Uuid::new_v4();
    let cell = point().cell(domain::geo::FINE_RES);
    let mut events = vec![
        w.register(anna, "Anna", t),
        w.register(bert, "Bert", t),
        w.register(carl, "Carl", t),
        w.by(
            knoten,
            &KnotenGeknuepft {
                title: "Flohmarkt".into(),
                typ: KnotenTyp::Event,
                content: json!({}),
                lat: HOME.0,
                lng: HOME.1,
                h3: cell.to_string(),
                expires_at: t + chrono::Duration::days(7),
            },
            carl.id,
            t,
        ),
        w.by(
            knoten,
            &NachrichtGeschrieben {
                nachricht_id: nachricht,
                author: carl.id,
                text: seal(&carl.key, carl.id, "Kauft alles bei mir!"),
                mentions: vec![],
            },
            carl.id,
            t + secs(1),
        ),
        w.by(
            antrag,
            &AntragGestellt {
                by: carl.id,
                title: "Parkplatz statt Wiese".into(),
                content: json!({}),
                weavery_h3: weberei_h3(),
                decision_deadline: t + chrono::Duration::days(7),
            },
            carl.id,
            t + secs(2),
        ),
        w.by(
            antrag,
            &EinspruchEingegangen {
                by: anna.id,
                reason: seal(&anna.key, anna.id, "Die Wiese ist ein Biotop"),
            },
            anna.id,
            t + secs(3),
        ),
    ];
    // Anna flags all four; Bert resolves: three hidden, the Antrag kept.
    let targets = [
        (FlagTargetKind::Knoten, knoten, FlagOutcome::Hidden),
        (FlagTargetKind::Nachricht, nachricht, FlagOutcome::Hidden),
        (FlagTargetKind::Antrag, antrag, FlagOutcome::Kept),
        (FlagTargetKind::Rolle, carl.id, FlagOutcome::Hidden),
    ];
    let mut flags = Vec::new();
    for (n, (kind, id, outcome)) in targets.into_iter().enumerate() {
        let flag = Uuid::new_v4();
        flags.push(flag);
        let n = n as i64;
        events.push(w.by(
            flag,
            &FlagRaised {
                by: anna.id,
                target: FlagTarget { kind, id },
                reason: seal(&anna.key, anna.id, &format!("Meldung {n}")),
                author_of_target: Some(carl.id),
            },
            anna.id,
            t + secs(10 + n),
        ));
        events.push(w.by(
            flag,
            &FlagResolved {
                by: bert.id,
                outcome,
                reason: seal(&bert.key, bert.id, &format!("Entscheidung {n}")),
            },
            bert.id,
            t + secs(20 + n),
        ));
    }
    w.apply(&events).await;

    let hidden = |table: &str, id: Uuid| {
        format!("SELECT count(*) FROM {table} WHERE id = '{id}' AND hidden_at IS NOT NULL")
    };
    let visible = |table: &str, id: Uuid| {
        format!("SELECT count(*) FROM {table} WHERE id = '{id}' AND hidden_at IS NULL")
    };
    assert_eq!(w.count(&hidden("knoten", knoten)).await, 1);
    assert_eq!(w.count(&hidden("nachrichten", nachricht)).await, 1);
    assert_eq!(w.count(&hidden("rollen", carl.id)).await, 1);
    assert_eq!(w.count(&visible("antraege", antrag)).await, 1);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM knoten WHERE id = '{knoten}' AND hidden_at = '{}'",
            (t + secs(20)).to_rfc3339()
        ))
        .await,
        1
    );
    // Hidden from queries, kept in the archive, readable there as it was.
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM events_archive WHERE aggregate_id = '{knoten}' AND type = 'KnotenGeknuepft'"
        ))
        .await,
        1
    );
    assert_eq!(
        w.text(&format!(
            "SELECT text FROM nachrichten WHERE id = '{nachricht}'"
        ))
        .await
        .as_deref(),
        Some("Kauft alles bei mir!")
    );
    let flag_rows = w
        .lines(&format!(
            "SELECT format('%s|%s|%s|%s|%s|%s|%s', target_kind, target_id, reason, raised_by, \
                    author_of_target, outcome, resolution_reason) \
             FROM flags WHERE resolved_by = '{}' AND resolved_at IS NOT NULL ORDER BY created_at",
            bert.id
        ))
        .await;
    let expected: Vec<String> = targets
        .iter()
        .enumerate()
        .map(|(n, (kind, id, outcome))| {
            format!(
                "{}|{id}|Meldung {n}|{}|{}|{}|Entscheidung {n}",
                kind.as_str(),
                anna.id,
                carl.id,
                outcome.as_str()
            )
        })
        .collect();
    assert_eq!(flag_rows, expected);
    assert_eq!(
        w.count("SELECT count(*) FROM flags WHERE outcome IS NULL")
            .await,
        0
    );

    // A rebuild replays governance before social: the hides still land on their rows.
    let before = w.state().await;
    w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(w.state().await, before);

    // Anna deletes herself: her flag reasons and her objection become unreadable; Bert's
    // resolutions stay.
    let deleted = w.by(
        anna.id,
        &UserDeleted {
            alias: "Rolle-a".into(),
        },
        anna.id,
        t + secs(60),
    );
    w.apply(&[deleted]).await;
    assert_eq!(
        w.count("SELECT count(*) FROM flags WHERE reason IS NULL")
            .await,
        4
    );
    assert_eq!(
        w.count("SELECT count(*) FROM flags WHERE resolution_reason IS NOT NULL")
            .await,
        4
    );
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM einsprueche WHERE antrag_id = '{antrag}' AND reason IS NULL"
        ))
        .await,
        1
    );
    // Bert too: his resolution reasons go.
    let deleted = w.by(
        bert.id,
        &UserDeleted {
            alias: "Rolle-b".into(),
        },
        bert.id,
        t + secs(61),
    );
    w.apply(&[deleted]).await;
    assert_eq!(
        w.count("SELECT count(*) FROM flags WHERE resolution_reason IS NULL")
            .await,
        4
    );
    // ... and a rebuild keeps them unreadable.
    let before = w.state().await;
    w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(w.state().await, before);
    assert_eq!(
        w.count(
            "SELECT count(*) FROM flags WHERE reason IS NOT NULL OR resolution_reason IS NOT NULL"
        )
        .await,
        0
    );
    w.finish().await;
}
