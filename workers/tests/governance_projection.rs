#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat's projections against real NATS JetStream and PostgreSQL: Anträge with their
//! objections, votes, decision and audit; delegation history; verification, admin rights and
//! activity on `rollen`; moderation flags and hidden content; shredded reasons; redelivery and
//! rebuilds. Events are built directly as envelopes on their chains, each numbered on its own
//! stream as JetStream would.

use std::collections::HashMap;
use std::time::Duration;

use bus::{Bus, BusConfig};
use chrono::{DateTime, Utc};
use domain::envelope::truncate_millis;
use domain::events::{
    AdminActionExecuted, AntragEntschieden, AntragGestellt, AntragStatus, DelegationAbgelaufen,
    DelegationErstellt, DelegationWiderrufen, EinspruchEingegangen, FlagOutcome, FlagRaised,
    FlagResolved, FlagTarget, FlagTargetKind, KnotenGeknuepft, KnotenTyp, NachrichtGeschrieben,
    QuorumErreicht, RolleRegistriert, RolleVerifiziert, StimmeAbgegeben, UserDeleted,
    VerifizierungBestaetigt, Vote,
};
use domain::governance::{audit_decision, decide_status, quorum_reached, tally};
use domain::verification::{ACTION_GRANT_ADMIN, ACTION_VERIFY_ROLLE};
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

/// Builds events on their aggregates' chains and numbers them per stream.
struct Chains {
    ort: Ort,
    heads: HashMap<Uuid, String>,
    seqs: HashMap<String, u64>,
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

