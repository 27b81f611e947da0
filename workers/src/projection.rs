//! The projection worker: one durable pull consumer per projected stream (ack_wait 60 s,
//! max_ack_pending 1000), batches applied by the [`Projector`], dead letters published, then
//! acknowledged. Redelivery is harmless: the projector skips what it has archived.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use bus::Bus;
use chrono::{DateTime, Utc};
use domain::StreamDomain;
use domain::events::DlqEvent;
use futures::StreamExt;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::projector::{BatchReport, Incoming, Projector};

#[derive(Debug, Clone)]
pub struct ProjectionConfig {
    pub durable_name: String,
    pub batch_size: usize,
    pub fetch_wait: Duration,
    pub ack_wait: Duration,
    pub max_ack_pending: i64,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            durable_name: "projection".into(),
            batch_size: 500,
            fetch_wait: Duration::from_millis(250),
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 1000,
        }
    }
}

#[derive(Clone)]
pub struct ProjectionWorker {
    bus: Bus,
    projector: Projector,
    cfg: ProjectionConfig,
}

impl ProjectionWorker {
    pub fn new(bus: Bus, projector: Projector, cfg: ProjectionConfig) -> Self {
        Self {
            bus,
            projector,
            cfg,
        }
    }

    /// Consume every projected stream until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        // A JoinSet aborts its tasks when dropped, so aborting `run` stops every consumer.
        let mut tasks = tokio::task::JoinSet::new();
        for domain in StreamDomain::PROJECTED {
            let worker = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { worker.run_stream(domain, shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn consumer(
        &self,
        domain: StreamDomain,
    ) -> Result<jetstream::consumer::PullConsumer, String> {
        let name = self.bus.config().ort.stream_name(domain);
        let stream = self
            .bus
            .jetstream()
            .get_stream(&name)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        stream
            .get_or_create_consumer(
                &self.cfg.durable_name,
                pull::Config {
                    durable_name: Some(self.cfg.durable_name.clone()),
                    description: Some("Weberei projection worker".into()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.cfg.ack_wait,
                    max_ack_pending: self.cfg.max_ack_pending,
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("{name}: {e}"))
    }

    async fn run_stream(&self, domain: StreamDomain, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        while !*shutdown.borrow() {
            let consumer = match self.consumer(domain).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "projection: consumer unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            info!(stream = domain.as_str(), "projection consuming");
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let fetched = tokio::select! {
                    f = self.fetch(&consumer) => f,
                    _ = shutdown.changed() => return,
                };
                match fetched {
                    Ok(batch) if batch.is_empty() => {}
                    Ok(batch) => {
                        if let Err(e) = self.handle(batch).await {
                            error!(error = %e, "projection batch failed; will be redelivered");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "projection fetch failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                }
            }
        }
    }

    async fn fetch(
        &self,
        consumer: &jetstream::consumer::PullConsumer,
    ) -> Result<Vec<jetstream::Message>, String> {
        let mut messages = consumer
            .fetch()
            .max_messages(self.cfg.batch_size)
            .expires(self.cfg.fetch_wait)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(m) = messages.next().await {
            out.push(m.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    async fn handle(&self, batch: Vec<jetstream::Message>) -> Result<(), String> {
        let mut incoming = Vec::with_capacity(batch.len());
        for m in &batch {
            let info = m.info().map_err(|e| e.to_string())?;
            let published =
                DateTime::<Utc>::from_timestamp_nanos(info.published.unix_timestamp_nanos() as i64);
            metrics::gauge!("wg_projection_pending", "stream" => info.stream.to_owned())
                .set(info.pending as f64);
            incoming.push(Incoming {
                stream: info.stream.to_owned(),
                seq: info.stream_sequence,
                subject: m.subject.to_string(),
                payload: m.payload.to_vec(),
                published: Some(published),
            });
        }
        let report = self
            .projector
            .apply_batch(&incoming)
            .await
            .map_err(|e| e.to_string())?;
        self.publish_dead(&report).await?;
        let now = Utc::now();
        for i in &incoming {
            if let Some(p) = i.published {
                let lag = (now - p).num_microseconds().unwrap_or(0) as f64 / 1e6;
                metrics::histogram!("wg_projection_lag_seconds").record(lag);
                metrics::gauge!("wg_projection_last_lag_seconds").set(lag);
            }
        }
        for m in batch {
            m.ack().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn publish_dead(&self, report: &BatchReport) -> Result<(), String> {
        for d in &report.dead {
            warn!(reason = d.reason, stream = %d.incoming.stream, seq = d.incoming.seq, detail = %d.detail, "dead letter");
            metrics::counter!("wg_dead_letters_total", "reason" => d.reason).increment(1);
            let dead = DlqEvent {
                reason: d.reason.to_owned(),
                detail: d.detail.clone(),
                stream: d.incoming.stream.clone(),
                stream_seq: d.incoming.seq,
                subject: d.incoming.subject.clone(),
                original: String::from_utf8_lossy(&d.incoming.payload).into_owned(),
            };
            self.bus
                .publish_dead(
                    &dead,
                    format!("dead:{}:{}", d.incoming.stream, d.incoming.seq),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
