//! Live tiles: a subscription's bounding box is covered by H3 cells ("tiles"), and one
//! [`TileHub`] per process and feed groups the subscribers per tile. The hub is generic over
//! the kind of change: the live map (`viewport`, changes of the social stream from
//! `live::LiveHub`) and the Webrat (`webrat`, Antrag changes of the governance stream from
//! `live::governance::GovernanceFeed`, located at their Weberei's centre) each have
//! one, with the same code. A feed says what it broadcasts and where its position stands
//! ([`TileFeed`]); a change says its stream sequence and where it happened ([`TileEvent`]),
//! which decides its tile at every resolution in use.
//!
//! Every `ws_tick` a single task takes the changes the feed broadcast since the previous tick,
//! computes ONE diff per tile that has subscribers and changes (the tile's changes in log
//! order, shared as an `Arc`), and hands each subscriber the diffs of its tiles in one
//! delivery. The task never awaits a subscriber: deliveries go into a bounded per-subscriber
//! queue; a full queue is emptied and replaced by one `resync` notice, so a slow client costs
//! nobody else anything. A subscriber whose queue got nothing for `heartbeat` gets a heartbeat.
//! A tile's diff may hold changes just outside a subscriber's box (the tile reaches past it):
//! each subscriber keeps the changes of its box with [`changes_in_box`].
//!
//! Invariants (for every feed):
//! - the cover of a box contains every cell that intersects it (a point inside the box always
//!   lies in a covered tile), at any resolution;
//! - the task subscribes to the feed before [`TileHub::spawn`] returns, so a change the feed
//!   sends after that reaches the task;
//! - a delivery's `upto` is the tick's position in the feed's stream: every change with a
//!   sequence up to it has been handed to this tick or an earlier one (the feed's position
//!   invariant, see `live/mod.rs`: it stores a position only after sending that change), so a
//!   cursor made from it never skips a change;
//! - a subscriber registered at position `p` gets every change with a larger sequence that its
//!   tiles hold (a replay that reads the log to at least `p` hands over without a gap);
//! - the tick task holds the registry lock only for in-memory work and never `.await`s while
//!   holding it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use domain::geo::{Bbox, Point};
use h3o::{CellIndex, Resolution};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tracing::warn;

use crate::config::ApiConfig;

/// One change a [`TileHub`] groups by tile.
pub trait TileEvent: std::fmt::Debug + Send + Sync + 'static {
    /// The stream sequence it came from.
    fn seq(&self) -> u64;
    /// Where it happened (its tile at each resolution); `None`: it belongs to no place and is
    /// never sent to a tile.
    fn point(&self) -> Option<Point>;
}

/// A stream follower whose changes a [`TileHub`] groups by tile. It must keep the position
/// invariant of `live.rs`: [`TileFeed::last_seq`] moves to `n` only after the change with
/// sequence `n` was sent to the broadcast channel.
pub trait TileFeed: Clone + Send + Sync + 'static {
    type Event: TileEvent;
    /// The subscription it serves, for logs.
    const NAME: &'static str;
    /// Gauge: subscribers registered now.
    const SUBSCRIBERS_METRIC: &'static str;
    /// Counter: queues that overflowed and were replaced by a resync notice.
    const RESYNCS_METRIC: &'static str;
    /// A receiver of every change sent from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Self::Event>>;
    /// The last stream sequence whose change (if any) was sent.
    fn last_seq(&self) -> u64;
}

mod cover;

pub use cover::{ZOOM_RANGE, cover, cover_within, resolution_for_box, tile_resolution};

/// The changes of one tile in one tick (in log order), computed once and shared by all its
/// subscribers.
#[derive(Debug)]
pub struct TileDiff<E> {
    pub events: Vec<Arc<E>>,
}

/// What a subscriber's queue holds: at most one per tick.
#[derive(Debug)]
pub enum Delivery<E> {
    /// The diffs of the subscriber's tiles that changed in one tick; `upto` is the tick's
    /// stream position.
    Changes {
        upto: u64,
        tiles: Vec<Arc<TileDiff<E>>>,
    },
    /// The subscriber fell behind and lost deliveries up to `upto`.
    Resync { upto: u64 },
    /// Nothing was sent for a heartbeat interval.
    Heartbeat { upto: u64 },
}

