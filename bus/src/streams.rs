//! Streams of an Ort, publishing, and reading an aggregate's chain back.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    context::{Publish, PublishErrorKind},
    stream::{self, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType},
};
use domain::events::{DlqEvent, EventRejected, FallbackActivated};
use domain::{Actor, AggregateType, Envelope, EventContext, Meta, StreamDomain};
use futures::StreamExt;
use serde_json::Value;
use tracing::{info, warn};
use ulid::Ulid;
use uuid::Uuid;

use crate::config::BusConfig;
use crate::error::BusError;
use crate::fallback::Fallback;

/// An event as stored on its stream.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Stream sequence; `None` while the event waits in the Redis fallback.
    pub seq: Option<u64>,
    pub envelope: Envelope,
    pub hash: String,
    /// Read from the archive: JetStream no longer holds it (past max_age).
    pub archived: bool,
}

/// The older part of chains, after JetStream's max_age dropped it: implemented over
/// `events_archive` by the binary's wiring (bus itself never touches PostgreSQL).
pub trait Archive: Send + Sync + 'static {
    /// Every archived event of one aggregate, in chain order, with `archived: true`.
    fn chain(&self, id: Uuid) -> futures::future::BoxFuture<'_, Result<Vec<Stored>, BusError>>;
}

/// Where an appended event went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    JetStream {
        stream: String,
        seq: u64,
        duplicate: bool,
    },
    /// JetStream did not answer: the event waits in Redis and is drained later, in order.
    Fallback { duplicate: bool },
}

#[derive(Debug)]
pub(crate) enum AppendError {
    /// `Nats-Expected-Last-Subject-Sequence` did not hold: someone else wrote first.
    WrongSequence,
    Failed(BusError),
}

/// Handle to the backbone of one Ort. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

type HeadCache = std::sync::Mutex<std::collections::HashMap<Uuid, Box<dyn std::any::Any + Send>>>;

struct Inner {
    /// Heads of aggregates this process wrote (see `command.rs`).
    heads: HeadCache,
    archive: std::sync::OnceLock<Arc<dyn Archive>>,
    client: async_nats::Client,
    js: jetstream::Context,
    cfg: BusConfig,
    fallback: Option<Fallback>,
}

