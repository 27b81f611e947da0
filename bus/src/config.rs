use std::time::Duration;

use domain::Ort;

/// How the streams of one Ort are set up and how publishing behaves.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub ort: Ort,
    /// 1 in phase A, 3 with a NATS cluster.
    pub replicas: usize,
    /// Per stream. JetStream reserves it against the server's storage limit (DESIGN.md §3).
    pub max_bytes: i64,
    pub max_age: Duration,
    pub duplicate_window: Duration,
    /// How long to wait for a JetStream ack before the event goes to the fallback.
    pub publish_timeout: Duration,
    /// How often a command is decided again after a "wrong last sequence" answer.
    pub max_conflict_retries: u32,
}

impl BusConfig {
    /// The seed's policies (max_age 336h, 2m dedup window); max_bytes as given.
    pub fn new(ort: Ort, max_bytes: i64) -> Self {
        Self {
            ort,
            replicas: 1,
            max_bytes,
            max_age: Duration::from_secs(336 * 3600),
            duplicate_window: Duration::from_secs(120),
            publish_timeout: Duration::from_secs(2),
            max_conflict_retries: 50,
        }
    }
}
