//! The Redis Streams fallback (DESIGN.md §3 "Fallback"): while JetStream does not answer,
//! events are appended to one Redis stream per Ort after `SET dedupe:<ort>:<msg_id> NX EX 120`, and a
//! drain re-publishes them to JetStream in order with their original msg ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain::Ort;
use domain::events::DlqEvent;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::StreamRangeReply;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::error::BusError;
use crate::streams::{Appended, Bus, PublishFailure};

/// One event waiting in Redis.
#[derive(Debug, Clone)]
pub struct FallbackEntry {
    /// Redis stream entry id (`<ms>-<n>`), the order of arrival.
    pub entry_id: String,
    pub subject: String,
    pub msg_id: String,
    pub expected_seq: Option<u64>,
    pub body: Vec<u8>,
}

/// Handle to the fallback of one Ort. Cheap to clone.
#[derive(Clone)]
pub struct Fallback {
    redis: ConnectionManager,
    key: String,
    /// `dedupe:<ort>:`: msg ids are unique per Ort (JetStream dedups per stream), so the
    /// Redis dedup keys are scoped the same way.
    dedupe_prefix: String,
    active: Arc<AtomicBool>,
    /// Held while deciding "fallback or JetStream" and while the drain decides it is done,
    /// so that no event slips past events still waiting in Redis.
    order: Arc<Mutex<()>>,
}