impl Bus {
    /// Connect to NATS. The client keeps reconnecting in the background if the server goes
    /// away; publishes fail over to `fallback` meanwhile.
    pub async fn connect(
        url: &str,
        cfg: BusConfig,
        fallback: Option<Fallback>,
    ) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("weberei")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(url)
            .await
            .map_err(|e| BusError::Connect(format!("{url}: {e}")))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(cfg.publish_timeout);
        Ok(Self {
            inner: Arc::new(Inner {
                heads: Default::default(),
                archive: Default::default(),
                client,
                js,
                cfg,
                fallback,
            }),
        })
    }

    pub(crate) fn heads(&self) -> &HeadCache {
        &self.inner.heads
    }

    pub fn config(&self) -> &BusConfig {
        &self.inner.cfg
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    pub fn fallback(&self) -> Option<&Fallback> {
        self.inner.fallback.as_ref()
    }

    fn stream_config(&self, domain: StreamDomain) -> stream::Config {
        let cfg = &self.inner.cfg;
        stream::Config {
            name: cfg.ort.stream_name(domain),
            subjects: vec![cfg.ort.stream_filter(domain)],
            retention: RetentionPolicy::Limits,
            max_age: cfg.max_age,
            max_bytes: cfg.max_bytes,
            storage: StorageType::File,
            num_replicas: cfg.replicas,
            duplicate_window: cfg.duplicate_window,
            // A full stream refuses new events (they go to the Redis fallback and show up in
            // wg_fallback_pending) instead of silently dropping old, maybe unprojected ones.
            discard: DiscardPolicy::New,
            description: Some(format!("Weberei {} events of {}", domain.as_str(), cfg.ort)),
            ..Default::default()
        }
    }

    /// Create or update the five streams of the Ort (idempotent; safe at every start).
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        for domain in StreamDomain::ALL {
            let config = self.stream_config(domain);
            let name = config.name.clone();
            let err = |detail: String| BusError::Stream {
                stream: name.clone(),
                detail,
            };
            match self.inner.js.get_stream(&name).await {
                Ok(mut existing) => {
                    let current = existing
                        .info()
                        .await
                        .map_err(|e| err(e.to_string()))?
                        .config
                        .clone();
                    if needs_update(&current, &config) {
                        self.inner
                            .js
                            .update_stream(config)
                            .await
                            .map_err(|e| err(e.to_string()))?;
                        info!(stream = %name, "stream updated");
                    }
                }
                Err(_) => {
                    self.inner
                        .js
                        .create_stream(config)
                        .await
                        .map_err(|e| err(e.to_string()))?;
                    info!(stream = %name, "stream created");
                }
            }
        }
        Ok(())
    }

    /// Remove the Ort's streams (tests clean up after themselves).
    pub async fn delete_streams(&self) -> Result<(), BusError> {
        for domain in StreamDomain::ALL {
            let name = self.inner.cfg.ort.stream_name(domain);
            let _ = self.inner.js.delete_stream(&name).await;
        }
        Ok(())
    }

    /// NATS answers and JetStream serves the Ort's social stream.
    pub async fn ready(&self) -> Result<(), BusError> {
        if self.inner.client.connection_state() != async_nats::connection::State::Connected {
            return Err(BusError::Unavailable("not connected to NATS".into()));
        }
        let name = self.inner.cfg.ort.stream_name(StreamDomain::Social);
        self.inner
            .js
            .get_stream(&name)
            .await
            .map(|_| ())
            .map_err(|e| BusError::Unavailable(format!("stream {name}: {e}")))
    }

    /// Per-stream message counts, e.g. for the dead-letter gauge.
    pub async fn stream_messages(&self, domain: StreamDomain) -> Result<u64, BusError> {
        let name = self.inner.cfg.ort.stream_name(domain);
        let mut s = self
            .inner
            .js
            .get_stream(&name)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let info = s
            .info()
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(info.state.messages)
    }

    /// Messages stored on one subject of a stream (e.g. `wg.<ort>.dlq.dead`).
    pub async fn subject_messages(
        &self,
        domain: StreamDomain,
        subject: &str,
    ) -> Result<u64, BusError> {
        let name = self.inner.cfg.ort.stream_name(domain);
        let s = self
            .inner
            .js
            .get_stream(&name)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let info = s
            .info_with_subjects(subject)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let mut total = 0;
        let mut subjects = info;
        while let Some(entry) = subjects.next().await {
            let (_, count) = entry.map_err(|e| BusError::Unavailable(e.to_string()))?;
            total += count as u64;
        }
        Ok(total)
    }

    /// The whole chain of one aggregate that JetStream still holds, oldest first.
    /// Where older chain links come from once JetStream dropped them (set once, at start).
    pub fn set_archive(&self, archive: Arc<dyn Archive>) {
        let _ = self.inner.archive.set(archive);
    }

    /// The whole chain of one aggregate, oldest first: what JetStream holds, preceded by what
    /// only the archive still has (when an archive is set).
    pub async fn history(
        &self,
        aggregate_type: AggregateType,
        id: Uuid,
    ) -> Result<Vec<Stored>, BusError> {
        let recent = self.stream_history(aggregate_type, id).await?;
        let complete = recent
            .first()
            .is_some_and(|f| f.envelope.prev_hash.is_none());
        let Some(archive) = self.inner.archive.get().filter(|_| !complete) else {
            return Ok(recent);
        };
        let first_seq = recent.first().and_then(|s| s.seq);
        let mut chain: Vec<Stored> = archive
            .chain(id)
            .await?
            .into_iter()
            .filter(|s| match (first_seq, s.seq) {
                (Some(first), Some(seq)) => seq < first,
                _ => true,
            })
            .collect();
        chain.extend(recent);
        Ok(chain)
    }

    async fn stream_history(
        &self,
        aggregate_type: AggregateType,
        id: Uuid,
    ) -> Result<Vec<Stored>, BusError> {
        let subject = self.inner.cfg.ort.aggregate_subject(aggregate_type, id);
        let name = self.inner.cfg.ort.stream_name(aggregate_type.domain());
        let unavailable = |e: String| BusError::Unavailable(e);
        let stream = self
            .inner
            .js
            .get_stream(&name)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let last = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e.to_string())),
        };
        let last_stored = decode_stored(&subject, last.sequence, &last.payload)?;
        // One-event chains (most Knoten, every Faden at first) need no consumer.
        if last_stored.envelope.prev_hash.is_none() {
            return Ok(vec![last_stored]);
        }
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: subject.clone(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut out = Vec::new();
        while let Some(msg) =
            tokio::time::timeout(self.inner.cfg.publish_timeout * 5, messages.next())
                .await
                .map_err(|_| unavailable(format!("reading {subject} timed out")))?
        {
            let msg = msg.map_err(|e| unavailable(e.to_string()))?;
            let seq = msg
                .info()
                .map_err(|e| unavailable(e.to_string()))?
                .stream_sequence;
            out.push(decode_stored(&subject, seq, &msg.payload)?);
            if seq >= last.sequence {
                break;
            }
        }
        Ok(out)
    }

    /// One stored event by stream sequence.
    pub async fn get(&self, domain: StreamDomain, seq: u64) -> Result<Stored, BusError> {
        let name = self.inner.cfg.ort.stream_name(domain);
        let stream = self
            .inner
            .js
            .get_stream(&name)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let m = stream
            .get_raw_message(seq)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        decode_stored(&m.subject, seq, &m.payload)
    }

    /// Publish one event: straight to JetStream, or to the fallback while it is active or when
    /// JetStream does not answer. `expected_seq` guards the aggregate's subject.
    pub(crate) async fn append(
        &self,
        env: &Envelope,
        expected_seq: Option<u64>,
    ) -> Result<Appended, AppendError> {
        let body = serde_json::to_vec(env).map_err(|e| AppendError::Failed(e.into()))?;
        if let Some(fb) = &self.inner.fallback
            && let Some(appended) = fb
                .push_if_active(&env.subject, &env.meta.msg_id, expected_seq, &body)
                .await
                .map_err(AppendError::Failed)?
        {
            return Ok(appended);
        }
        match self
            .publish_js(&env.subject, &env.meta.msg_id, expected_seq, body.clone())
            .await
        {
            Ok(appended) => Ok(appended),
            Err(PublishFailure::WrongSequence) => Err(AppendError::WrongSequence),
            Err(PublishFailure::Unavailable(reason)) => {
                let Some(fb) = &self.inner.fallback else {
                    return Err(AppendError::Failed(BusError::Unavailable(reason)));
                };
                warn!(%reason, msg_id = %env.meta.msg_id, "JetStream publish failed; using the Redis fallback");
                let notice = self
                    .fallback_notice(&reason, env)
                    .map_err(|e| AppendError::Failed(e.into()))?;
                fb.activate_and_push(&notice, &env.subject, &env.meta.msg_id, expected_seq, &body)
                    .await
                    .map_err(AppendError::Failed)
            }
        }
    }

    fn fallback_notice(
        &self,
        reason: &str,
        first: &Envelope,
    ) -> Result<(String, String, Vec<u8>), serde_json::Error> {
        let id = Uuid::new_v4();
        let subject = self
            .inner
            .cfg
            .ort
            .aggregate_subject(AggregateType::System, id);
        let msg_id = format!("fallback:{}", first.id);
        let env = Envelope::standalone(
            subject.clone(),
            &FallbackActivated {
                reason: reason.to_owned(),
                first_event_id: first.id.to_string(),
            },
            EventContext {
                id: Ulid::new(),
                ts: chrono::Utc::now(),
                meta: Meta {
                    actor: Actor::System,
                    ip_hash: None,
                    ua_hash: None,
                    msg_id: msg_id.clone(),
                },
            },
            id,
        )?;
        Ok((subject, msg_id, serde_json::to_vec(&env)?))
    }

    pub(crate) async fn publish_js(
        &self,
        subject: &str,
        msg_id: &str,
        expected_seq: Option<u64>,
        body: Vec<u8>,
    ) -> Result<Appended, PublishFailure> {
        let mut publish = Publish::build().payload(body.into()).message_id(msg_id);
        if let Some(seq) = expected_seq {
            publish = publish.expected_last_subject_sequence(seq);
        }
        let ack = match self
            .inner
            .js
            .send_publish(subject.to_owned(), publish)
            .await
        {
            Ok(fut) => fut.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(ack) => Ok(Appended::JetStream {
                stream: ack.stream,
                seq: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                Err(PublishFailure::WrongSequence)
            }
            Err(e) => Err(PublishFailure::Unavailable(e.to_string())),
        }
    }

    /// Record a refused command on `wg.<ort>.dlq.rejected` (audit; expected traffic).
    pub async fn publish_rejected(
        &self,
        rejected: &EventRejected,
        meta: Meta,
    ) -> Result<Appended, BusError> {
        let subject = self.inner.cfg.ort.rejected_subject();
        let env = Envelope::standalone(
            subject,
            rejected,
            EventContext {
                id: Ulid::new(),
                ts: chrono::Utc::now(),
                meta,
            },
            Uuid::new_v4(),
        )?;
        self.append(&env, None).await.map_err(flatten)
    }

    /// Record what a worker could not process on `wg.<ort>.dlq.dead`. `msg_id` should be
    /// deterministic (e.g. `dead:<stream>:<seq>`) so a redelivery does not double it.
    pub async fn publish_dead(
        &self,
        dead: &DlqEvent,
        msg_id: String,
    ) -> Result<Appended, BusError> {
        let subject = self.inner.cfg.ort.dead_subject();
        let env = Envelope::standalone(
            subject,
            dead,
            EventContext {
                id: Ulid::new(),
                ts: chrono::Utc::now(),
                meta: Meta {
                    actor: Actor::System,
                    ip_hash: None,
                    ua_hash: None,
                    msg_id,
                },
            },
            Uuid::new_v4(),
        )?;
        self.append(&env, None).await.map_err(flatten)
    }
}

