#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The social projections (rollen, nachrichten, knoten, faeden) against real NATS JetStream and
//! PostgreSQL: sealed names and texts, crypto-shredding on `UserDeleted`, Faden renewal, decay
//! and yarn. Events are built directly as envelopes on their chains, independent of the
//! aggregates that will produce them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bus::{Bus, BusConfig};
use chrono::{DateTime, Utc};
use domain::envelope::truncate_millis;
use domain::events::{
    FadenGesponnen, FadenTyp, FadenVerfallen, FadenVerzwirnt, KnotenGeknuepft, KnotenGestaltet,
    KnotenTyp, KnotenVerfallen, KnotenVerzwirnt, NachrichtGeschrieben, RolleRegistriert,
    UserDeleted,
};
use domain::{Actor, Envelope, EventContext, Meta, Ort, Payload, privacy};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use serde_json::json;
use tokio::sync::watch;
use ulid::Ulid;
use uuid::Uuid;
use workers::{Incoming, ProjectionConfig, ProjectionWorker, Projector};

const HOME: (f64, f64) = (50.9795, 11.3235);

struct World {
    bus: Bus,
    db: testkit::TestDb,
    chains: Chains,
}

/// Builds events on their aggregates' chains and numbers them as one stream would.
struct Chains {
    ort: Ort,
    heads: HashMap<Uuid, String>,
    seq: u64,
}

impl Chains {
    fn event<P: Payload>(
        &mut self,
        aggregate: Uuid,
        payload: &P,
        actor: Actor,
        ts: DateTime<Utc>,
    ) -> Envelope {
        let id = Ulid::new();
        let env = Envelope::seal(
            &self.ort,
            aggregate,
            self.heads.get(&aggregate).cloned(),
            payload,
            EventContext {
                id,
                ts,
                meta: Meta {
                    actor,
                    ip_hash: None,
                    ua_hash: None,
                    msg_id: format!("t-{id}"),
                },
            },
        )
        .unwrap();
        self.heads
            .insert(aggregate, domain::hash_envelope(&env).unwrap());
        env
    }

    /// As the projection worker would receive it from the social stream.
    fn incoming(&mut self, env: &Envelope) -> Incoming {
        self.seq += 1;
        Incoming {
            stream: self.ort.stream_name(domain::StreamDomain::Social),
            seq: self.seq,
            subject: env.subject.clone(),
            payload: serde_json::to_vec(env).unwrap(),
            published: None,
        }
    }
}