// By hand: a derive would ask `E: Clone`, but only `Arc`s are cloned.
impl<E> Clone for Delivery<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Changes { upto, tiles } => Self::Changes {
                upto: *upto,
                tiles: tiles.clone(),
            },
            Self::Resync { upto } => Self::Resync { upto: *upto },
            Self::Heartbeat { upto } => Self::Heartbeat { upto: *upto },
        }
    }
}

impl<E> Delivery<E> {
    fn upto(&self) -> u64 {
        match self {
            Self::Changes { upto, .. } | Self::Resync { upto } | Self::Heartbeat { upto } => *upto,
        }
    }
}

/// The changes of `tiles` with a sequence after `after` whose point lies in `bbox` (the exact
/// filter after the tile grouping), in log order, each once.
pub fn changes_in_box<'a, E: TileEvent>(
    tiles: &'a [Arc<TileDiff<E>>],
    after: u64,
    bbox: &Bbox,
) -> Vec<&'a E> {
    let mut events: Vec<&E> = tiles
        .iter()
        .flat_map(|t| t.events.iter())
        .map(AsRef::as_ref)
        .filter(|e| e.seq() > after && in_box(e.point(), bbox))
        .collect();
    // A change lies in one tile per resolution and a subscriber's tiles share one, but stay
    // safe: in log order, each once.
    events.sort_unstable_by_key(|e| e.seq());
    events.dedup_by_key(|e| e.seq());
    events
}

struct Queue<E> {
    items: VecDeque<Delivery<E>>,
    last_push: Instant,
}

/// The state a subscriber shares with the tick task.
struct Mailbox<E> {
    queue: Mutex<Queue<E>>,
    notify: Notify,
}

impl<E> Mailbox<E> {
    /// Never waits: a full queue is dropped and replaced by one resync notice. Returns whether
    /// that happened.
    fn push(&self, delivery: Delivery<E>, capacity: usize, now: Instant) -> bool {
        let mut q = lock(&self.queue);
        let overflow = q.items.len() >= capacity.max(1);
        if overflow {
            q.items.clear();
            q.items.push_back(Delivery::Resync {
                upto: delivery.upto(),
            });
        } else {
            q.items.push_back(delivery);
        }
        q.last_push = now;
        drop(q);
        self.notify.notify_one();
        overflow
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Registered<E> {
    tiles: Vec<CellIndex>,
    mailbox: Arc<Mailbox<E>>,
}

struct Registry<E> {
    next_id: u64,
    /// The last tick's position: changes after it reach subscribers registered now.
    position: u64,
    subscribers: HashMap<u64, Registered<E>>,
    tiles: HashMap<CellIndex, Vec<u64>>,
    /// How many subscribers use each resolution (a change is located at each one in use).
    per_res: [usize; 16],
}

impl<E> Default for Registry<E> {
    fn default() -> Self {
        Self {
            next_id: 0,
            position: 0,
            subscribers: HashMap::new(),
            tiles: HashMap::new(),
            per_res: [0; 16],
        }
    }
}

struct Shared<E> {
    registry: Mutex<Registry<E>>,
    capacity: usize,
    /// The feed's [`TileFeed::SUBSCRIBERS_METRIC`].
    subscribers_metric: &'static str,
}

impl<E> Shared<E> {
    fn count_subscribers(&self, reg: &Registry<E>) {
        metrics::gauge!(self.subscribers_metric).set(reg.subscribers.len() as f64);
    }
}

/// Per-process grouping of one feed's subscribers by tile; `E` is the feed's kind of change.
/// Cheap to clone.
pub struct TileHub<E> {
    shared: Arc<Shared<E>>,
}

impl<E> Clone for TileHub<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E: TileEvent> TileHub<E> {
    /// Subscribe to `feed` and start the tick task: every `config.ws_tick`, until `shutdown`
    /// turns true.
    pub fn spawn<F: TileFeed<Event = E>>(
        feed: F,
        config: &ApiConfig,
        shutdown: Option<watch::Receiver<bool>>,
    ) -> Self {
        let hub = Self {
            shared: Arc::new(Shared {
                registry: Mutex::new(Registry::default()),
                capacity: config.ws_queue,
                subscribers_metric: F::SUBSCRIBERS_METRIC,
            }),
        };
        // Before returning: a change sent after registration must reach the task.
        let rx = feed.subscribe();
        tokio::spawn(
            hub.clone()
                .run(feed, rx, config.ws_tick, config.heartbeat, shutdown),
        );
        hub
    }

    /// Register a subscriber for `tiles`; returns its subscription and the position from which
    /// on it receives changes (every change with a larger sequence).
    pub fn register(&self, tiles: Vec<CellIndex>) -> (TileSubscription<E>, u64) {
        let mailbox = Arc::new(Mailbox {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                last_push: Instant::now(),
            }),
            notify: Notify::new(),
        });
        let mut reg = lock(&self.shared.registry);
        let id = reg.next_id;
        reg.next_id += 1;
        for t in &tiles {
            reg.tiles.entry(*t).or_default().push(id);
        }
        if let Some(t) = tiles.first() {
            reg.per_res[usize::from(u8::from(t.resolution()))] += 1;
        }
        reg.subscribers.insert(
            id,
            Registered {
                tiles,
                mailbox: mailbox.clone(),
            },
        );
        let position = reg.position;
        self.shared.count_subscribers(&reg);
        drop(reg);
        (
            TileSubscription {
                id,
                mailbox,
                shared: self.shared.clone(),
            },
            position,
        )
    }

