//! The viewport subscription (DESIGN.md §5): changes inside a bounding box, grouped per H3 tile
//! by the process's [`crate::tiles::TileHub`], one batched diff per tick, a cursor on every diff
//! and a replay from JetStream when the client comes back with one.
//!
//! Known limit: the tile hub computes each tile's diff once and shares it (`Arc`), but
//! async-graphql resolves and serializes the selection set per subscriber, so the JSON bytes are
//! produced once per subscriber, not once per tile. Sharing the bytes would need a raw
//! WebSocket path beside async-graphql.

use std::time::Duration;

use async_graphql::{Context, Json, Result, SimpleObject, Subscription};
use domain::geo::Bbox;
use domain::{DomainError, StreamDomain};
use futures::{Stream, StreamExt};
use tracing::warn;

use super::Deps;
use super::knoten::KnotenNode;
use super::primitives::{BboxInput, decode_stream_cursor, encode_stream_cursor, id};
use super::social::{FadenNode, NachrichtNode};
use crate::error::ApiError;
use crate::live::replay::{Replay, prepare_replay};
use crate::live::{self, LiveChange, LiveEvent};
use crate::tiles::{self, Delivery, TileSubscription};

/// Most changes of one kind a replayed diff carries; a longer replay comes as several diffs.
const REPLAY_BATCH: usize = 200;
/// How long a replay waits for the next message from JetStream before it gives up (and sends
/// `resync`).
const REPLAY_IDLE: Duration = Duration::from_secs(10);
/// How long a subscription with `after` waits for the live feed to start following the stream.
const FEED_WAIT: Duration = Duration::from_secs(10);

/// What happened to a Knoten.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum KnotenChangeKind {
    /// Its design area was saved (`designVersion`, `content`).
    Designed,
    /// It faded: take it off the live map.
    Decayed,
    /// It became yarn: it stays.
    Twisted,
    /// Moderation hid it (a flag resolved as hidden): take it off the map and close its room.
    Hidden,
}

/// A change to a Knoten already on the map.
#[derive(SimpleObject, Clone, Debug)]
pub struct KnotenChange {
    /// Id of the Knoten (`Knoten.id`).
    pub id: async_graphql::ID,
    /// What happened to it.
    pub kind: KnotenChangeKind,
    /// Latitude of the Knoten in degrees (WGS84).
    pub lat: f64,
    /// Longitude of the Knoten in degrees (WGS84).
    pub lng: f64,
    /// For DESIGNED: the new version.
    pub design_version: Option<i32>,
    /// For DESIGNED: the new content.
    pub content: Option<async_graphql::Json<serde_json::Value>>,
    /// When it happened (RFC 3339, UTC).
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What happened to a thread.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum FadenChangeKind {
    /// Spun or renewed (`faden` holds it).
    Spun,
    /// It faded.
    Decayed,
    /// It became yarn.
    Twisted,
}

/// A change to a thread.
#[derive(SimpleObject, Clone, Debug)]
pub struct FadenChange {
    /// Id of the thread (`Faden.id`).
    pub id: async_graphql::ID,
    /// The Knoten it points to.
    pub knoten_id: async_graphql::ID,
    /// What happened to it.
    pub kind: FadenChangeKind,
    /// For SPUN: the thread with its new expiry.
    pub faden: Option<FadenNode>,
    /// When it happened (RFC 3339, UTC).
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A message in a room that moderation hid (a flag resolved as hidden): remove it from the room.
#[derive(SimpleObject, Clone, Debug)]
pub struct HiddenNachricht {
    /// The message.
    pub id: async_graphql::ID,
    /// The Knoten whose room it was written in.
    pub knoten_id: async_graphql::ID,
    /// When the map recorded the moderation decision.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One batched update of a viewport, sent at most once per tick. New kinds of change come as
/// new list fields; a client ignores the ones it does not know.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct ViewportDiff {
    /// Knoten tied inside the box since the previous diff.
    pub knoten: Vec<KnotenNode>,
    /// Knoten in the box that were designed, faded or hidden by moderation (take those two off
    /// the map) or twisted into yarn.
    pub knoten_changes: Vec<KnotenChange>,
    /// Threads to Knoten in the box: spun or renewed, faded, twisted.
    pub faeden: Vec<FadenChange>,
    /// New messages in the rooms of Knoten in the box.
    pub nachrichten: Vec<NachrichtNode>,
    /// Messages in the rooms of Knoten in the box that moderation hid: remove them.
    pub hidden_nachrichten: Vec<HiddenNachricht>,
    /// Opaque position in the event log this diff covers up to. Pass it as `after` when
    /// subscribing again to receive exactly what was missed.
    pub cursor: String,
    /// True if the server had to drop updates for this subscriber (it was too slow, or its
    /// `after` cursor is older than what the log still holds): reload the viewport with the
    /// `knoten` query, then keep listening. The lists are empty in such a diff.
    pub resync: bool,
    /// True for the keep-alive diff sent when nothing was sent for 30 s. The lists are empty;
    /// the cursor moves on.
    pub heartbeat: bool,
}

impl ViewportDiff {
    fn notice(upto: u64, resync: bool, heartbeat: bool) -> Self {
        Self {
            cursor: encode_cursor(upto),
            resync,
            heartbeat,
            ..Self::default()
        }
    }

