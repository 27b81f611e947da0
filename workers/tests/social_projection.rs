#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The social projections (rollen, nachrichten, knoten) against real NATS JetStream and
//! PostgreSQL: sealed names and texts, crypto-shredding on `UserDeleted`, batches applied in
//! order, redelivery, and payloads that do not decode. Events are built directly as envelopes
//! on their chains, independent of the aggregates that will produce them. Renewal, decay and
//! yarn: `decay_yarn_projection.rs`.

mod support;

use domain::events::{FadenGesponnen, FadenTyp, UserDeleted};
use domain::{Actor, Envelope, EventContext, Meta};
use ulid::Ulid;
use uuid::Uuid;

use support::social::{World, world};
use support::{home_h3, now, random_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_texts_are_sealed_in_events_readable_in_projections_and_shredded_by_user_deleted()
{
    let mut w = world().await;
    let (stop, task) = w.start_worker();
    let (anna, bert) = (Uuid::new_v4(), Uuid::new_v4());
    let anna_key = w.store_key(anna).await;
    let bert_key = w.store_key(bert).await;
    for rolle in [anna, anna, bert] {
        w.open_session(rolle).await;
    }
    let knoten = Uuid::new_v4();
    let mut events = vec![
        w.register(anna, &anna_key, "Anna Vogelsang"),
        w.register(bert, &bert_key, "Bert Kranichfeld"),
        w.knoten(knoten, now()),
    ];
    let (from_anna, e) = w.message(
        knoten,
        anna,
        &anna_key,
        "Treffen am Samstag, @Bert?",
        vec![bert],
    );
    events.push(e);
    let (from_bert, e) = w.message(knoten, bert, &bert_key, "Bin dabei, @Anna!", vec![anna]);
    events.push(e);
    w.publish(&events).await;
    w.wait_for("SELECT count(*) FROM nachrichten", 2).await;

    // Readable in the projections ...
    let name_of = |id: Uuid| format!("SELECT name FROM rollen WHERE id = '{id}'");
    let text_of = |id: Uuid| format!("SELECT text FROM nachrichten WHERE id = '{id}'");
    assert_eq!(
        w.text(&name_of(anna)).await.as_deref(),
        Some("Anna Vogelsang")
    );
    assert_eq!(
        w.text(&name_of(bert)).await.as_deref(),
        Some("Bert Kranichfeld")
    );
    assert_eq!(
        w.text(&text_of(from_anna)).await.as_deref(),
        Some("Treffen am Samstag, @Bert?")
    );
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM nachrichten WHERE id = '{from_anna}' AND knoten_id = '{knoten}' \
             AND author = '{anna}' AND mentions = ARRAY['{bert}']::uuid[]"
        ))
        .await,
        1
    );
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM nachrichten WHERE '{anna}' = ANY(mentions)"
        ))
        .await,
        1
    );
    // The home is the centre of the res-9 cell, stored with the cell.
    let home: h3o::CellIndex = home_h3().parse().unwrap();
    let centre = h3o::LatLng::from(home);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM rollen WHERE id = '{anna}' AND h3 = {} \
             AND abs(ST_Y(point::geometry) - {}) < 1e-9 AND abs(ST_X(point::geometry) - {}) < 1e-9",
            domain::geo::cell_to_i64(home),
            centre.lat(),
            centre.lng()
        ))
        .await,
        1
    );
    // ... and sealed in the stream and the archive.
    let secrets = ["Vogelsang", "Kranichfeld", "Samstag", "Bin dabei"];
    let stream = w
        .bus
        .jetstream()
        .get_stream(w.chains.ort.stream_name(domain::StreamDomain::Social))
        .await
        .unwrap();
    for seq in 1..=events.len() as u64 {
        let raw =
            String::from_utf8(stream.get_raw_message(seq).await.unwrap().payload.to_vec()).unwrap();
        for secret in secrets {
            assert!(!raw.contains(secret), "{secret} in the stream: {raw}");
        }
    }
    for secret in secrets {
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM events_archive WHERE envelope::text LIKE '%{secret}%'"
            ))
            .await,
            0
        );
    }

    // Anna deletes herself.
    let deleted = w.chains.event(
        anna,
        &UserDeleted {
            alias: "Rolle-7f3a".into(),
        },
        Actor::Rolle(anna),
        now(),
    );
    w.publish(&[deleted]).await;
    w.wait_for(
        &format!("SELECT count(*) FROM rollen WHERE id = '{anna}' AND deleted_at IS NOT NULL"),
        1,
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();

    let after_deletion = async |w: &World| {
        assert_eq!(w.text(&name_of(anna)).await.as_deref(), Some("Rolle-7f3a"));
        assert_eq!(w.text(&text_of(from_anna)).await, None);
        assert_eq!(
            w.text(&name_of(bert)).await.as_deref(),
            Some("Bert Kranichfeld")
        );
        assert_eq!(
            w.text(&text_of(from_bert)).await.as_deref(),
            Some("Bin dabei, @Anna!")
        );
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM rolle_keys WHERE rolle_id = '{anna}' \
                     AND key IS NULL AND destroyed_at IS NOT NULL"
            ))
            .await,
            1
        );
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM rolle_keys WHERE rolle_id = '{bert}' AND key IS NOT NULL"
            ))
            .await,
            1
        );
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM sessions WHERE rolle_id = '{anna}' AND revoked_at IS NOT NULL"
            ))
            .await,
            2
        );
        assert_eq!(
            w.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL")
                .await,
            1
        );
    };
    after_deletion(&w).await;

    // Every chain still verifies: the hashes cover the sealed bytes, which never changed.
    assert_eq!(w.verify_archived_chains().await, 3);
    let stored = w
        .bus
        .history(domain::AggregateType::Rolle, anna)
        .await
        .unwrap();
    let anna_chain: Vec<_> = stored
        .iter()
        .map(|s| s.envelope.to_value().unwrap())
        .collect();
    assert_eq!(domain::verify_chain(&anna_chain).unwrap().len(), 2);

    // A rebuild from the archive cannot bring anything back: the key is gone for good.
    let before = w.state().await;
    let applied = w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(applied, events.len() as u64 + 1);
    after_deletion(&w).await;
    assert_eq!(w.state().await, before);
    w.finish().await;
}

