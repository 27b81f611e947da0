//! The entities read and write a migrated database: every column, enum and array round-trips.

// Integration tests: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, FixedOffset, SubsecRound, Utc};
use entity::prelude::*;
use entity::sea_orm_active_enums::*;
use entity::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, NotSet, QueryFilter,
    QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

fn now() -> DateTime<FixedOffset> {
    // PostgreSQL keeps microseconds.
    Utc::now().trunc_subsecs(6).fixed_offset()
}

#[tokio::test]
async fn every_entity_round_trips_through_a_migrated_database() {
    let db = testkit::fresh_database().await;
    let conn = &db.conn;
    let t = now();

    let rolle = rollen::Model {
        id: Uuid::new_v4(),
        name: "Jörg".into(),
        h3: 0x08c1_f05a_0000_0fff,
        verified_by: vec![Uuid::new_v4(), Uuid::new_v4()],
        verified_at: Some(t),
        created_at: t,
        // The PostGIS point is read and written with SQL (see the crate doc); NULL here.
        point: None,
        deleted_at: None,
        last_active_at: Some(t),
        is_admin: false,
        verification_confirmations: vec![Uuid::new_v4()],
        hidden_at: None,
    };
    // The geography column cannot take a text NULL: leave it out of the INSERT.
    let mut new_rolle = rollen::ActiveModel::from(rolle.clone());
    new_rolle.point = NotSet;
    new_rolle.insert(conn).await.unwrap();
    // A NULL point decodes; a set one would not (the crate doc says how to read it).
    assert_eq!(
        Rollen::find_by_id(rolle.id).one(conn).await.unwrap(),
        Some(rolle.clone())
    );

    // knoten.point is NOT NULL and unmapped: insert with raw SQL, then use the entity.
    let knoten_id = Uuid::new_v4();
    conn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO knoten (id, typ, title, point, h3, created_by, created_at, expires_at, updated_at)
         VALUES ($1, 'ressource', 'Lastenrad', ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography,
                 $4, $5, $6, $7, $6)",
        [
            knoten_id.into(),
            13.405_f64.into(),
            52.52_f64.into(),
            42_i64.into(),
            rolle.id.into(),
            t.into(),
            (t + Duration::days(7)).into(),
        ],
    ))
    .await
    .unwrap();
    // Selected columns only: sqlx cannot decode the geography one as the generated `String`.
    let (typ, content, is_yarn, design_version): (KnotenTyp, serde_json::Value, bool, i32) =
        Knoten::find_by_id(knoten_id)
            .select_only()
            .columns([
                knoten::Column::Typ,
                knoten::Column::Content,
                knoten::Column::IsYarn,
                knoten::Column::DesignVersion,
            ])
            .into_tuple()
            .one(conn)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(typ, KnotenTyp::Ressource);
    assert_eq!(content, serde_json::json!({}));
    assert!(!is_yarn);
    assert_eq!(design_version, 0);
    assert!(
        Knoten::find_by_id(knoten_id).one(conn).await.is_err(),
        "the crate doc says a whole knoten row does not decode; if it does now, update the doc"
    );
    knoten::Entity::update_many()
        .col_expr(
            knoten::Column::IsYarn,
            sea_orm::sea_query::Expr::value(true),
        )
        .col_expr(
            knoten::Column::Content,
            sea_orm::sea_query::Expr::value(serde_json::json!({"design": [1, 2]})),
        )
        .filter(knoten::Column::Id.eq(knoten_id))
        .exec(conn)
        .await
        .unwrap();
    let is_yarn: Option<bool> = Knoten::find_by_id(knoten_id)
        .select_only()
        .column(knoten::Column::IsYarn)
        .into_tuple()
        .one(conn)
        .await
        .unwrap();
    assert_eq!(is_yarn, Some(true));
    let point = conn
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT ST_X(point::geometry) AS lon, ST_Y(point::geometry) AS lat FROM knoten WHERE id = $1",
            [knoten_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert!((point.try_get::<f64>("", "lon").unwrap() - 13.405).abs() < 1e-9);
    assert!((point.try_get::<f64>("", "lat").unwrap() - 52.52).abs() < 1e-9);

    let faden = faeden::Model {
        id: Uuid::new_v4(),
        from_rolle: rolle.id,
        to_knoten: knoten_id,
        typ: FadenTyp::Mitarbeit,
        created_at: t,
        expires_at: t + Duration::days(7),
        is_yarn: false,
        decayed_at: None,
        renewed_at: Some(t),
        yarn_at: None,
    };
    faeden::ActiveModel::from(faden.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(
        Faeden::find()
            .filter(faeden::Column::ToKnoten.eq(knoten_id))
            .all(conn)
            .await
            .unwrap(),
        vec![faden.clone()]
    );
    assert_eq!(
        Rollen::find_by_id(faden.from_rolle)
            .one(conn)
            .await
            .unwrap(),
        Some(rolle.clone())
    );

    let antrag = antraege::Model {
        id: Uuid::new_v4(),
        weavery_h3: 7,
        title: "Bank am Platz".into(),
        content: serde_json::json!({"text": "…"}),
        status: AntragStatus::QuorumVerfehlt,
        created_by: Some(rolle.id),
        created_at: t,
        decision_deadline: t + Duration::days(14),
        decided_at: Some(t),
        quorum_reached: Some(false),
        ja: 1,
        nein: 0,
        enthaltung: 2,
        participation: Some(3),
        active_roles: Some(40),
        quorum_percent: Some(10),
        hidden_at: None,
    };
    antraege::ActiveModel::from(antrag.clone())
        .insert(conn)
        .await
        .unwrap();
    let stimme = stimmen::Model {
        id: Uuid::new_v4(),
        antrag_id: antrag.id,
        rolle_id: rolle.id,
        vote: Vote::Enthaltung,
        delegated_from: Some(Uuid::new_v4()),
        created_at: t,
    };
    stimmen::ActiveModel::from(stimme.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(
        Stimmen::find()
            .filter(stimmen::Column::AntragId.eq(antrag.id))
            .all(conn)
            .await
            .unwrap(),
        vec![stimme]
    );

    let delegation = delegationen::Model {
        id: Uuid::new_v4(),
        from_rolle: rolle.id,
        to_rolle: Uuid::new_v4(),
        valid_until: t + Duration::days(30),
        created_at: t,
        revoked_at: None,
        ended_at: None,
        ended_reason: None,
    };
    delegationen::ActiveModel::from(delegation.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(
        Delegationen::find().all(conn).await.unwrap(),
        vec![delegation]
    );

    let zahlung = zahlungen::Model {
        id: Uuid::new_v4(),
        rolle_id: rolle.id,
        knoten_id: Some(knoten_id),
        betrag_cents: 500,
        status: ZahlungStatus::Settled,
        source: ZahlungSource::Sepa,
        reference: Some("WG-ABC123".into()),
        created_at: t,
        settled_at: Some(t),
    };
    zahlungen::ActiveModel::from(zahlung.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(
        Zahlungen::find().all(conn).await.unwrap(),
        vec![zahlung.clone()]
    );
    let mut zero = zahlung;
    zero.id = Uuid::new_v4();
    zero.betrag_cents = 0;
    assert!(
        zahlungen::ActiveModel::from(zero)
            .insert(conn)
            .await
            .is_err()
    );

    let event = events_archive::Model {
        id: "01JABCDEF0123456789ABCDEFG".into(),
        msg_id: "idem-1".into(),
        event_type: "KnotenGeknuepft".into(),
        version: 1,
        aggregate_id: knoten_id,
        aggregate_type: "knoten".into(),
        prev_hash: None,
        hash: "ff".repeat(32),
        ts: t,
        subject: format!("wg.{}.social.knoten.{knoten_id}", testkit::unique_ort()),
        stream: "wg_x_social".into(),
        stream_seq: 1,
        envelope: serde_json::json!({"type": "KnotenGeknuepft"}),
        archived_at: t,
    };
    let txn = conn.begin().await.unwrap();
    events_archive_keys::ActiveModel::from(events_archive_keys::Model {
        id: event.id.clone(),
        msg_id: event.msg_id.clone(),
        ts: event.ts,
    })
    .insert(&txn)
    .await
    .unwrap();
    events_archive::ActiveModel::from(event.clone())
        .insert(&txn)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        EventsArchive::find().all(conn).await.unwrap(),
        vec![event.clone()]
    );
    assert_eq!(EventsArchiveKeys::find().all(conn).await.unwrap().len(), 1);

    let head = aggregate_heads::Model {
        aggregate_id: knoten_id,
        aggregate_type: "knoten".into(),
        last_hash: event.hash.clone(),
        last_event_id: event.id.clone(),
        last_seq: 1,
        stream: event.stream.clone(),
        event_count: 1,
        updated_at: t,
    };
    aggregate_heads::ActiveModel::from(head.clone())
        .insert(conn)
        .await
        .unwrap();
    assert_eq!(AggregateHeads::find().all(conn).await.unwrap(), vec![head]);

    db.drop_db().await;
}