    async fn run<F: TileFeed<Event = E>>(
        self,
        feed: F,
        mut rx: broadcast::Receiver<Arc<E>>,
        every: Duration,
        heartbeat: Duration,
        shutdown: Option<watch::Receiver<bool>>,
    ) {
        let stop = async move {
            match shutdown {
                // Also ends when the sender is gone: the process is stopping.
                Some(mut rx) => {
                    let _ = rx.wait_for(|stop| *stop).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: Vec<Arc<E>> = Vec::new();
        let mut lagged = false;
        let mut position = feed.last_seq();
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => pending.push(ev),
                    Err(RecvError::Lagged(n)) => {
                        warn!(missed = n, "{} tick fell behind its feed; all subscribers resync", F::NAME);
                        lagged = true;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    // Read the feed's position first, then drain: every change up to it is in
                    // the channel by then (the feed sends before it stores the position).
                    let feed_position = feed.last_seq();
                    loop {
                        match rx.try_recv() {
                            Ok(ev) => pending.push(ev),
                            Err(TryRecvError::Lagged(_)) => lagged = true,
                            Err(_) => break,
                        }
                    }
                    position = position
                        .max(feed_position)
                        .max(pending.last().map_or(0, |e| e.seq()));
                    let resyncs = self.dispatch(std::mem::take(&mut pending), position, std::mem::take(&mut lagged), heartbeat);
                    if resyncs > 0 {
                        metrics::counter!(F::RESYNCS_METRIC).increment(resyncs);
                    }
                }
                () = &mut stop => return,
            }
        }
    }

    /// One tick: group the changes per tile, one shared diff per tile, one delivery per
    /// subscriber. Synchronous on purpose: nothing here may wait for a subscriber. Returns how
    /// many queues overflowed (and now hold a resync notice).
    fn dispatch(&self, events: Vec<Arc<E>>, upto: u64, lagged: bool, heartbeat: Duration) -> u64 {
        let now = Instant::now();
        let capacity = self.shared.capacity;
        let mut overflows = 0;
        let mut reg = lock(&self.shared.registry);
        reg.position = upto;
        if lagged {
            for entry in reg.subscribers.values() {
                if entry.mailbox.push(Delivery::Resync { upto }, capacity, now) {
                    overflows += 1;
                }
            }
        }
        let resolutions: Vec<Resolution> = reg
            .per_res
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(r, _)| Resolution::try_from(r as u8).ok())
            .collect();
        let mut by_tile: HashMap<CellIndex, Vec<Arc<E>>> = HashMap::new();
        if !resolutions.is_empty() {
            for ev in &events {
                let Some(point) = ev.point() else {
                    continue;
                };
                for res in &resolutions {
                    let cell = point.cell(*res);
                    if reg.tiles.contains_key(&cell) {
                        by_tile.entry(cell).or_default().push(ev.clone());
                    }
                }
            }
        }
        let mut per_subscriber: HashMap<u64, Vec<Arc<TileDiff<E>>>> = HashMap::new();
        for (cell, events) in by_tile {
            let diff = Arc::new(TileDiff { events });
            for id in reg.tiles.get(&cell).into_iter().flatten() {
                per_subscriber.entry(*id).or_default().push(diff.clone());
            }
        }
        for (id, tiles) in per_subscriber {
            if let Some(entry) = reg.subscribers.get(&id)
                && entry
                    .mailbox
                    .push(Delivery::Changes { upto, tiles }, capacity, now)
            {
                overflows += 1;
            }
        }
        for entry in reg.subscribers.values() {
            let quiet = now.duration_since(lock(&entry.mailbox.queue).last_push);
            if quiet >= heartbeat
                && entry
                    .mailbox
                    .push(Delivery::Heartbeat { upto }, capacity, now)
            {
                overflows += 1;
            }
        }
        overflows
    }
}

