//! Tying Knoten: `createKnoten`'s command, built from the caller's input, its idempotency key
//! and the server's settings (TTL, H3 resolution), executed through the bus.

use bus::{Bus, Stored};
use chrono::Utc;
use domain::events::{KnotenGeknuepft, KnotenTyp};
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};

use super::Origin;
use super::accounts::execute_on;
use crate::config::ApiConfig;
use crate::error::ApiError;

/// A Knoten to tie.
#[derive(Debug, Clone)]
pub(crate) struct NewKnoten {
    pub title: String,
    pub typ: KnotenTyp,
    pub content: Option<serde_json::Value>,
    pub lat: f64,
    pub lng: f64,
}

/// What tying did: the `KnotenGeknuepft` event (the earlier one on a retry) and its payload.
#[derive(Debug, Clone)]
pub(crate) struct Tied {
    pub stored: Stored,
    pub payload: KnotenGeknuepft,
    pub replayed: bool,
}

/// Tie a Knoten for `caller`. The id is `UUIDv5(ns, "knoten:<rolle>:<key>")` and the msg id
/// `<rolle>:createKnoten:<key>`, so a retry with the same key hits the same aggregate and
/// records nothing new.
pub(crate) async fn create_knoten(
    bus: &Bus,
    config: &ApiConfig,
    origin: Origin<'_>,
    knoten: NewKnoten,
) -> Result<Tied, ApiError> {
    let id = origin.derived_id("knoten");
    let cmd = KnotenCommand::Create(CreateKnoten {
        id,
        title: knoten.title,
        typ: knoten.typ,
        content: knoten.content,
        lat: knoten.lat,
        lng: knoten.lng,
        now: Utc::now(),
        ttl: config.knoten_ttl,
        fine_res: config.fine_res,
    });
    let meta = origin.meta("createKnoten");
    let done = execute_on::<Knoten>(bus, id, &cmd, meta, bus::Expect::NewChain).await?;
    let replayed = done.outcome == bus::Outcome::AlreadyDone;
    let stored = done
        .events
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("createKnoten produced no event"))?;
    let payload = stored.envelope.decode()?;
    Ok(Tied {
        stored,
        payload,
        replayed,
    })
}
