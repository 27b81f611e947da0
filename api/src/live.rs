//! Live fan-out: each API instance follows the social stream itself (an ordered consumer,
//! resuming after the last sequence it saw) and broadcasts decoded changes to its viewport
//! subscribers. Several API instances therefore serve the same live map.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use bus::Bus;
use domain::events::EventType;
use domain::{Envelope, StreamDomain};
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use crate::graphql::KnotenNode;

/// One change on the map, with the stream position it came from.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub seq: u64,
    pub change: LiveChange,
}

#[derive(Debug, Clone)]
pub enum LiveChange {
    KnotenCreated(KnotenNode),
}

/// Broadcast of live changes. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    last_seq: Arc<AtomicU64>,
}

impl LiveHub {
    /// A hub with no feed (for schema export and tests that need no live data).
    pub fn detached() -> Self {
        let (tx, _) = broadcast::channel(16);
        Self {
            tx,
            last_seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Follow the Ort's social stream from now on until `shutdown` turns true.
    pub fn spawn(bus: Bus, shutdown: watch::Receiver<bool>) -> Self {
        let (tx, _) = broadcast::channel(8192);
        let hub = Self {
            tx,
            last_seq: Arc::new(AtomicU64::new(0)),
        };
        tokio::spawn(hub.clone().follow(bus, shutdown));
        hub
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    /// The last stream sequence the hub has seen (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::SeqCst)
    }

    async fn follow(self, bus: Bus, mut shutdown: watch::Receiver<bool>) {
        let name = bus.config().ort.stream_name(StreamDomain::Social);
        let filter = bus.config().ort.stream_filter(StreamDomain::Social);
        while !*shutdown.borrow() {
            let resume = self.last_seq();
            let deliver = if resume == 0 {
                DeliverPolicy::New
            } else {
                DeliverPolicy::ByStartSequence {
                    start_sequence: resume + 1,
                }
            };
            let messages = async {
                let stream = bus
                    .jetstream()
                    .get_stream(&name)
                    .await
                    .map_err(|e| e.to_string())?;
                let consumer = stream
                    .create_consumer(OrderedConfig {
                        filter_subject: filter.clone(),
                        deliver_policy: deliver,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                consumer.messages().await.map_err(|e| e.to_string())
            }
            .await;
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "live feed unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    m = messages.next() => m,
                    _ = shutdown.changed() => return,
                };
                let Some(Ok(msg)) = next else {
                    warn!("live feed interrupted; resuming");
                    break;
                };
                let Ok(info) = msg.info() else { continue };
                let seq = info.stream_sequence;
                self.last_seq.store(seq, Ordering::SeqCst);
                if let Some(change) = decode(&msg.payload) {
                    // No receivers is fine: nobody is watching right now.
                    let _ = self.tx.send(Arc::new(LiveEvent { seq, change }));
                }
            }
        }
    }
}

fn decode(payload: &[u8]) -> Option<LiveChange> {
    let env: Envelope = serde_json::from_slice(payload).ok()?;
    match env.known_type()? {
        EventType::KnotenGeknuepft => match KnotenNode::from_event(&env) {
            Ok(k) => Some(LiveChange::KnotenCreated(k)),
            Err(e) => {
                debug!(error = %e, "undecodable KnotenGeknuepft on the live feed");
                None
            }
        },
        _ => None,
    }
}
