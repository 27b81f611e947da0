//! The viewport subscription: new Knoten inside a bounding box, batched per tick.

use async_graphql::{Context, Result, SimpleObject, Subscription};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::Deps;
use super::knoten::{BboxInput, KnotenNode};
use crate::live::LiveChange;

/// One batched update of a viewport, sent at most once per tick.
#[derive(SimpleObject, Clone, Debug)]
pub struct ViewportDiff {
    /// Knoten tied inside the box since the previous diff.
    pub knoten: Vec<KnotenNode>,
    /// Opaque position in the event log this diff covers up to.
    pub cursor: String,
    /// True if the server had to drop updates for this subscriber (it was too slow): reload
    /// the viewport with the `knoten` query, then keep listening.
    pub resync: bool,
}

#[derive(Default)]
pub struct ViewportSubscription;

#[Subscription]
impl ViewportSubscription {
    /// Changes inside a bounding box, batched: at most one diff per tick (1.5 s by default),
    /// and none when nothing changed.
    async fn viewport(
        &self,
        ctx: &Context<'_>,
        bbox: BboxInput,
    ) -> Result<impl Stream<Item = ViewportDiff> + use<>> {
        let deps = ctx.data::<Deps>()?.clone();
        let bbox = bbox.validate(deps.config.max_bbox_area_deg2)?;
        let mut rx = deps.hub.subscribe();
        let tick_every = deps.config.ws_tick;
        Ok(async_stream::stream! {
            let mut tick = tokio::time::interval(tick_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pending = Vec::new();
            let mut seq = deps.hub.last_seq();
            let mut resync = false;
            loop {
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(ev) => {
                            seq = ev.seq;
                            match &ev.change {
                                LiveChange::KnotenCreated(k) => {
                                    if let Ok(p) = domain::geo::Point::new(k.lat, k.lng) && bbox.contains(p) {
                                        pending.push(k.clone());
                                    }
                                }
                            }
                        }
                        Err(RecvError::Lagged(_)) => {
                            pending.clear();
                            resync = true;
                        }
                        Err(RecvError::Closed) => break,
                    },
                    _ = tick.tick() => {
                        if !pending.is_empty() || resync {
                            yield ViewportDiff {
                                knoten: std::mem::take(&mut pending),
                                cursor: format!("social:{seq}"),
                                resync: std::mem::take(&mut resync),
                            };
                        }
                    }
                }
            }
        })
    }
}
