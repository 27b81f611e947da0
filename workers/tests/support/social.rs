//! The world of the social projection tests: events built as envelopes on their chains
//! (Knoten, messages, registrations with sealed names) and the whole social read model as text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::events::{KnotenGeknuepft, KnotenTyp, NachrichtGeschrieben, RolleRegistriert};
use domain::{Actor, Envelope};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use uuid::Uuid;
use workers::Incoming;

use super::chains::ChainWorld;
use super::{HOME, home_h3, home_point, now, random_key, seal};

/// The social projection tests' world.
pub struct Social;
pub type World = ChainWorld<Social>;

/// A fresh Ort and database; no worker runs until the test starts one.
pub async fn world() -> World {
    World::new().await
}

impl World {
    /// What the API does at register: store the role's data key.
    pub async fn store_key(&self, rolle: Uuid) -> [u8; 32] {
        let key = random_key();
        self.save_key(rolle, key).await;
        key
    }

    /// What the API does at login.
    pub async fn open_session(&self, rolle: Uuid) {
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

    pub fn register(&mut self, rolle: Uuid, key: &[u8; 32], name: &str) -> Envelope {
        let payload = RolleRegistriert {
            name: seal(key, rolle, name),
            home_h3: home_h3(),
        };
        self.chains
            .event(rolle, &payload, Actor::Rolle(rolle), now())
    }

    pub fn knoten(&mut self, id: Uuid, ts: DateTime<Utc>) -> Envelope {
        let cell = home_point().cell(domain::geo::FINE_RES);
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

    pub fn message(
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

    pub fn batch(&mut self, envs: &[Envelope]) -> Vec<Incoming> {
        envs.iter().map(|e| self.chains.incoming(e)).collect()
    }

    /// Every social table and the chain heads, as text: what redelivery and rebuilds must keep.
    pub async fn state(&self) -> Vec<String> {
        self.lines(
            "SELECT format('knoten|%s|%s|%s|%s|%s|%s|%s', id, content, design_version, updated_at, decayed_at, is_yarn, yarn_at) AS r FROM knoten \
                 UNION ALL SELECT format('faden|%s|%s|%s|%s|%s|%s|%s|%s|%s', id, from_rolle, to_knoten, typ, created_at, expires_at, renewed_at, decayed_at, yarn_at) FROM faeden \
                 UNION ALL SELECT format('rolle|%s|%s|%s|%s|%s|%s', id, name, h3, ST_AsText(point), created_at, deleted_at) FROM rollen \
                 UNION ALL SELECT format('nachricht|%s|%s|%s|%s|%s|%s|%s', id, knoten_id, author, text, mentions, created_at, event_id) FROM nachrichten \
                 UNION ALL SELECT format('key|%s|%s|%s', rolle_id, key IS NULL, destroyed_at) FROM rolle_keys \
                 UNION ALL SELECT format('session|%s|%s|%s', id, rolle_id, revoked_at) FROM sessions \
                 UNION ALL SELECT format('head|%s|%s|%s|%s', aggregate_id, last_hash, last_seq, event_count) FROM aggregate_heads \
                 ORDER BY 1",
        )
        .await
    }

    /// Every chain in the archive, checked link by link from its first event.
    pub async fn verify_archived_chains(&self) -> usize {
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
}
