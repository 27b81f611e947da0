//! The entities of the Webrat's tables (einsprueche, antrag_counted_votes, flags,
//! rolle_activity) round-trip through a migrated database.

// Integration tests: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use entity::prelude::*;
use entity::sea_orm_active_enums::Vote;
use entity::*;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

fn now() -> DateTime<FixedOffset> {
    // PostgreSQL keeps microseconds.
    Utc::now().trunc_subsecs(6).fixed_offset()
}

#[tokio::test]
async fn objections_counted_votes_flags_and_activity_round_trip_through_a_migrated_database() {
    let db = testkit::fresh_database().await;
    let conn = &db.conn;
    let t = now();
    let (antrag, anna, bert) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    let einspruch = einsprueche::Model {
        id: Uuid::new_v4(),
        antrag_id: antrag,
        by: anna,
        reason: Some("Zu laut für die Nachbarschaft".into()),
        created_at: t,
    };
    let shredded = einsprueche::Model {
        id: Uuid::new_v4(),
        reason: None,
        ..einspruch.clone()
    };
    for m in [&einspruch, &shredded] {
        einsprueche::ActiveModel::from(m.clone())
            .insert(conn)
            .await
            .unwrap();
        assert_eq!(
            Einsprueche::find_by_id(m.id)
                .one(conn)
                .await
                .unwrap()
                .as_ref(),
            Some(m)
        );
    }

    let direct = antrag_counted_votes::Model {
        antrag_id: antrag,
        voice: anna,
        rolle: anna,
        vote: Vote::Ja,
        delegated_from: None,
    };
    let delegated = antrag_counted_votes::Model {
        voice: bert,
        delegated_from: Some(bert),
        ..direct.clone()
    };
    for m in [&direct, &delegated] {
        antrag_counted_votes::ActiveModel::from(m.clone())
            .insert(conn)
            .await
            .unwrap();
    }
    let mut audit = AntragCountedVotes::find()
        .filter(antrag_counted_votes::Column::AntragId.eq(antrag))
        .all(conn)
        .await
        .unwrap();
    audit.sort_by_key(|m| m.delegated_from.is_some());
    assert_eq!(audit, vec![direct.clone(), delegated]);
    assert_eq!(
        AntragCountedVotes::find_by_id((antrag, anna))
            .one(conn)
            .await
            .unwrap(),
        Some(direct)
    );

    let open = flags::Model {
        id: Uuid::new_v4(),
        target_kind: "knoten".into(),
        target_id: Uuid::new_v4(),
        reason: Some("Werbung".into()),
        raised_by: anna,
        author_of_target: Some(bert),
        created_at: t,
        outcome: None,
        resolution_reason: None,
        resolved_by: None,
        resolved_at: None,
        map_hidden_at: None,
    };
    let resolved = flags::Model {
        id: Uuid::new_v4(),
        target_kind: "nachricht".into(),
        outcome: Some("hidden".into()),
        resolution_reason: Some("Beleidigend".into()),
        resolved_by: Some(Uuid::new_v4()),
        resolved_at: Some(t),
        author_of_target: None,
        ..open.clone()
    };
    for m in [&open, &resolved] {
        flags::ActiveModel::from(m.clone())
            .insert(conn)
            .await
            .unwrap();
        assert_eq!(
            Flags::find_by_id(m.id).one(conn).await.unwrap().as_ref(),
            Some(m)
        );
    }

    let activity = rolle_activity::Model {
        rolle_id: anna,
        last_active_at: t,
    };
    rolle_activity::ActiveModel::from(activity.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(
        RolleActivity::find_by_id(anna).one(conn).await.unwrap(),
        Some(activity)
    );

    db.drop_db().await;
}
