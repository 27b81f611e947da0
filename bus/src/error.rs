use thiserror::Error;

/// A technical failure of the backbone (never a domain refusal).
#[derive(Debug, Error)]
pub enum BusError {
    #[error("NATS connection failed: {0}")]
    Connect(String),
    #[error("JetStream stream setup for {stream} failed: {detail}")]
    Stream { stream: String, detail: String },
    #[error("JetStream is unavailable: {0}")]
    Unavailable(String),
    #[error("Redis fallback failed: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("stored event on {subject} seq {seq} is unreadable: {detail}")]
    Corrupt {
        subject: String,
        seq: u64,
        detail: String,
    },
}