    /// As the projection worker would receive it from the event's own stream.
    fn incoming(&mut self, env: &Envelope) -> Incoming {
        let stream = self.ort.stream_name(env.aggregate_type.domain());
        let seq = self.seqs.entry(stream.clone()).or_insert(0);
        *seq += 1;
        Incoming {
            stream,
            seq: *seq,
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
            seqs: HashMap::new(),
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

fn t0() -> DateTime<Utc> {
    truncate_millis(Utc::now())
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn point() -> domain::geo::Point {
    domain::geo::Point::new(HOME.0, HOME.1).unwrap()
}

fn weberei_h3() -> String {
    point().cell(domain::geo::WEAVERY_RES).to_string()
}

/// A timestamp column as epoch milliseconds (or `-`), for exact comparisons in `format`.
fn ms(column: &str) -> String {
    format!("coalesce(((extract(epoch FROM {column}) * 1000)::bigint)::text, '-')")
}

/// A role with its data key.
#[derive(Clone, Copy)]
struct Person {
    id: Uuid,
    key: [u8; 32],
}

impl World {
    fn projector(&self) -> Projector {
        Projector::new(self.db.conn.clone())
    }

    fn start_worker(&self) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let worker = ProjectionWorker::new(
            self.bus.clone(),
            self.projector(),
            ProjectionConfig::default(),
        );
        (tx, tokio::spawn(worker.run(rx)))
    }

    /// A role whose key is stored as the API stores it at register.
    async fn person(&self) -> Person {
        let person = Person {
            id: Uuid::new_v4(),
            key: random_key(),
        };
        self.db
            .conn
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO rolle_keys (rolle_id, key) VALUES ($1, $2)",
                [person.id.into(), person.key.to_vec().into()],
            ))
            .await
            .unwrap();
        person
    }

    fn register(&mut self, p: Person, name: &str, ts: DateTime<Utc>) -> Envelope {
        let payload = RolleRegistriert {
            name: seal(&p.key, p.id, name),
            home_h3: point().cell(domain::geo::HOME_RES).to_string(),
        };
        self.chains.event(p.id, &payload, Actor::Rolle(p.id), ts)
    }

    fn by<P: Payload>(
        &mut self,
        aggregate: Uuid,
        payload: &P,
        actor: Uuid,
        ts: DateTime<Utc>,
    ) -> Envelope {
        self.chains
            .event(aggregate, payload, Actor::Rolle(actor), ts)
    }

    fn system<P: Payload>(&mut self, aggregate: Uuid, payload: &P, ts: DateTime<Utc>) -> Envelope {
        self.chains.event(aggregate, payload, Actor::System, ts)
    }

    async fn apply(&mut self, envs: &[Envelope]) {
        let batch: Vec<Incoming> = envs.iter().map(|e| self.chains.incoming(e)).collect();
        let report = self.projector().apply_batch(&batch).await.unwrap();
        assert_eq!(
            (report.applied, report.skipped, report.dead.len()),
            (envs.len(), 0, 0),
            "{:?}",
            report.dead
        );
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

    async fn lines(&self, sql: &str) -> Vec<String> {
        self.db
            .conn
            .query_all(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect()
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

    /// Every governance table and column, as text: what redelivery and rebuilds must keep.
    async fn state(&self) -> Vec<String> {
        self.lines(
            "SELECT format('antrag|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', id, weavery_h3, title, content, status, created_by, created_at, decision_deadline, decided_at, quorum_reached, ja, nein, enthaltung, participation, hidden_at) || format('|%s|%s', active_roles, quorum_percent) FROM antraege \
             UNION ALL SELECT format('einspruch|%s|%s|%s|%s|%s', id, antrag_id, by, reason, created_at) FROM einsprueche \
             UNION ALL SELECT format('stimme|%s|%s|%s|%s|%s|%s', id, antrag_id, rolle_id, vote, delegated_from, created_at) FROM stimmen \
             UNION ALL SELECT format('counted|%s|%s|%s|%s|%s', antrag_id, voice, rolle, vote, delegated_from) FROM antrag_counted_votes \
             UNION ALL SELECT format('delegation|%s|%s|%s|%s|%s|%s|%s|%s', id, from_rolle, to_rolle, valid_until, created_at, revoked_at, ended_at, ended_reason) FROM delegationen \
             UNION ALL SELECT format('rolle|%s|%s|%s|%s|%s|%s|%s|%s', id, name, verified_by, verified_at, last_active_at, is_admin, verification_confirmations, hidden_at) FROM rollen \
             UNION ALL SELECT format('flag|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', id, target_kind, target_id, reason, raised_by, author_of_target, created_at, outcome, resolution_reason, resolved_by, resolved_at) FROM flags \
             UNION ALL SELECT format('knoten|%s|%s', id, hidden_at) FROM knoten \
             UNION ALL SELECT format('nachricht|%s|%s|%s', id, text, hidden_at) FROM nachrichten \
             UNION ALL SELECT format('head|%s|%s|%s', aggregate_id, last_hash, event_count) FROM aggregate_heads \
             ORDER BY 1",
        )
        .await
    }

    async fn finish(self) {
        self.bus.delete_streams().await.unwrap();
        self.db.drop_db().await;
    }
}

/// The decision the `Antrag` aggregate would record for these votes and delegations.
fn decision(
    votes: &[(Uuid, Vote)],
    delegations: &[(Uuid, Uuid)],
    active_roles: u64,
    quorum_percent: u32,
) -> AntragEntschieden {
    let t = tally(votes, delegations, false);
    let participation = t.participation();
    let quorum = quorum_reached(participation, active_roles, quorum_percent);
    AntragEntschieden {
        status: decide_status(&t, quorum),
        ja: t.ja,
        nein: t.nein,
        enthaltung: t.enthaltung,
        participation,
        active_roles,
        quorum_percent,
        transitive: false,
        counted: t.counted,
        cycles: t.cycles,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_antrag_with_objections_votes_and_a_delegated_voice_is_decided_with_its_audit() {
    let mut w = world().await;
    let (stop, task) = w.start_worker();
    let t = t0();
    let [anna, bert, carl, dora] = [
        w.person().await,
        w.person().await,
        w.person().await,
        w.person().await,
    ];
    let antrag = Uuid::new_v4();
    let deadline = t + chrono::Duration::days(7);
    let mut events = vec![
        w.register(anna, "Anna", t),
        w.register(bert, "Bert", t),
        w.register(carl, "Carl", t),
        w.register(dora, "Dora", t),
    ];
    events.push(w.by(
        antrag,
        &AntragGestellt {
            by: anna.id,
            title: "Bank am Teich".into(),
            content: json!({"kosten": 300}),
            weavery_h3: weberei_h3(),
            decision_deadline: deadline,
        },
        anna.id,
        t + secs(1),
    ));
    events.push(w.by(
        antrag,
        &EinspruchEingegangen {
            by: bert.id,
            reason: seal(&bert.key, bert.id, "Der Teich braucht Ruhe"),
        },
        bert.id,
        t + secs(2),
    ));
    let votes = [
        (anna.id, Vote::Ja),
        (bert.id, Vote::Nein),
        (carl.id, Vote::Enthaltung),
    ];
    for (n, (rolle, vote)) in votes.iter().enumerate() {
        events.push(w.by(
            antrag,
            &StimmeAbgegeben {
                by: *rolle,
                vote: *vote,
            },
            *rolle,
            t + secs(3 + n as i64),
        ));
    }
    // Dora delegated to Anna and did not vote: she counts with Anna's ja.
    let dora_chain = domain::delegation::delegation_id(dora.id);
    events.push(w.by(
        dora_chain,
        &DelegationErstellt {
            from: dora.id,
            to: anna.id,
            valid_until: deadline + chrono::Duration::days(30),
            replaces: None,
        },
        dora.id,
        t + secs(10),
    ));
    w.publish(&events).await;
    w.wait_for("SELECT count(*) FROM stimmen", 3).await;
    w.wait_for("SELECT count(*) FROM delegationen", 1).await;

    // Open: the direct votes so far, the objection readable, nothing decided.
    let row = w
        .row(&format!(
            "SELECT status::text AS s, ja, nein, enthaltung, created_by, weavery_h3, decided_at IS NULL AS open, \
                    quorum_reached IS NULL AS q FROM antraege WHERE id = '{antrag}'"
        ))
        .await;
    assert_eq!(row.try_get::<String>("", "s").unwrap(), "offen");
    assert_eq!(
        (
            row.try_get::<i32>("", "ja").unwrap(),
            row.try_get::<i32>("", "nein").unwrap(),
            row.try_get::<i32>("", "enthaltung").unwrap()
        ),
        (1, 1, 1)
    );
    assert_eq!(row.try_get::<Uuid>("", "created_by").unwrap(), anna.id);
    let weberei: h3o::CellIndex = weberei_h3().parse().unwrap();
    assert_eq!(
        row.try_get::<i64>("", "weavery_h3").unwrap(),
        domain::geo::cell_to_i64(weberei)
    );
    assert!(row.try_get::<bool>("", "open").unwrap() && row.try_get::<bool>("", "q").unwrap());
    assert_eq!(
        w.text(&format!(
            "SELECT reason FROM einsprueche WHERE antrag_id = '{antrag}' AND by = '{}'",
            bert.id
        ))
        .await
        .as_deref(),
        Some("Der Teich braucht Ruhe")
    );
    // Direct votes only, one row per role with its UUIDv5 id.
    for (rolle, vote) in votes {
        let id = Uuid::new_v5(&antrag, rolle.hyphenated().to_string().as_bytes());
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM stimmen WHERE id = '{id}' AND antrag_id = '{antrag}' \
                 AND rolle_id = '{rolle}' AND vote = '{}' AND delegated_from IS NULL",
                vote.as_str()
            ))
            .await,
            1
        );
    }

    // The deadline: 4 voices of 20 active roles reach 10 %; 2 ja beat 1 nein.
    let decided = decision(&votes, &[(dora.id, anna.id)], 20, 10);
    assert_eq!(decided.status, AntragStatus::Angenommen);
    let quorum = QuorumErreicht {
        participation: decided.participation,
        active_roles: 20,
        quorum_percent: 10,
    };
    let decided_at = deadline + secs(5);
    let end = [
        w.system(antrag, &quorum, decided_at),
        w.system(antrag, &decided, decided_at),
    ];
    w.publish(&end).await;
    w.wait_for(
        &format!("SELECT count(*) FROM antraege WHERE id = '{antrag}' AND decided_at IS NOT NULL"),
        1,
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    // Each role's latest event, whichever stream was projected first.
    for (p, d) in [(anna, 3), (bert, 4), (carl, 5), (dora, 10)] {
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM rollen WHERE id = '{}' AND last_active_at = '{}'",
                p.id,
                (t + secs(d)).to_rfc3339()
            ))
            .await,
            1,
            "last_active_at of {}",
            p.id
        );
    }

    let row = w
        .row(&format!(
            "SELECT status::text AS s, ja, nein, enthaltung, participation, active_roles, quorum_percent, \
                    quorum_reached, decided_at FROM antraege WHERE id = '{antrag}'"
        ))
        .await;
    assert_eq!(row.try_get::<String>("", "s").unwrap(), "angenommen");
    let ints: Vec<i32> = [
        "ja",
        "nein",
        "enthaltung",
        "participation",
        "active_roles",
        "quorum_percent",
    ]
    .iter()
    .map(|c| row.try_get::<i32>("", c).unwrap())
    .collect();
    assert_eq!(ints, [2, 1, 1, 4, 20, 10]);
    assert!(row.try_get::<bool>("", "quorum_reached").unwrap());
    assert_eq!(
        row.try_get::<DateTime<Utc>>("", "decided_at").unwrap(),
        decided_at
    );
    // The audit: every counted voice, Dora's with delegated_from; it reproduces the decision.
    let audit = w
        .lines(&format!(
            "SELECT format('%s|%s|%s|%s', voice, rolle, vote, coalesce(delegated_from::text, '-')) \
             FROM antrag_counted_votes WHERE antrag_id = '{antrag}' ORDER BY voice"
        ))
        .await;
    let mut expected: Vec<String> = decided
        .counted
        .iter()
        .map(|c| {
            format!(
                "{}|{}|{}|{}",
                c.voice(),
                c.rolle,
                c.vote.as_str(),
                c.delegated_from.map_or("-".into(), |d| d.to_string())
            )
        })
        .collect();
    expected.sort();
    assert_eq!(audit, expected);
    assert!(audit.contains(&format!("{}|{}|ja|{}", dora.id, anna.id, dora.id)));
    let recomputed = w
        .db
        .conn
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT rolle, vote::text AS vote, delegated_from FROM antrag_counted_votes \
                 WHERE antrag_id = '{antrag}' ORDER BY voice"
            ),
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| domain::events::CountedVote {
            rolle: r.try_get("", "rolle").unwrap(),
            vote: serde_json::from_value(json!(r.try_get::<String>("", "vote").unwrap())).unwrap(),
            delegated_from: r.try_get("", "delegated_from").unwrap(),
        })
        .collect();
    audit_decision(&AntragEntschieden {
        counted: recomputed,
        ..decided.clone()
    })
    .unwrap();
    // Still only the direct votes in stimmen.
    assert_eq!(w.count("SELECT count(*) FROM stimmen").await, 3);

    // A rebuild from the archive (governance is replayed before social) gives the same state.
    let before = w.state().await;
    w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(w.state().await, before);
    w.finish().await;
}