    /// Add a change to the list of its kind. A new `LiveChange` variant must say here which
    /// list it goes to.
    fn add(&mut self, change: &LiveChange) {
        match change {
            LiveChange::KnotenCreated(k) => self.knoten.push(k.into()),
            LiveChange::KnotenChanged(k) => self.knoten_changes.push(k.into()),
            LiveChange::FadenChanged(f) => self.faeden.push(f.into()),
            LiveChange::Nachricht(n) => self.nachrichten.push(nachricht(n)),
            LiveChange::NachrichtHidden(n) => self.hidden_nachrichten.push(n.into()),
        }
    }

    fn is_empty(&self) -> bool {
        let Self {
            knoten,
            knoten_changes,
            faeden,
            nachrichten,
            hidden_nachrichten,
            cursor: _,
            resync,
            heartbeat,
        } = self;
        knoten.is_empty()
            && knoten_changes.is_empty()
            && faeden.is_empty()
            && nachrichten.is_empty()
            && hidden_nachrichten.is_empty()
            && !resync
            && !heartbeat
    }
}

impl From<&live::KnotenChanged> for KnotenChange {
    fn from(k: &live::KnotenChanged) -> Self {
        Self {
            id: id(k.id),
            kind: match k.kind {
                live::KnotenChangeKind::Designed => KnotenChangeKind::Designed,
                live::KnotenChangeKind::Decayed => KnotenChangeKind::Decayed,
                live::KnotenChangeKind::Twisted => KnotenChangeKind::Twisted,
                live::KnotenChangeKind::Hidden => KnotenChangeKind::Hidden,
            },
            lat: k.point.lat(),
            lng: k.point.lng(),
            design_version: k.design_version.map(|v| v as i32),
            content: k.content.clone().map(Json),
            at: k.at,
        }
    }
}

impl From<&live::FadenChanged> for FadenChange {
    fn from(f: &live::FadenChanged) -> Self {
        Self {
            id: id(f.id),
            knoten_id: id(f.knoten),
            kind: match f.kind {
                live::FadenChangeKind::Spun => FadenChangeKind::Spun,
                live::FadenChangeKind::Decayed => FadenChangeKind::Decayed,
                live::FadenChangeKind::Twisted => FadenChangeKind::Twisted,
            },
            faden: f.spun.map(|s| FadenNode {
                id: id(f.id),
                typ: s.typ.into(),
                from_rolle_id: id(s.from_rolle),
                to_knoten_id: id(f.knoten),
                created_at: f.at,
                renewed_at: None,
                expires_at: s.expires_at,
                is_yarn: false,
            }),
            at: f.at,
        }
    }
}

impl From<&live::NachrichtHidden> for HiddenNachricht {
    fn from(n: &live::NachrichtHidden) -> Self {
        Self {
            id: id(n.id),
            knoten_id: id(n.knoten),
            at: n.at,
        }
    }
}

fn nachricht(n: &live::NachrichtWritten) -> NachrichtNode {
    NachrichtNode {
        id: id(n.id),
        knoten_id: id(n.knoten),
        author_id: id(n.author),
        text: n.text.clone(),
        mention_ids: n.mentions.iter().copied().map(id).collect(),
        created_at: n.at,
    }
}

const CURSOR_PREFIX: &str = "social:";

pub(crate) fn encode_cursor(seq: u64) -> String {
    encode_stream_cursor(CURSOR_PREFIX, seq)
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<u64, ApiError> {
    decode_stream_cursor(
        CURSOR_PREFIX,
        cursor,
        "not a cursor of the viewport subscription (pass the `cursor` of a diff as it was sent)",
    )
}

fn validate_zoom(zoom: f64) -> Result<f64, ApiError> {
    if zoom.is_finite() && tiles::ZOOM_RANGE.contains(&zoom) {
        Ok(zoom)
    } else {
        Err(DomainError::validation(
            "zoom",
            format!(
                "must be a map zoom between {} and {}, got {zoom}",
                tiles::ZOOM_RANGE.start(),
                tiles::ZOOM_RANGE.end()
            ),
        )
        .into())
    }
}

#[derive(Default)]
pub struct ViewportSubscription;

#[Subscription]
impl ViewportSubscription {
    /// Changes inside a bounding box, batched: at most one diff per tick (1.5 s by default),
    /// none when nothing changed in the box, and a `heartbeat` diff after 30 s of silence.
    ///
    /// The box is covered by H3 tiles whose size follows `zoom` (the web map zoom, 0 to 22);
    /// without `zoom`, the tile size is chosen from the box. A box that needs more tiles than
    /// the server allows is refused (VALIDATION): zoom in.
    ///
    /// With `after` (the `cursor` of the last diff received), the changes in the box since then
    /// are sent first, then the subscription goes live without gap or duplicate. An `after`
    /// older than what the log still holds yields one diff with `resync: true`.
    async fn viewport(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The box to watch, in degrees; its area (width times height) must not exceed `Config.maxBboxAreaDeg2` square degrees (VALIDATION)."
        )]
        bbox: BboxInput,
        #[graphql(
            desc = "Map zoom, 0 to 22 (web map convention); it sets the tile size. Omitted: chosen from the box."
        )]
        zoom: Option<f64>,
        #[graphql(desc = "The `cursor` of the last diff received: replay what was missed.")]
        after: Option<String>,
    ) -> Result<impl Stream<Item = ViewportDiff> + use<>> {
        let deps = ctx.data::<Deps>()?.clone();
        let bbox = bbox.validate(deps.config.max_bbox_area_deg2)?;
        let res = match zoom {
            Some(z) => tiles::tile_resolution(validate_zoom(z)?, (bbox.south + bbox.north) / 2.0),
            None => tiles::resolution_for_box(&bbox),
        };
        let max_tiles = deps.config.max_viewport_tiles;
        let cover = tiles::cover(&bbox, res, max_tiles).ok_or_else(|| {
            ApiError::from(DomainError::validation(
                "zoom",
                format!(
                    "the box needs more than {max_tiles} tiles at {}; zoom in (send a smaller box) or send the map's zoom",
                    zoom.map_or_else(|| "the coarsest tile size".to_owned(), |z| format!("zoom {z}"))
                ),
            ))
        })?;
        let after = after.as_deref().map(decode_cursor).transpose()?;

        if after.is_some() {
            wait_for_feed(&deps).await?;
        }
        // Register before looking at the log: every change after the registration position
        // arrives live, so a replay that reads at least that far leaves no gap.
        let (subscription, registered_at) = deps.hub.tiles(&deps.config).register(cover);
        let replay = match after {
            Some(cursor) => {
                Some(prepare_replay(&deps.bus, StreamDomain::Social, cursor, registered_at).await?)
            }
            None => None,
        };
        Ok(diffs(
            subscription,
            bbox,
            replay,
            deps.hub.decoder().clone(),
        ))
    }
}

