//! The world of the Webrat's projection tests: roles with their data keys, events built as
//! envelopes on their chains and applied as one batch, every governance table as text, and the
//! decision the `Antrag` aggregate would record.

use chrono::{DateTime, Utc};
use domain::envelope::truncate_millis;
use domain::events::{AntragEntschieden, RolleRegistriert, Vote};
use domain::governance::{decide_status, quorum_reached, tally};
use domain::{Actor, Envelope, Payload};
use uuid::Uuid;
use workers::Incoming;

use super::chains::ChainWorld;
use super::{home_h3, random_key, seal};

/// The Webrat's projection tests' world.
pub struct Webrat;
pub type World = ChainWorld<Webrat>;

/// A fresh Ort and database; no worker runs until the test starts one.
pub async fn world() -> World {
    World::new().await
}

pub fn t0() -> DateTime<Utc> {
    truncate_millis(Utc::now())
}

/// The home of every role in these tests.
pub fn point() -> domain::geo::Point {
    super::home_point()
}

/// A timestamp column as epoch milliseconds (or `-`), for exact comparisons in `format`.
pub fn ms(column: &str) -> String {
    format!("coalesce(((extract(epoch FROM {column}) * 1000)::bigint)::text, '-')")
}

/// A role with its data key.
#[derive(Clone, Copy)]
pub struct Person {
    pub id: Uuid,
    pub key: [u8; 32],
}

impl World {
    /// A role whose key is stored as the API stores it at register.
    pub async fn person(&self) -> Person {
        let person = Person {
            id: Uuid::new_v4(),
            key: random_key(),
        };
        self.save_key(person.id, person.key).await;
        person
    }

    pub fn register(&mut self, p: Person, name: &str, ts: DateTime<Utc>) -> Envelope {
        let payload = RolleRegistriert {
            name: seal(&p.key, p.id, name),
            home_h3: home_h3(),
        };
        self.chains.event(p.id, &payload, Actor::Rolle(p.id), ts)
    }

    pub fn by<P: Payload>(
        &mut self,
        aggregate: Uuid,
        payload: &P,
        actor: Uuid,
        ts: DateTime<Utc>,
    ) -> Envelope {
        self.chains
            .event(aggregate, payload, Actor::Rolle(actor), ts)
    }

    pub fn system<P: Payload>(
        &mut self,
        aggregate: Uuid,
        payload: &P,
        ts: DateTime<Utc>,
    ) -> Envelope {
        self.chains.event(aggregate, payload, Actor::System, ts)
    }

    pub async fn apply(&mut self, envs: &[Envelope]) {
        let batch: Vec<Incoming> = envs.iter().map(|e| self.chains.incoming(e)).collect();
        let report = self.projector().apply_batch(&batch).await.unwrap();
        assert_eq!(
            (report.applied, report.skipped, report.dead.len()),
            (envs.len(), 0, 0),
            "{:?}",
            report.dead
        );
    }

    /// Every governance table and column, as text: what redelivery and rebuilds must keep.
    pub async fn state(&self) -> Vec<String> {
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
}

/// The decision the `Antrag` aggregate would record for these votes and delegations.
pub fn decision(
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
