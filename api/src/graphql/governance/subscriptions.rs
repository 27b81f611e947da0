//! The Webrat's subscriptions.

use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::events::AntragEntschieden;
use domain::geo::Bbox;
use domain::{AggregateType, DomainError, StreamDomain};
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::knoten::BboxInput;
use crate::graphql::rolle::parse_id;

use super::types::{
    AntragNode, AntragStatusGql, AntragTally, EinspruchNode, StimmeNode, cell_centre, int,
};
use crate::graphql::viewport::{Replay, prepare_replay};

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
        let cell = domain::governance::parse_weberei(hex)?;
        (self.weberei_lat, self.weberei_lng) = cell_centre(cell);
        self.weberei = cell.to_string();
        Ok(())
    }

    pub(crate) fn set_decision(&mut self, d: &AntragEntschieden) {
        use domain::events::AntragStatus as S;
        self.status = Some(match d.status {
            S::Angenommen => AntragStatusGql::Angenommen,
            S::Abgelehnt => AntragStatusGql::Abgelehnt,
            S::QuorumVerfehlt => AntragStatusGql::QuorumVerfehlt,
        });
        self.tally = Some(AntragTally {
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

    fn in_box(&self, bbox: &Bbox) -> bool {
        domain::geo::Point::new(self.weberei_lat, self.weberei_lng).is_ok_and(|p| bbox.contains(p))
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

pub(super) const WEBRAT_CURSOR_PREFIX: &str = "governance:";

pub(super) fn encode_webrat_cursor(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{WEBRAT_CURSOR_PREFIX}{seq}"))
}

pub(super) fn decode_webrat_cursor(cursor: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::from(DomainError::validation(
            "after",
            "not a cursor of the webrat subscription (pass the `cursor` of a diff as it was sent)",
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let seq = raw.strip_prefix(WEBRAT_CURSOR_PREFIX).ok_or_else(bad)?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    seq.parse().map_err(|_| bad())
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
        // Subscribe before looking at the log: what comes after this position arrives live.
        let rx = feed.subscribe();
        let registered_at = feed.last_seq();
        let replay = match after {
            Some(cursor) => {
                Some(prepare_replay(&deps, StreamDomain::Governance, cursor, registered_at).await?)
            }
            None => None,
        };
        Ok(webrat_diffs(
            rx,
            feed,
            bbox,
            replay,
            deps.config.ws_tick,
            deps.config.heartbeat,
        ))
    }

    /// Every change to one Antrag as it happens: objections, votes, the quorum and the
    /// decision. NOT_FOUND for an Antrag that does not exist.
    async fn antrag_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
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
    mut rx: tokio::sync::broadcast::Receiver<
        std::sync::Arc<crate::live_governance::GovernanceEvent>,
    >,
    id: Uuid,
    weberei: String,
) -> impl Stream<Item = AntragChange> + use<> {
    use tokio::sync::broadcast::error::RecvError;
    let want = ID(id.to_string());
    async_stream::stream! {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.change.antrag_id == want => yield ev.change.clone(),
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

pub(super) fn webrat_diffs(
    mut rx: tokio::sync::broadcast::Receiver<
        std::sync::Arc<crate::live_governance::GovernanceEvent>,
    >,
    feed: crate::live_governance::GovernanceFeed,
    bbox: Bbox,
    replay: Option<Replay>,
    tick_every: std::time::Duration,
    heartbeat: std::time::Duration,
) -> impl Stream<Item = WebratDiff> + use<> {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    async_stream::stream! {
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
                        break;
                    }
                    if let Some(change) = feed.decoder().decode(&msg.payload).await
                        && change.in_box(&bbox)
                    {
                        diff.changes.push(change);
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
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut pending: Vec<AntragChange> = Vec::new();
        let mut received = seen_upto;
        let mut lagged = false;
        let mut last_sent = tokio::time::Instant::now();
        let accept = |ev: &crate::live_governance::GovernanceEvent,
                          received: &mut u64,
                          pending: &mut Vec<AntragChange>| {
            *received = (*received).max(ev.seq);
            if ev.seq > seen_upto && ev.change.in_box(&bbox) {
                pending.push(ev.change.clone());
            }
        };
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => accept(&ev, &mut received, &mut pending),
                    Err(RecvError::Lagged(_)) => {
                        lagged = true;
                        pending.clear();
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    // Read the position first, then drain: everything up to it is in the
                    // channel (the feed stores its position after sending).
                    let position = feed.last_seq();
                    loop {
                        match rx.try_recv() {
                            Ok(ev) => accept(&ev, &mut received, &mut pending),
                            Err(TryRecvError::Lagged(_)) => {
                                lagged = true;
                                pending.clear();
                            }
                            Err(_) => break,
                        }
                    }
                    let upto = position.max(received).max(seen_upto);
                    if lagged {
                        lagged = false;
                        last_sent = tokio::time::Instant::now();
                        yield WebratDiff::notice(upto, true, false);
                    } else if !pending.is_empty() {
                        last_sent = tokio::time::Instant::now();
                        yield WebratDiff {
                            changes: std::mem::take(&mut pending),
                            cursor: encode_webrat_cursor(upto),
                            resync: false,
                            heartbeat: false,
                        };
                    } else if last_sent.elapsed() >= heartbeat {
                        last_sent = tokio::time::Instant::now();
                        yield WebratDiff::notice(upto, false, true);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use super::*;
    use crate::live_governance::GovernanceEvent;

    fn weimar() -> String {
        domain::geo::Point::new(50.98, 11.32)
            .unwrap()
            .cell(domain::geo::WEAVERY_RES)
            .to_string()
    }

    fn vote(id: Uuid, seq: u64) -> Arc<GovernanceEvent> {
        Arc::new(GovernanceEvent {
            seq,
            change: AntragChange::new(id, AntragChangeKind::Vote, Utc::now()),
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
}
