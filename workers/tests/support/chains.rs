//! Events built directly as envelopes on their aggregates' chains, independent of the
//! aggregates that produce them, and numbered on their own streams as JetStream would.

use std::collections::HashMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use domain::{Actor, Envelope, EventContext, Ort, Payload};
use ulid::Ulid;
use uuid::Uuid;
use workers::Incoming;

use super::Env;

/// Builds events on their aggregates' chains and numbers them per stream.
pub struct Chains {
    pub ort: Ort,
    heads: HashMap<Uuid, String>,
    seqs: HashMap<String, u64>,
}

impl Chains {
    pub fn new(ort: Ort) -> Self {
        Self {
            ort,
            heads: HashMap::new(),
            seqs: HashMap::new(),
        }
    }

    /// The next event of `aggregate`'s chain (msg id `t-<event id>`).
    pub fn event<P: Payload>(
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
                meta: super::meta(actor, format!("t-{id}")),
            },
        )
        .unwrap();
        self.heads
            .insert(aggregate, domain::hash_envelope(&env).unwrap());
        env
    }

    /// As the projection worker would receive it from the event's own stream.
    pub fn incoming(&mut self, env: &Envelope) -> Incoming {
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

/// A test world of events built on chains: a bus and a database, and the chains. `K` names
/// the kind of world, so each kind has its own helpers (`social::World`,
/// `governance::World`).
pub struct ChainWorld<K> {
    pub env: Env,
    pub chains: Chains,
    kind: PhantomData<K>,
}

impl<K> ChainWorld<K> {
    /// A fresh Ort and database; no worker runs until the test starts one.
    pub async fn new() -> Self {
        let env = Env::new().await;
        Self {
            chains: env.chains(),
            env,
            kind: PhantomData,
        }
    }

    pub async fn finish(self) {
        self.env.finish().await;
    }
}

impl<K> std::ops::Deref for ChainWorld<K> {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}