async fn wait_for_feed(deps: &Deps) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + FEED_WAIT;
    while !deps.hub.is_following() {
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::unavailable(
                "the live feed does not follow the event log yet",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn diffs(
    subscription: TileSubscription<LiveEvent>,
    bbox: Bbox,
    replay: Option<Replay>,
    decoder: live::social::Decoder,
) -> impl Stream<Item = ViewportDiff> + use<> {
    async_stream::stream! {
        // Changes up to here were sent by the replay (or are not wanted): drop them live.
        let mut seen_upto = 0;
        match replay {
            None => {}
            Some(Replay::Nothing { upto }) => seen_upto = upto,
            Some(Replay::Resync { upto }) => {
                seen_upto = upto;
                yield ViewportDiff::notice(upto, true, false);
            }
            Some(Replay::Read { mut messages, upto }) => {
                seen_upto = upto;
                let mut diff = ViewportDiff::default();
                let mut batched = 0;
                loop {
                    let next = tokio::time::timeout(REPLAY_IDLE, messages.next()).await;
                    let msg = match next {
                        Ok(Some(Ok(msg))) => msg,
                        other => {
                            let why = match other {
                                Err(_) => "timed out".to_owned(),
                                Ok(None) => "ended".to_owned(),
                                Ok(Some(Err(e))) => e.to_string(),
                                Ok(Some(Ok(_))) => String::new(),
                            };
                            warn!(%why, "viewport replay broke off; the subscriber resyncs");
                            diff = ViewportDiff::notice(upto, true, false);
                            batched = 1;
                            break;
                        }
                    };
                    let Ok(info) = msg.info() else { continue };
                    let (seq, pending) = (info.stream_sequence, info.pending);
                    if seq > upto {
                        // The live feed delivers it.
                        break;
                    }
                    if let Some(change) = decoder.decode(&msg.payload).await
                        && tiles::in_box(change.point(), &bbox)
                    {
                        diff.add(&change);
                        batched += 1;
                    }
                    if batched >= REPLAY_BATCH {
                        diff.cursor = encode_cursor(seq);
                        yield std::mem::take(&mut diff);
                        batched = 0;
                    }
                    if seq >= upto || pending == 0 {
                        break;
                    }
                }
                if batched > 0 {
                    diff.cursor = encode_cursor(upto);
                    yield diff;
                }
            }
        }
        loop {
            let delivery = subscription.next().await;
            let diff = match delivery {
                Delivery::Changes { upto, tiles } => {
                    let mut diff = ViewportDiff::notice(upto.max(seen_upto), false, false);
                    for e in tiles::changes_in_box(&tiles, seen_upto, &bbox) {
                        diff.add(&e.change);
                    }
                    diff
                }
                Delivery::Resync { upto } => ViewportDiff::notice(upto.max(seen_upto), true, false),
                Delivery::Heartbeat { upto } => {
                    ViewportDiff::notice(upto.max(seen_upto), false, true)
                }
            };
            if !diff.is_empty() {
                yield diff;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for seq in [0, 1, 42, u64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(seq)).unwrap(), seq);
        }
        for bad in [
            "",
            "garbage!",
            "c29jaWFsOg", // "social:"
            &URL_SAFE_NO_PAD.encode("social:-1"),
            &URL_SAFE_NO_PAD.encode("social:+1"),
            &URL_SAFE_NO_PAD.encode("other:1"),
            &URL_SAFE_NO_PAD.encode("social:99999999999999999999999"),
        ] {
            let err = decode_cursor(bad).unwrap_err();
            assert_eq!(err.code(), "VALIDATION", "{bad}");
        }
    }

    #[test]
    fn zoom_outside_0_to_22_is_refused() {
        assert!(validate_zoom(0.0).is_ok());
        assert!(validate_zoom(22.0).is_ok());
        for z in [-0.1, 22.5, 30.0, f64::NAN, f64::INFINITY] {
            assert!(validate_zoom(z).is_err(), "{z}");
        }
    }
}