pub(crate) enum PublishFailure {
    WrongSequence,
    Unavailable(String),
}

fn flatten(e: AppendError) -> BusError {
    match e {
        AppendError::WrongSequence => BusError::Unavailable("unexpected sequence conflict".into()),
        AppendError::Failed(e) => e,
    }
}

fn needs_update(current: &stream::Config, wanted: &stream::Config) -> bool {
    current.subjects != wanted.subjects
        || current.max_age != wanted.max_age
        || current.max_bytes != wanted.max_bytes
        || current.num_replicas != wanted.num_replicas
        || current.duplicate_window != wanted.duplicate_window
        || current.discard != wanted.discard
}

/// Parse and hash a stored message. The hash covers the JSON as stored.
pub(crate) fn decode_stored(subject: &str, seq: u64, payload: &[u8]) -> Result<Stored, BusError> {
    let corrupt = |detail: String| BusError::Corrupt {
        subject: subject.to_owned(),
        seq,
        detail,
    };
    let raw: Value = serde_json::from_slice(payload).map_err(|e| corrupt(e.to_string()))?;
    let hash = domain::hash_value(&raw);
    let envelope: Envelope = serde_json::from_value(raw).map_err(|e| corrupt(e.to_string()))?;
    Ok(Stored {
        seq: Some(seq),
        envelope,
        hash,
        archived: false,
    })
}
