//! The Webrat's subscriptions. `webrat` uses the live map's tile machinery
//! ([`crate::tiles::TileHub`], fed by the governance stream's follower): one shared diff per
//! tile and tick, a bounded queue per subscriber (full: `resync`), heartbeats, and a cursor on
//! the governance stream's position with a replay via `after`. `antragChanged` reads the
//! follower's broadcast directly.

use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use domain::geo::Bbox;
use domain::{AggregateType, DomainError, StreamDomain};
use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::types::{AntragNode, AntragStatusGql, AntragTally, EinspruchNode, StimmeNode, int};
use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::primitives::{
    BboxInput, decode_stream_cursor, encode_stream_cursor, id, parse_id,
};
use crate::live::governance::{
    GovernanceDecoder, GovernanceEvent, WebratChange, WebratChangeKind, weberei_centre,
};
use crate::live::replay::{Replay, prepare_replay};
use crate::tiles::{self, Delivery, TileSubscription};

// ---------------------------------------------------------------------------------------------
// Subscriptions

/// What happened to an Antrag.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AntragChangeKind {
    /// It was filed (`antrag` holds it).
    Filed,
    /// Someone objected (`objection` holds it).
    Objection,
    /// Someone voted (`stimme` holds it).
    Vote,
    /// At the deadline, participation reached the quorum (a DECIDED change follows).
    QuorumReached,
    /// It was decided (`status` and `tally` hold the result).
    Decided,
    /// Moderation hid it (a flag resolved as hidden): take it off the panel.
    Hidden,
    /// Only on `antragChanged`: changes were dropped because this subscriber read too slowly.
    /// Reload the Antrag with the `antrag` query, then keep listening.
    Resync,
}

/// A change to an Antrag, placed at its Weberei's centre.
#[derive(SimpleObject, Clone, Debug)]
pub struct AntragChange {
    /// The Antrag.
    pub antrag_id: ID,
    /// What happened.
    pub kind: AntragChangeKind,
    /// Its Weberei: H3 cell at resolution 7, hex.
    pub weberei: String,
    /// Latitude of the Weberei's centre.
    pub weberei_lat: f64,
    /// Longitude of the Weberei's centre.
    pub weberei_lng: f64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// For FILED: the Antrag as filed.
    pub antrag: Option<AntragNode>,
    /// For OBJECTION: the objection.
    pub objection: Option<EinspruchNode>,
    /// For VOTE: the direct vote.
    pub stimme: Option<StimmeNode>,
    /// For DECIDED: the status.
    pub status: Option<AntragStatusGql>,
    /// For DECIDED: the decided numbers.
    pub tally: Option<AntragTally>,
}

impl AntragChange {
    pub(crate) fn new(id: Uuid, kind: AntragChangeKind, at: DateTime<Utc>) -> Self {
        Self {
            antrag_id: ID(id.to_string()),
            kind,
            weberei: String::new(),
            weberei_lat: 0.0,
            weberei_lng: 0.0,
            at,
            antrag: None,
            objection: None,
            stimme: None,
            status: None,
            tally: None,
        }
    }

    /// Put the change at the centre of Weberei `hex`.
    pub(crate) fn place(&mut self, hex: &str) -> Result<(), DomainError> {
        (self.weberei, self.weberei_lat, self.weberei_lng) = weberei_centre(hex)?;
        Ok(())
    }
}