async fn world() -> World {
    let ort = Ort::new(&testkit::unique_ort()).unwrap();
    let bus = Bus::connect(
        &testkit::nats_url(),
        BusConfig::new(ort.clone(), 64 * 1024 * 1024),
        None,
    )
    .await
    .unwrap();
    bus.ensure_streams().await.unwrap();
    World {
        bus,
        db: testkit::fresh_database().await,
        chains: Chains {
            ort,
            heads: HashMap::new(),
            seq: 0,
        },
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    key
}

fn seal(key: &[u8; 32], rolle: Uuid, text: &str) -> privacy::Sealed {
    let mut nonce = [0u8; 24];
    nonce[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    nonce[16..].copy_from_slice(&Uuid::new_v4().as_bytes()[..8]);
    privacy::seal(key, &nonce, rolle, text).unwrap()
}

fn now() -> DateTime<Utc> {
    truncate_millis(Utc::now())
}

fn home_h3() -> String {
    domain::geo::Point::new(HOME.0, HOME.1)
        .unwrap()
        .cell(domain::geo::HOME_RES)
        .to_string()
}

impl World {
    fn start_worker(&self) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let worker = ProjectionWorker::new(
            self.bus.clone(),
            Projector::new(self.db.conn.clone()),
            ProjectionConfig::default(),
        );
        (tx, tokio::spawn(worker.run(rx)))
    }

    fn projector(&self) -> Projector {
        Projector::new(self.db.conn.clone())
    }

    /// What the API does at register: store the role's data key.
    async fn store_key(&self, rolle: Uuid) -> [u8; 32] {
        let key = random_key();
        self.db
            .conn
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO rolle_keys (rolle_id, key) VALUES ($1, $2)",
                [rolle.into(), key.to_vec().into()],
            ))
            .await
            .unwrap();
        key
    }

    /// What the API does at login.
    async fn open_session(&self, rolle: Uuid) {
        self.db
            .conn
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO sessions (id, rolle_id, token_hash, created_at, last_seen_at) \
                 VALUES ($1, $2, $3, now(), now())",
                [
                    Uuid::new_v4().into(),
                    rolle.into(),
                    Uuid::new_v4().simple().to_string().into(),
                ],
            ))
            .await
            .unwrap();
    }

    fn register(&mut self, rolle: Uuid, key: &[u8; 32], name: &str) -> Envelope {
        let payload = RolleRegistriert {
            name: seal(key, rolle, name),
            home_h3: home_h3(),
        };
        self.chains
            .event(rolle, &payload, Actor::Rolle(rolle), now())
    }

    fn knoten(&mut self, id: Uuid, ts: DateTime<Utc>) -> Envelope {
        let cell = domain::geo::Point::new(HOME.0, HOME.1)
            .unwrap()
            .cell(domain::geo::FINE_RES);
        let payload = KnotenGeknuepft {
            title: "Gemeinschaftsgarten".into(),
            typ: KnotenTyp::Ressource,
            content: json!({}),
            lat: HOME.0,
            lng: HOME.1,
            h3: cell.to_string(),
            expires_at: ts + chrono::Duration::days(7),
        };
        self.chains.event(id, &payload, Actor::System, ts)
    }

    fn message(
        &mut self,
        knoten: Uuid,
        author: Uuid,
        key: &[u8; 32],
        text: &str,
        mentions: Vec<Uuid>,
    ) -> (Uuid, Envelope) {
        let nachricht_id = Uuid::new_v4();
        let payload = NachrichtGeschrieben {
            nachricht_id,
            author,
            text: seal(key, author, text),
            mentions,
        };
        let env = self
            .chains
            .event(knoten, &payload, Actor::Rolle(author), now());
        (nachricht_id, env)
    }

    fn batch(&mut self, envs: &[Envelope]) -> Vec<Incoming> {
        envs.iter().map(|e| self.chains.incoming(e)).collect()
    }

    async fn publish(&self, envs: &[Envelope]) {
        for env in envs {
            self.bus
                .jetstream()
                .publish(env.subject.clone(), serde_json::to_vec(env).unwrap().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }

    async fn row(&self, sql: &str) -> QueryResult {
        self.db
            .conn
            .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: no row"))
    }

    async fn count(&self, sql: &str) -> i64 {
        self.row(sql).await.try_get_by_index::<i64>(0).unwrap()
    }

    async fn text(&self, sql: &str) -> Option<String> {
        self.row(sql)
            .await
            .try_get_by_index::<Option<String>>(0)
            .unwrap()
    }

    async fn wait_for(&self, sql: &str, want: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.count(sql).await;
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sql}: got {got}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every social table and the chain heads, as text: what redelivery and rebuilds must keep.
    async fn state(&self) -> Vec<String> {
        let rows = self
            .db
            .conn
            .query_all(Statement::from_string(
                DbBackend::Postgres,
                "SELECT format('knoten|%s|%s|%s|%s|%s|%s|%s', id, content, design_version, updated_at, decayed_at, is_yarn, yarn_at) AS r FROM knoten \
                 UNION ALL SELECT format('faden|%s|%s|%s|%s|%s|%s|%s|%s|%s', id, from_rolle, to_knoten, typ, created_at, expires_at, renewed_at, decayed_at, yarn_at) FROM faeden \
                 UNION ALL SELECT format('rolle|%s|%s|%s|%s|%s|%s', id, name, h3, ST_AsText(point), created_at, deleted_at) FROM rollen \
                 UNION ALL SELECT format('nachricht|%s|%s|%s|%s|%s|%s|%s', id, knoten_id, author, text, mentions, created_at, event_id) FROM nachrichten \
                 UNION ALL SELECT format('key|%s|%s|%s', rolle_id, key IS NULL, destroyed_at) FROM rolle_keys \
                 UNION ALL SELECT format('session|%s|%s|%s', id, rolle_id, revoked_at) FROM sessions \
                 UNION ALL SELECT format('head|%s|%s|%s|%s', aggregate_id, last_hash, last_seq, event_count) FROM aggregate_heads \
                 ORDER BY 1"
                    .to_owned(),
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.try_get::<String>("", "r").unwrap())
            .collect()
    }

    /// Every chain in the archive, checked link by link from its first event.
    async fn verify_archived_chains(&self) -> usize {
        let rows = self
            .db
            .conn
            .query_all(Statement::from_string(
                DbBackend::Postgres,
                "SELECT aggregate_id, envelope::text AS envelope FROM events_archive \
                 ORDER BY aggregate_id, stream, stream_seq"
                    .to_owned(),
            ))
            .await
            .unwrap();
        let mut chains: BTreeMap<Uuid, Vec<serde_json::Value>> = BTreeMap::new();
        for row in rows {
            let id: Uuid = row.try_get("", "aggregate_id").unwrap();
            let raw: String = row.try_get("", "envelope").unwrap();
            chains
                .entry(id)
                .or_default()
                .push(serde_json::from_str(&raw).unwrap());
        }
        for (id, events) in &chains {
            domain::verify_chain(events)
                .unwrap_or_else(|e| panic!("chain of {id} breaks at {}: {}", e.index, e.reason));
        }
        chains.len()
    }

    async fn finish(self) {
        self.bus.delete_streams().await.unwrap();
        self.db.drop_db().await;
    }
}

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
