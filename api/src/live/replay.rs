//! Replaying a stream after a client's cursor: what a subscription with `after` does before it
//! goes live (the viewport and the webrat alike). Plans the read of JetStream from the cursor
//! up to the subscription's registration position; the subscription decodes what it reads.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use bus::Bus;
use domain::StreamDomain;

use crate::error::ApiError;

/// What a subscription with `after` does before it goes live (viewport and webrat alike).
pub(crate) enum Replay {
    /// Nothing was missed: go live, dropping changes up to `upto`.
    Nothing { upto: u64 },
    /// The log no longer holds what was missed (or the cursor is from another log): tell the
    /// client to reload, then go live after `upto`.
    Resync { upto: u64 },
    /// Read the log after the cursor up to `upto`, then go live after `upto`.
    Read {
        messages: Box<async_nats::jetstream::consumer::pull::Ordered>,
        upto: u64,
    },
}

/// Plan the replay of `domain`'s stream after `cursor` for a subscription registered at
/// `registered_at`.
pub(crate) async fn prepare_replay(
    bus: &Bus,
    domain: StreamDomain,
    cursor: u64,
    registered_at: u64,
) -> Result<Replay, ApiError> {
    let ort = &bus.config().ort;
    let mut stream = bus
        .jetstream()
        .get_stream(ort.stream_name(domain))
        .await
        .map_err(ApiError::unavailable)?;
    let state = stream
        .info()
        .await
        .map_err(ApiError::unavailable)?
        .state
        .clone();
    // Read after registering: the log's end is at least the registration position, and at
    // least where the live feed started following.
    let upto = state.last_sequence.max(registered_at);
    if cursor > state.last_sequence || cursor.saturating_add(1) < state.first_sequence {
        return Ok(Replay::Resync { upto });
    }
    if cursor >= upto {
        return Ok(Replay::Nothing { upto: cursor });
    }
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: ort.stream_filter(domain),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: cursor + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(ApiError::unavailable)?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(Replay::Nothing { upto });
    }
    let messages = consumer.messages().await.map_err(ApiError::unavailable)?;
    Ok(Replay::Read {
        messages: Box::new(messages),
        upto,
    })
}