impl Fallback {
    pub async fn connect(url: &str, ort: &Ort) -> Result<Self, BusError> {
        let client = redis::Client::open(url)?;
        let redis = ConnectionManager::new(client).await?;
        let key = format!("wg:{}:fallback", ort.as_str());
        let fb = Self {
            redis,
            key,
            dedupe_prefix: format!("dedupe:{}:", ort.as_str()),
            active: Arc::new(AtomicBool::new(false)),
            order: Arc::new(Mutex::new(())),
        };
        // Events left from before a restart keep the fallback active until drained.
        if fb.pending().await? > 0 {
            fb.active.store(true, Ordering::SeqCst);
        }
        Ok(fb)
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Redis answers PING.
    pub async fn ready(&self) -> Result<(), BusError> {
        let mut conn = self.redis.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Events waiting to be drained.
    pub async fn pending(&self) -> Result<u64, BusError> {
        let mut conn = self.redis.clone();
        Ok(conn.xlen(&self.key).await?)
    }

    pub(crate) async fn push_if_active(
        &self,
        subject: &str,
        msg_id: &str,
        expected_seq: Option<u64>,
        body: &[u8],
    ) -> Result<Option<Appended>, BusError> {
        if !self.is_active() {
            return Ok(None);
        }
        let _order = self.order.lock().await;
        if !self.is_active() {
            return Ok(None);
        }
        self.push(subject, msg_id, expected_seq, body)
            .await
            .map(Some)
    }

    /// Turn the fallback on (recording `FallbackActivated` first when it was off) and push.
    pub(crate) async fn activate_and_push(
        &self,
        notice: &(String, String, Vec<u8>),
        subject: &str,
        msg_id: &str,
        expected_seq: Option<u64>,
        body: &[u8],
    ) -> Result<Appended, BusError> {
        let _order = self.order.lock().await;
        if !self.active.swap(true, Ordering::SeqCst) {
            let (n_subject, n_msg_id, n_body) = notice;
            self.push(n_subject, n_msg_id, None, n_body).await?;
        }
        self.push(subject, msg_id, expected_seq, body).await
    }

    async fn push(
        &self,
        subject: &str,
        msg_id: &str,
        expected_seq: Option<u64>,
        body: &[u8],
    ) -> Result<Appended, BusError> {
        let mut conn = self.redis.clone();
        let fresh: Option<String> = redis::cmd("SET")
            .arg(format!("{}{msg_id}", self.dedupe_prefix))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(120)
            .query_async(&mut conn)
            .await?;
        if fresh.is_none() {
            return Ok(Appended::Fallback { duplicate: true });
        }
        let expected = expected_seq.map(|s| s.to_string()).unwrap_or_default();
        let _: String = conn
            .xadd(
                &self.key,
                "*",
                &[
                    ("subject", subject.as_bytes()),
                    ("msg_id", msg_id.as_bytes()),
                    ("expected_seq", expected.as_bytes()),
                    ("body", body),
                ],
            )
            .await?;
        metrics::counter!("wg_fallback_events_total").increment(1);
        Ok(Appended::Fallback { duplicate: false })
    }

    async fn oldest(&self, count: usize) -> Result<Vec<FallbackEntry>, BusError> {
        let mut conn = self.redis.clone();
        let reply: StreamRangeReply = conn.xrange_count(&self.key, "-", "+", count).await?;
        let mut out = Vec::with_capacity(reply.ids.len());
        for entry in reply.ids {
            let field = |name: &str| -> Vec<u8> {
                entry
                    .map
                    .get(name)
                    .and_then(|v| redis::from_redis_value::<Vec<u8>>(v).ok())
                    .unwrap_or_default()
            };
            let text = |name: &str| String::from_utf8_lossy(&field(name)).into_owned();
            out.push(FallbackEntry {
                subject: text("subject"),
                msg_id: text("msg_id"),
                expected_seq: text("expected_seq").parse().ok(),
                body: field("body"),
                entry_id: entry.id,
            });
        }
        Ok(out)
    }

    async fn remove(&self, entry_id: &str) -> Result<(), BusError> {
        let mut conn = self.redis.clone();
        let _: u64 = conn.xdel(&self.key, &[entry_id]).await?;
        Ok(())
    }
}

impl Bus {
    /// Re-publish everything waiting in the fallback to JetStream, oldest first, with the
    /// original msg ids (JetStream drops what it already has). Stops at the first failure and
    /// leaves the rest in Redis. Returns how many were drained.
    pub async fn drain_fallback(&self) -> Result<usize, BusError> {
        let Some(fb) = self.fallback().cloned() else {
            return Ok(0);
        };
        let mut drained = 0;
        loop {
            let batch = fb.oldest(256).await?;
            if batch.is_empty() {
                let _order = fb.order.lock().await;
                if fb.pending().await? == 0 {
                    if fb.active.swap(false, Ordering::SeqCst) {
                        info!(
                            drained,
                            "fallback drained; publishing straight to JetStream again"
                        );
                    }
                    return Ok(drained);
                }
                continue;
            }
            for entry in batch {
                match self
                    .publish_js(
                        &entry.subject,
                        &entry.msg_id,
                        entry.expected_seq,
                        entry.body.clone(),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(PublishFailure::WrongSequence) => {
                        // Someone wrote to this aggregate while the event waited: it cannot join
                        // the chain as it is. Keep it, visibly, as a dead letter.
                        warn!(msg_id = %entry.msg_id, "fallback event conflicts with its chain; dead-lettered");
                        metrics::counter!("wg_dead_letters_total", "reason" => "conflict_after_fallback").increment(1);
                        let dead = DlqEvent {
                            reason: "conflict_after_fallback".into(),
                            detail:
                                "the aggregate changed while the event waited in the Redis fallback"
                                    .into(),
                            stream: "redis-fallback".into(),
                            stream_seq: 0,
                            subject: entry.subject.clone(),
                            original: String::from_utf8_lossy(&entry.body).into_owned(),
                        };
                        self.publish_js_dead(&dead, &entry.msg_id).await?;
                    }
                    Err(PublishFailure::Unavailable(reason)) => {
                        return Err(BusError::Unavailable(reason));
                    }
                }
                fb.remove(&entry.entry_id).await?;
                drained += 1;
                metrics::counter!("wg_fallback_drained_total").increment(1);
            }
        }
    }

    async fn publish_js_dead(&self, dead: &DlqEvent, msg_id: &str) -> Result<(), BusError> {
        let env = domain::Envelope::standalone(
            self.config().ort.dead_subject(),
            dead,
            domain::EventContext {
                id: ulid::Ulid::new(),
                ts: chrono::Utc::now(),
                meta: domain::Meta {
                    actor: domain::Actor::System,
                    ip_hash: None,
                    ua_hash: None,
                    msg_id: format!("dead:{msg_id}"),
                },
            },
            uuid::Uuid::new_v4(),
        )?;
        let body = serde_json::to_vec(&env)?;
        match self
            .publish_js(&env.subject, &env.meta.msg_id, None, body)
            .await
        {
            Ok(_) => Ok(()),
            Err(PublishFailure::WrongSequence) => Ok(()),
            Err(PublishFailure::Unavailable(r)) => Err(BusError::Unavailable(r)),
        }
    }

    /// Drain the fallback every `every` until `shutdown` resolves.
    pub async fn run_drain(
        &self,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let Some(fb) = self.fallback().cloned() else {
            return;
        };
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            match fb.pending().await {
                Ok(0) if !fb.is_active() => continue,
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "fallback: Redis unavailable");
                    continue;
                }
            }
            if let Err(e) = self.drain_fallback().await {
                warn!(error = %e, "fallback drain paused; retrying");
            }
        }
    }
}
