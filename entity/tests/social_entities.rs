//! The entities of the social tables (nachrichten, rolle_keys, sessions) round-trip through a
//! migrated database.

// Integration tests: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use entity::prelude::*;
use entity::*;
use sea_orm::{ActiveModelTrait, EntityTrait};
use uuid::Uuid;

fn now() -> DateTime<FixedOffset> {
    // PostgreSQL keeps microseconds.
    Utc::now().trunc_subsecs(6).fixed_offset()
}

#[tokio::test]
async fn messages_keys_and_sessions_round_trip_through_a_migrated_database() {
    let db = testkit::fresh_database().await;
    let conn = &db.conn;
    let t = now();
    let rolle = Uuid::new_v4();

    let nachricht = nachrichten::Model {
        id: Uuid::new_v4(),
        knoten_id: Uuid::new_v4(),
        author: rolle,
        text: Some("Wer bringt Werkzeug mit?".into()),
        mentions: vec![Uuid::new_v4(), Uuid::new_v4()],
        created_at: t,
        event_id: "01JDZ0000000000000000000AA".into(),
        hidden_at: None,
    };
    let shredded = nachrichten::Model {
        id: Uuid::new_v4(),
        text: None,
        mentions: vec![],
        ..nachricht.clone()
    };
    for m in [&nachricht, &shredded] {
        nachrichten::ActiveModel::from(m.clone())
            .insert(conn)
            .await
            .unwrap();
        assert_eq!(
            Nachrichten::find_by_id(m.id)
                .one(conn)
                .await
                .unwrap()
                .as_ref(),
            Some(m)
        );
    }

    let key = rolle_keys::Model {
        rolle_id: rolle,
        key: Some(vec![7u8; 32]),
        created_at: t,
        destroyed_at: None,
    };
    rolle_keys::ActiveModel::from(key.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(
        RolleKeys::find_by_id(rolle).one(conn).await.unwrap(),
        Some(key)
    );

    let session = sessions::Model {
        id: Uuid::new_v4(),
        rolle_id: rolle,
        token_hash: "a".repeat(64),
        created_at: t,
        last_seen_at: t,
        revoked_at: Some(t),
        ua_hash: Some("b".repeat(64)),
        label: Some("Laptop".into()),
    };
    sessions::ActiveModel::from(session.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(
        Sessions::find_by_id(session.id).one(conn).await.unwrap(),
        Some(session.clone())
    );
    // The token hash is unique.
    let twin = sessions::Model {
        id: Uuid::new_v4(),
        ..session
    };
    assert!(
        sessions::ActiveModel::from(twin)
            .insert(conn)
            .await
            .is_err()
    );

    db.drop_db().await;
}