#[tokio::test]
async fn a_missed_quorum_is_recorded_and_the_batch_applied_again_changes_nothing() {
    let mut w = world().await;
    let t = t0();
    let anna = w.person().await;
    let antrag = Uuid::new_v4();
    let deadline = t + chrono::Duration::days(7);
    let mut events = vec![
        w.register(anna, "Anna", t),
        w.by(
            antrag,
            &AntragGestellt {
                by: anna.id,
                title: "Laternenfest".into(),
                content: json!({}),
                weavery_h3: weberei_h3(),
                decision_deadline: deadline,
            },
            anna.id,
            t + secs(1),
        ),
        w.by(
            antrag,
            &StimmeAbgegeben {
                by: anna.id,
                vote: Vote::Ja,
            },
            anna.id,
            t + secs(2),
        ),
    ];
    // 1 voice of 11 active roles is below 10 %.
    let decided = decision(&[(anna.id, Vote::Ja)], &[], 11, 10);
    assert_eq!(decided.status, AntragStatus::QuorumVerfehlt);
    events.push(w.system(antrag, &decided, deadline));
    let batch: Vec<Incoming> = events.iter().map(|e| w.chains.incoming(e)).collect();
    let projector = w.projector();
    let first = projector.apply_batch(&batch).await.unwrap();
    assert_eq!((first.applied, first.dead.len()), (events.len(), 0));
    let row = w
        .row(&format!(
            "SELECT status::text AS s, quorum_reached, ja, participation FROM antraege WHERE id = '{antrag}'"
        ))
        .await;
    assert_eq!(row.try_get::<String>("", "s").unwrap(), "quorum_verfehlt");
    assert!(!row.try_get::<bool>("", "quorum_reached").unwrap());
    assert_eq!(row.try_get::<i32>("", "ja").unwrap(), 1);
    assert_eq!(row.try_get::<i32>("", "participation").unwrap(), 1);
    assert_eq!(
        w.count("SELECT count(*) FROM antrag_counted_votes").await,
        1
    );

    let before = w.state().await;
    let second = projector.apply_batch(&batch).await.unwrap();
    assert_eq!((second.applied, second.skipped), (0, events.len()));
    assert_eq!(w.state().await, before);
    w.finish().await;
}