impl From<&WebratChange> for AntragChange {
    fn from(c: &WebratChange) -> Self {
        let kind = match c.kind {
            WebratChangeKind::Filed => AntragChangeKind::Filed,
            WebratChangeKind::Objection => AntragChangeKind::Objection,
            WebratChangeKind::Vote => AntragChangeKind::Vote,
            WebratChangeKind::QuorumReached => AntragChangeKind::QuorumReached,
            WebratChangeKind::Decided => AntragChangeKind::Decided,
            WebratChangeKind::Hidden => AntragChangeKind::Hidden,
        };
        let mut change = Self::new(c.antrag_id, kind, c.at);
        change.weberei.clone_from(&c.weberei);
        (change.weberei_lat, change.weberei_lng) = (c.weberei_lat, c.weberei_lng);
        change.antrag = c
            .filed
            .as_ref()
            .and_then(|p| AntragNode::filed(c.antrag_id, p, c.at).ok());
        change.objection = c.objection.as_ref().map(|o| EinspruchNode {
            antrag_id: id(c.antrag_id),
            rolle_id: id(o.by),
            reason: o.reason.clone(),
            created_at: c.at,
        });
        change.stimme = c.vote.map(|(by, vote)| StimmeNode {
            antrag_id: id(c.antrag_id),
            rolle_id: id(by),
            vote: vote.into(),
            created_at: c.at,
        });
        if let Some(d) = &c.decision {
            use domain::events::AntragStatus as S;
            change.status = Some(match d.status {
                S::Angenommen => AntragStatusGql::Angenommen,
                S::Abgelehnt => AntragStatusGql::Abgelehnt,
                S::QuorumVerfehlt => AntragStatusGql::QuorumVerfehlt,
            });
            change.tally = Some(AntragTally {
                ja: int(d.ja),
                nein: int(d.nein),
                enthaltung: int(d.enthaltung),
                participation: int(d.participation),
                delegated: int(d
                    .counted
                    .iter()
                    .filter(|c| c.delegated_from.is_some())
                    .count() as u64),
                decided: true,
            });
        }
        change
    }
}

/// One batched update of the Webrat in a viewport, sent at most once per tick.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct WebratDiff {
    /// Changes to Anträge whose Weberei centre lies in the box, in log order.
    pub changes: Vec<AntragChange>,
    /// Opaque position in the event log this diff covers up to. Pass it as `after` when
    /// subscribing again to receive exactly what was missed.
    pub cursor: String,
    /// True if updates were dropped for this subscriber (too slow, or `after` is older than the
    /// log holds): reload with the `antraege` query, then keep listening. `changes` is empty.
    pub resync: bool,
    /// True for the keep-alive diff sent when nothing was sent for 30 s.
    pub heartbeat: bool,
}

impl WebratDiff {
    fn notice(upto: u64, resync: bool, heartbeat: bool) -> Self {
        Self {
            changes: Vec::new(),
            cursor: encode_webrat_cursor(upto),
            resync,
            heartbeat,
        }
    }
}

const WEBRAT_CURSOR_PREFIX: &str = "governance:";

fn encode_webrat_cursor(seq: u64) -> String {
    encode_stream_cursor(WEBRAT_CURSOR_PREFIX, seq)
}

fn decode_webrat_cursor(cursor: &str) -> Result<u64, ApiError> {
    decode_stream_cursor(
        WEBRAT_CURSOR_PREFIX,
        cursor,
        "not a cursor of the webrat subscription (pass the `cursor` of a diff as it was sent)",
    )
}

/// Most changes one replayed diff carries.
pub(super) const REPLAY_BATCH: usize = 200;
/// How long a replay waits for the next message before it gives up (and sends `resync`).
pub(super) const REPLAY_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Default)]
pub struct GovernanceSubscription;