#[tokio::test]
async fn one_batch_with_register_messages_and_deletion_applies_in_order_and_redelivery_changes_nothing()
 {
    let mut w = world().await;
    let (anna, bert, ghost) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let anna_key = w.store_key(anna).await;
    let bert_key = w.store_key(bert).await;
    w.open_session(anna).await;
    let knoten = Uuid::new_v4();
    let mut events = vec![
        w.register(anna, &anna_key, "Anna"),
        w.register(bert, &bert_key, "Bert"),
        // No key stored for this role: its name cannot be opened.
        w.register(ghost, &random_key(), "Geist"),
        w.knoten(knoten, now()),
    ];
    let (before_deletion, e) = w.message(knoten, anna, &anna_key, "vorher", vec![]);
    events.push(e);
    events.push(w.chains.event(
        anna,
        &UserDeleted {
            alias: "Rolle-1".into(),
        },
        Actor::Rolle(anna),
        now(),
    ));
    // Written (sealed with the old key) after the deletion, in the same batch: stays unreadable.
    let (after_deletion, e) = w.message(knoten, anna, &anna_key, "nachher", vec![]);
    events.push(e);
    // Sealed with Bert's key but claiming Anna as author: unreadable, never misattributed.
    let (forged, e) = w.message(knoten, anna, &bert_key, "untergeschoben", vec![]);
    events.push(e);
    let (from_bert, e) = w.message(knoten, bert, &bert_key, "hallo", vec![anna]);
    events.push(e);

    let batch = w.batch(&events);
    let projector = w.projector();
    let first = projector.apply_batch(&batch).await.unwrap();
    assert_eq!(
        (first.applied, first.skipped, first.dead.len()),
        (events.len(), 0, 0)
    );
    let name = |id: Uuid| format!("SELECT name FROM rollen WHERE id = '{id}'");
    let text = |id: Uuid| format!("SELECT text FROM nachrichten WHERE id = '{id}'");
    assert_eq!(w.text(&name(anna)).await.as_deref(), Some("Rolle-1"));
    assert_eq!(w.text(&name(bert)).await.as_deref(), Some("Bert"));
    assert_eq!(w.text(&name(ghost)).await.as_deref(), Some("[unlesbar]"));
    for id in [before_deletion, after_deletion, forged] {
        assert_eq!(w.text(&text(id)).await, None);
    }
    assert_eq!(w.text(&text(from_bert)).await.as_deref(), Some("hallo"));
    assert_eq!(
        w.count("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        1
    );

    let before = w.state().await;
    let second = projector.apply_batch(&batch).await.unwrap();
    assert_eq!(
        (second.applied, second.skipped, second.dead.len()),
        (0, events.len(), 0)
    );
    assert_eq!(w.state().await, before);
    assert_eq!(w.count("SELECT count(*) FROM nachrichten").await, 4);
    w.finish().await;
}

#[tokio::test]
async fn a_payload_that_does_not_decode_is_a_projection_error_and_the_rest_of_the_batch_applies() {
    let mut w = world().await;
    let (knoten, faden, rolle) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let key = w.store_key(rolle).await;
    let good_knoten = w.knoten(knoten, now());
    // A FadenGesponnen whose typ no one knows; hashed as it is, so its link is sound.
    let mut bad_faden = Envelope::seal(
        &w.chains.ort,
        faden,
        None,
        &FadenGesponnen {
            from_rolle: rolle,
            to_knoten: knoten,
            typ: FadenTyp::Interesse,
            expires_at: now(),
        },
        EventContext {
            id: Ulid::new(),
            ts: now(),
            meta: Meta {
                actor: Actor::Rolle(rolle),
                ip_hash: None,
                ua_hash: None,
                msg_id: "bad-faden".into(),
            },
        },
    )
    .unwrap();
    bad_faden.payload["typ"] = "umarmung".into();
    // A registration with a home that is not an H3 cell.
    let mut bad_home = w.register(rolle, &key, "Carla");
    bad_home.payload["home_h3"] = "nicht-h3".into();
    let (message, good_message) = w.message(knoten, rolle, &key, "geht", vec![]);

    let batch = w.batch(&[good_knoten, bad_faden, bad_home, good_message]);
    let report = w.projector().apply_batch(&batch).await.unwrap();
    assert_eq!((report.applied, report.skipped), (2, 0));
    let reasons: Vec<_> = report
        .dead
        .iter()
        .map(|d| (d.incoming.seq, d.reason))
        .collect();
    assert_eq!(
        reasons,
        [(2, "projection_error"), (3, "projection_error")],
        "{:?}",
        report.dead
    );
    assert_eq!(w.count("SELECT count(*) FROM faeden").await, 0);
    assert_eq!(w.count("SELECT count(*) FROM rollen").await, 0);
    assert_eq!(
        w.text(&format!(
            "SELECT text FROM nachrichten WHERE id = '{message}'"
        ))
        .await
        .as_deref(),
        Some("geht")
    );
    assert_eq!(w.count("SELECT count(*) FROM events_archive").await, 2);
    w.finish().await;
}