#[tokio::test]
async fn a_delegation_keeps_its_history_replaced_revoked_and_expired() {
    let mut w = world().await;
    let t = t0();
    let [anna, bert, carl] = [w.person().await, w.person().await, w.person().await];
    let chain = domain::delegation::delegation_id(anna.id);
    let until = t + chrono::Duration::days(10);
    let later = t + chrono::Duration::days(20);
    let events = vec![
        w.by(
            chain,
            &DelegationErstellt {
                from: anna.id,
                to: bert.id,
                valid_until: until,
                replaces: None,
            },
            anna.id,
            t,
        ),
        w.by(
            chain,
            &DelegationErstellt {
                from: anna.id,
                to: carl.id,
                valid_until: until,
                replaces: Some(bert.id),
            },
            anna.id,
            t + secs(1),
        ),
        w.by(
            chain,
            &DelegationWiderrufen {
                from: anna.id,
                to: carl.id,
            },
            anna.id,
            t + secs(2),
        ),
        w.by(
            chain,
            &DelegationErstellt {
                from: anna.id,
                to: bert.id,
                valid_until: later,
                replaces: None,
            },
            anna.id,
            t + secs(3),
        ),
    ];
    w.apply(&events).await;
    let rows_sql = format!(
        "SELECT format('%s|%s|%s|%s|%s', to_rolle, {}, {}, coalesce(ended_reason, '-'), {}) \
         FROM delegationen WHERE from_rolle = '{}' ORDER BY created_at",
        ms("valid_until"),
        ms("ended_at"),
        ms("revoked_at"),
        anna.id
    );
    let m = |ts: DateTime<Utc>| ts.timestamp_millis();
    let expected = |last: String| {
        vec![
            format!("{}|{}|{}|replaced|-", bert.id, m(until), m(t + secs(1))),
            format!(
                "{}|{}|{}|revoked|{}",
                carl.id,
                m(until),
                m(t + secs(2)),
                m(t + secs(2))
            ),
            format!("{}|{}|{last}", bert.id, m(later)),
        ]
    };
    assert_eq!(w.lines(&rows_sql).await, expected("-|-|-".into()));
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM delegationen WHERE from_rolle = '{}' AND ended_at IS NULL",
            anna.id
        ))
        .await,
        1
    );

    // The expiry timer records the last one: it ended at its valid_until.
    let expired = w.system(
        chain,
        &DelegationAbgelaufen {
            from: anna.id,
            to: bert.id,
            valid_until: later,
        },
        later + secs(30),
    );
    w.apply(&[expired]).await;
    assert_eq!(
        w.lines(&rows_sql).await,
        expected(format!("{}|expired|-", m(later)))
    );
    let before = w.state().await;
    w.projector().rebuild_from_archive().await.unwrap();
    assert_eq!(w.state().await, before);
    w.finish().await;
}

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