#[Subscription]
impl GovernanceSubscription {
    /// Changes of the Webrat inside a bounding box: Anträge filed, objected to, voted on and
    /// decided in the Webereien whose centre lies in the box. At most one diff per tick (1.5 s
    /// by default), none when nothing changed, a `heartbeat` diff after 30 s of silence.
    ///
    /// With `after` (the `cursor` of the last diff received), what was missed is sent first,
    /// then the subscription goes live without gap or duplicate; an `after` older than what
    /// the log still holds yields one diff with `resync: true`.
    async fn webrat(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The box to watch, in degrees: the changes of the Webereien whose centre lies in it. Its area (width times height) must not exceed `Config.maxBboxAreaDeg2` square degrees (VALIDATION)."
        )]
        bbox: BboxInput,
        #[graphql(
            desc = "Map zoom, 0 to 22 (web map convention). Webereien are fixed cells, so it only has to be valid."
        )]
        zoom: Option<f64>,
        #[graphql(desc = "The `cursor` of the last diff received: replay what was missed.")]
        after: Option<String>,
    ) -> Result<impl Stream<Item = WebratDiff> + use<>> {
        let deps = ctx.data::<Deps>()?.clone();
        let bbox = bbox.validate(deps.config.max_bbox_area_deg2)?;
        if let Some(z) = zoom
            && !(z.is_finite() && (0.0..=22.0).contains(&z))
        {
            return Err(ApiError::from(DomainError::validation(
                "zoom",
                format!("must be a map zoom between 0 and 22, got {z}"),
            ))
            .into());
        }
        let after = after.as_deref().map(decode_webrat_cursor).transpose()?;
        let feed = deps.hub.governance().clone();
        if after.is_some() {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while !feed.is_following() {
                if tokio::time::Instant::now() > deadline {
                    return Err(ApiError::unavailable(
                        "the Webrat feed does not follow the event log yet",
                    )
                    .into());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        // Register before looking at the log: every change after the registration position
        // arrives live, so a replay that reads at least that far leaves no gap.
        let cover = webrat_tiles(&bbox, deps.config.max_viewport_tiles);
        let (subscription, registered_at) = feed.tiles(&deps.config).register(cover);
        let replay = match after {
            Some(cursor) => Some(
                prepare_replay(&deps.bus, StreamDomain::Governance, cursor, registered_at).await?,
            ),
            None => None,
        };
        Ok(webrat_diffs(
            subscription,
            feed.decoder().clone(),
            bbox,
            replay,
        ))
    }

    /// Every change to one Antrag as it happens: objections, votes, the quorum and the
    /// decision. NOT_FOUND for an Antrag that does not exist.
    async fn antrag_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Antrag to follow (`Antrag.id`).")] id: ID,
    ) -> Result<impl Stream<Item = AntragChange> + use<>> {
        let deps = ctx.data::<Deps>()?.clone();
        let id = parse_id(&id, "id")?;
        let rx = deps.hub.governance().subscribe();
        let chain = deps
            .bus
            .history(AggregateType::Antrag, id)
            .await
            .map_err(ApiError::from)?;
        if chain.is_empty() {
            return Err(
                ApiError::from(DomainError::NotFound(format!("there is no Antrag {id}"))).into(),
            );
        }
        let weberei = chain
            .first()
            .and_then(|e| e.envelope.decode::<domain::events::AntragGestellt>().ok())
            .map(|p| p.weavery_h3)
            .unwrap_or_default();
        Ok(changes_of_one_antrag(rx, id, weberei))
    }
}

/// The changes of Antrag `id` from the Webrat feed. A subscriber that lagged behind the feed
/// (its channel dropped changes, some of which may have been this Antrag's) gets one `RESYNC`.
fn changes_of_one_antrag(
    mut rx: tokio::sync::broadcast::Receiver<std::sync::Arc<GovernanceEvent>>,
    id: Uuid,
    weberei: String,
) -> impl Stream<Item = AntragChange> + use<> {
    use tokio::sync::broadcast::error::RecvError;
    async_stream::stream! {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.change.antrag_id == id => yield AntragChange::from(&ev.change),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "antragChanged subscriber lagged behind the Webrat feed");
                    let mut resync = AntragChange::new(id, AntragChangeKind::Resync, Utc::now());
                    // The Weberei comes from the Antrag's own first event; a change that cannot
                    // be placed is still a resync notice.
                    let _ = resync.place(&weberei);
                    yield resync;
                }
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// The tiles a `webrat` subscription registers for. The changes sit at Weberei centres (cells
/// of [`domain::geo::WEAVERY_RES`]), so tiles finer than a Weberei gain nothing; coarser ones
/// are taken as the box needs (about two dozen tiles). The zoom plays no part and no box the
/// area limit lets through is refused: a box too long and thin for `max` tiles gets coarser
/// ones.
fn webrat_tiles(bbox: &Bbox, max: usize) -> Vec<h3o::CellIndex> {
    let finest = tiles::resolution_for_box(bbox).min(domain::geo::WEAVERY_RES);
    tiles::cover_within(bbox, finest, max)
}

pub(super) fn webrat_diffs(
    subscription: TileSubscription<GovernanceEvent>,
    decoder: GovernanceDecoder,
    bbox: Bbox,
    replay: Option<Replay>,
) -> impl Stream<Item = WebratDiff> + use<> {
    async_stream::stream! {
        // Changes up to here were sent by the replay (or are not wanted): drop them live.
        let mut seen_upto = 0;
        match replay {
            None => {}
            Some(Replay::Nothing { upto }) => seen_upto = upto,
            Some(Replay::Resync { upto }) => {
                seen_upto = upto;
                yield WebratDiff::notice(upto, true, false);
            }
            Some(Replay::Read { mut messages, upto }) => {
                seen_upto = upto;
                let mut diff = WebratDiff::default();
                loop {
                    let msg = match tokio::time::timeout(REPLAY_IDLE, messages.next()).await {
                        Ok(Some(Ok(msg))) => msg,
                        _ => {
                            tracing::warn!("webrat replay broke off; the subscriber resyncs");
                            diff = WebratDiff::notice(upto, true, false);
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
                        diff.changes.push(AntragChange::from(&change));
                    }
                    if diff.changes.len() >= REPLAY_BATCH {
                        diff.cursor = encode_webrat_cursor(seq);
                        yield std::mem::take(&mut diff);
                    }
                    if seq >= upto || pending == 0 {
                        break;
                    }
                }
                if !diff.changes.is_empty() || diff.resync {
                    diff.cursor = encode_webrat_cursor(upto);
                    yield diff;
                }
            }
        }
        loop {
            let diff = match subscription.next().await {
                Delivery::Changes { upto, tiles } => WebratDiff {
                    changes: tiles::changes_in_box(&tiles, seen_upto, &bbox)
                        .into_iter()
                        .map(|e| AntragChange::from(&e.change))
                        .collect(),
                    cursor: encode_webrat_cursor(upto.max(seen_upto)),
                    resync: false,
                    heartbeat: false,
                },
                Delivery::Resync { upto } => WebratDiff::notice(upto.max(seen_upto), true, false),
                Delivery::Heartbeat { upto } => {
                    WebratDiff::notice(upto.max(seen_upto), false, true)
                }
            };
            if !diff.changes.is_empty() || diff.resync || diff.heartbeat {
                yield diff;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use super::*;
    use crate::live::governance::GovernanceFeed;
    use domain::geo::Point;

    fn weimar() -> String {
        domain::geo::Point::new(50.98, 11.32)
            .unwrap()
            .cell(domain::geo::WEAVERY_RES)
            .to_string()
    }

    fn vote(id: Uuid, seq: u64) -> Arc<GovernanceEvent> {
        Arc::new(GovernanceEvent {
            seq,
            change: WebratChange::new(id, WebratChangeKind::Vote, Utc::now()),
        })
    }

    #[tokio::test]
    async fn a_subscriber_that_lagged_behind_the_feed_gets_one_resync_then_the_changes() {
        let (tx, rx) = tokio::sync::broadcast::channel(2);
        let (mine, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let changes = changes_of_one_antrag(rx, mine, weimar());
        futures::pin_mut!(changes);
        // Five changes into a channel of two: the first three are dropped for this reader.
        for seq in 1..=5 {
            tx.send(vote(if seq == 4 { other } else { mine }, seq))
                .unwrap();
        }
        let first = changes.next().await.unwrap();
        assert_eq!(first.kind, AntragChangeKind::Resync);
        assert_eq!(first.antrag_id, ID(mine.to_string()));
        assert_eq!(first.weberei, weimar(), "placed at the Antrag's Weberei");
        // What was not dropped follows; the other Antrag's change is not this subscriber's.
        let next = changes.next().await.unwrap();
        assert_eq!(next.kind, AntragChangeKind::Vote);
        drop(tx);
        assert!(changes.next().await.is_none(), "ends when the feed closes");
    }

    #[tokio::test]
    async fn a_subscriber_that_keeps_up_gets_only_its_antrags_changes() {
        let (tx, rx) = tokio::sync::broadcast::channel(8);
        let (mine, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let changes = changes_of_one_antrag(rx, mine, weimar());
        for (seq, id) in [(1, other), (2, mine), (3, other), (4, mine)] {
            tx.send(vote(id, seq)).unwrap();
        }
        drop(tx);
        let got: Vec<AntragChange> = changes.collect().await;
        assert_eq!(got.len(), 2);
        assert!(
            got.iter()
                .all(|c| c.antrag_id == ID(mine.to_string()) && c.kind == AntragChangeKind::Vote)
        );
    }

    /// A vote on Antrag `n`, placed at the Weberei of `p`.
    fn vote_at(n: u128, p: Point) -> WebratChange {
        let mut change = WebratChange::new(Uuid::from_u128(n), WebratChangeKind::Vote, Utc::now());
        change
            .place(&p.cell(domain::geo::WEAVERY_RES).to_string())
            .unwrap();
        change
    }

    fn tick_config() -> crate::config::ApiConfig {
        crate::config::ApiConfig {
            ws_tick: std::time::Duration::from_millis(10),
            heartbeat: std::time::Duration::from_secs(3600),
            ..crate::config::ApiConfig::default()
        }
    }

    #[test]
    fn webrat_tiles_are_no_finer_than_a_weberei_and_no_box_is_refused() {
        let small = Bbox::new(11.31, 50.97, 11.33, 50.99, 25.0).unwrap();
        let tiles = webrat_tiles(&small, 300);
        // A box the size of a Weberei: the Webereien around it, a handful.
        assert!(!tiles.is_empty() && tiles.len() <= 12, "{tiles:?}");
        assert!(
            tiles
                .iter()
                .all(|t| t.resolution() == domain::geo::WEAVERY_RES)
        );
        // Long and thin, within the area limit: more than 300 tiles at the coarsest map tile
        // size, still covered (by coarser tiles), never refused.
        let thin = Bbox::new(-150.0, -0.04, 150.0, 0.04, 25.0).unwrap();
        let tiles = webrat_tiles(&thin, 300);
        assert!(!tiles.is_empty() && tiles.len() <= 300, "{}", tiles.len());
    }

    #[tokio::test]
    async fn a_webrat_diff_keeps_the_box_from_the_shared_tile_and_its_cursor_covers_the_tick() {
        let feed = GovernanceFeed::detached();
        // Half a degree around Weimar: tiles coarser than a Weberei, reaching past the box.
        let b = Bbox::new(11.07, 50.73, 11.57, 51.23, 25.0).unwrap();
        let cover = webrat_tiles(&b, 300);
        let res = cover[0].resolution();
        assert!(res < domain::geo::WEAVERY_RES, "{res}");
        // A Weberei whose centre lies just outside the box, in one of its tiles.
        let outside = (1..400)
            .filter_map(|i| {
                vote_at(2, Point::new(50.98, 11.57 + 0.002 * f64::from(i)).ok()?).point()
            })
            .find(|p| !b.contains(*p) && cover.contains(&p.cell(res)))
            .expect("no Weberei just outside the box in a shared tile");
        let inside = Point::new(50.98, 11.32).unwrap();
        let (sub, _) = feed.tiles(&tick_config()).register(cover);
        let diffs = webrat_diffs(sub, feed.decoder().clone(), b, None);
        futures::pin_mut!(diffs);
        // Both in one tick (nothing awaits in between).
        feed.emit(1, vote_at(1, inside));
        feed.emit(2, vote_at(2, outside));
        let d = tokio::time::timeout(std::time::Duration::from_secs(2), diffs.next())
            .await
            .expect("no diff")
            .unwrap();
        let ids: Vec<&ID> = d.changes.iter().map(|c| &c.antrag_id).collect();
        assert_eq!(ids, vec![&ID(Uuid::from_u128(1).to_string())]);
        assert_eq!(
            d.cursor,
            encode_webrat_cursor(2),
            "the cursor covers the whole tick"
        );
        assert!(!d.resync && !d.heartbeat);
    }

    #[tokio::test]
    async fn live_webrat_changes_the_replay_covered_are_not_sent_twice() {
        let feed = GovernanceFeed::detached();
        let b = Bbox::new(11.27, 50.93, 11.37, 51.03, 25.0).unwrap();
        let (sub, _) = feed.tiles(&tick_config()).register(webrat_tiles(&b, 300));
        let weimar = Point::new(50.98, 11.32).unwrap();
        let diffs = webrat_diffs(
            sub,
            feed.decoder().clone(),
            b,
            Some(Replay::Nothing { upto: 1 }),
        );
        futures::pin_mut!(diffs);
        feed.emit(1, vote_at(1, weimar));
        feed.emit(2, vote_at(2, weimar));
        let d = tokio::time::timeout(std::time::Duration::from_secs(2), diffs.next())
            .await
            .expect("no diff")
            .unwrap();
        let ids: Vec<&ID> = d.changes.iter().map(|c| &c.antrag_id).collect();
        assert_eq!(ids, vec![&ID(Uuid::from_u128(2).to_string())]);
        assert_eq!(d.cursor, encode_webrat_cursor(2));
    }
}