/// A registered subscriber; unregisters when dropped.
pub struct TileSubscription<E> {
    id: u64,
    mailbox: Arc<Mailbox<E>>,
    shared: Arc<Shared<E>>,
}

impl<E> TileSubscription<E> {
    /// The next delivery, waiting for the tick that produces it.
    pub async fn next(&self) -> Delivery<E> {
        loop {
            if let Some(d) = lock(&self.mailbox.queue).items.pop_front() {
                return d;
            }
            self.mailbox.notify.notified().await;
        }
    }
}

impl<E> Drop for TileSubscription<E> {
    fn drop(&mut self) {
        let mut reg = lock(&self.shared.registry);
        if let Some(entry) = reg.subscribers.remove(&self.id) {
            for t in &entry.tiles {
                if let Entry::Occupied(mut ids) = reg.tiles.entry(*t) {
                    ids.get_mut().retain(|id| *id != self.id);
                    if ids.get().is_empty() {
                        ids.remove();
                    }
                }
            }
            if let Some(t) = entry.tiles.first() {
                let r = usize::from(u8::from(t.resolution()));
                reg.per_res[r] = reg.per_res[r].saturating_sub(1);
            }
        }
        self.shared.count_subscribers(&reg);
    }
}

/// Whether a change's point lies in `bbox` (the exact filter after the tile grouping).
pub fn in_box(point: Option<Point>, bbox: &Bbox) -> bool {
    point.is_some_and(|p| bbox.contains(p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A change of a feed of its own: the hub's behaviour does not depend on what it carries.
    #[derive(Debug)]
    struct TestEvent;

    impl TileEvent for TestEvent {
        fn seq(&self) -> u64 {
            0
        }

        fn point(&self) -> Option<Point> {
            None
        }
    }

    /// A feed that never sends.
    #[derive(Clone)]
    struct TestFeed(broadcast::Sender<Arc<TestEvent>>);

    impl TileFeed for TestFeed {
        type Event = TestEvent;
        const NAME: &'static str = "test";
        const SUBSCRIBERS_METRIC: &'static str = "wg_test_subscribers";
        const RESYNCS_METRIC: &'static str = "wg_test_resyncs_total";

        fn subscribe(&self) -> broadcast::Receiver<Arc<TestEvent>> {
            self.0.subscribe()
        }

        fn last_seq(&self) -> u64 {
            0
        }
    }

    #[test]
    fn a_full_queue_is_replaced_by_one_resync_notice() {
        let mailbox = Mailbox {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                last_push: Instant::now(),
            }),
            notify: Notify::new(),
        };
        for upto in 1..=10 {
            let changes = Delivery::<TestEvent>::Changes {
                upto,
                tiles: Vec::new(),
            };
            mailbox.push(changes, 3, Instant::now());
            assert!(lock(&mailbox.queue).items.len() <= 3);
        }
        // 1-3 queued, 4 overflows (resync), 5-6 queued behind it, 7 overflows, ...: what is
        // left is one notice covering everything dropped.
        let items: Vec<_> = lock(&mailbox.queue).items.iter().cloned().collect();
        assert!(
            matches!(items.as_slice(), [Delivery::Resync { upto: 10 }]),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn a_quiet_subscriber_gets_heartbeats_and_leaves_no_trace() {
        let config = ApiConfig {
            ws_tick: Duration::from_millis(10),
            heartbeat: Duration::from_millis(50),
            ..ApiConfig::default()
        };
        let hub = TileHub::spawn(TestFeed(broadcast::channel(16).0), &config, None);
        let cell = Point::new(50.98, 11.32).unwrap().cell(Resolution::Eight);
        let (sub, _) = hub.register(vec![cell]);
        for _ in 0..2 {
            let d = tokio::time::timeout(Duration::from_secs(2), sub.next())
                .await
                .expect("no heartbeat");
            assert!(matches!(d, Delivery::Heartbeat { .. }), "{d:?}");
        }
        drop(sub);
        let reg = lock(&hub.shared.registry);
        assert!(reg.subscribers.is_empty() && reg.tiles.is_empty());
        assert_eq!(reg.per_res.iter().sum::<usize>(), 0);
    }
}
