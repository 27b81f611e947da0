#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Rust client (`weberei-client`) end to end through the real binary: `weberei up`
//! (testkit::up) against the machine's shared NATS, PostgreSQL and Redis, spoken to only
//! through the client's generated operations. Its subscriptions:
//!
//! - register, tie a Knoten, spin a Faden, and receive them in a viewport subscription;
//!   disconnect, let another role tie N Knoten, subscribe again with the cursor and receive
//!   exactly those N (ids, order, no duplicate, no gap);
//! - a connection cut under a live subscription (a TCP proxy between client and server
//!   drops every connection and refuses new ones for a while) reconnects by itself with
//!   backoff and resumes from the cursor; so does a forced `reconnect()`.
//!
//! Typed errors: `client_rust_errors.rs`; the shared set-up: `common/client.rs`.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use weberei_client::{
    Client, ConnectionState, CreateKnoten, FadenChangeKind, FadenTyp, KnotenTyp, ReconnectPolicy,
    SpinFaden, Subscription, Viewport, create_knoten, spin_faden, viewport,
};

use common::client::*;

type Diff = viewport::ResponseData;

/// Diffs until `done` holds for all of them so far (fails after `timeout`).
async fn diffs_until(
    sub: &mut Subscription<Viewport>,
    timeout: Duration,
    mut done: impl FnMut(&[Diff]) -> bool,
) -> Vec<Diff> {
    let mut diffs = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !done(&diffs) {
        let next = tokio::time::timeout_at(deadline, sub.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out; got {:?} so far",
                    diffs.iter().map(summary).collect::<Vec<_>>()
                )
            });
        match next {
            Some(Ok(d)) => diffs.push(d),
            Some(Err(e)) => panic!("the subscription failed: {e}"),
            None => panic!("the subscription ended"),
        }
    }
    diffs
}

/// Whatever arrives within `window` (to check that nothing else comes).
async fn diffs_within(sub: &mut Subscription<Viewport>, window: Duration) -> Vec<Diff> {
    let mut diffs = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(next) = tokio::time::timeout_at(deadline, sub.next()).await {
        match next {
            Some(Ok(d)) => diffs.push(d),
            Some(Err(e)) => panic!("the subscription failed: {e}"),
            None => break,
        }
    }
    diffs
}

fn knoten_ids(diffs: &[Diff]) -> Vec<String> {
    diffs
        .iter()
        .flat_map(|d| d.viewport.knoten.iter().map(|k| k.id.clone()))
        .collect()
}

fn summary(d: &Diff) -> String {
    let v = &d.viewport;
    format!(
        "knoten {:?} faeden {} resync {} heartbeat {} cursor {}",
        v.knoten.iter().map(|k| &k.id).collect::<Vec<_>>(),
        v.faeden.len(),
        v.resync,
        v.heartbeat,
        v.cursor
    )
}

/// Every Knoten id exactly once, in the order they were tied, and nothing else.
fn assert_exactly(received: &[String], expected: &[String]) {
    let unique: HashSet<_> = received.iter().collect();
    assert_eq!(
        unique.len(),
        received.len(),
        "duplicates in {received:?} (expected {expected:?})"
    );
    assert_eq!(received, expected, "gap, extra or out of order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewport_subscription_resumes_after_its_cursor_with_exactly_the_missed_knoten() {
    let (up, client) = start().await;
    let (_anna_id, anna) = register(&client, "Anna").await;
    let (_ben_id, ben) = register(&client, "Ben").await;

    let mut sub = anna.subscribe::<Viewport>(weimar()).await.unwrap();
    assert_eq!(*sub.state().borrow(), ConnectionState::Connected);
    // The server registers the subscription right after the subscribe message.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let first = create_knoten(&anna, "Lesecafé am Markt", 0).await;
    let spun = anna
        .mutate::<SpinFaden>(spin_faden::Variables {
            input: spin_faden::SpinFadenInput {
                idempotency_key: String::new(),
                knoten_id: first.clone(),
                typ: FadenTyp::Interesse,
            },
        })
        .await
        .unwrap();
    assert!(!spun.spin_faden.renewed);
    let faden_id = spun.spin_faden.faden.id.clone();

    let diffs = diffs_until(&mut sub, STEP, |d| {
        d.iter()
            .any(|d| d.viewport.faeden.iter().any(|f| f.id == faden_id))
    })
    .await;
    assert_exactly(&knoten_ids(&diffs), std::slice::from_ref(&first));
    let knoten = &diffs
        .iter()
        .find(|d| !d.viewport.knoten.is_empty())
        .unwrap()
        .viewport
        .knoten[0];
    assert_eq!(knoten.title, "Lesecafé am Markt");
    assert_eq!(knoten.typ, KnotenTyp::Ideen);
    assert!((knoten.lat - LAT).abs() < 1e-9);
    assert_eq!(knoten.content["text"], "end to end");
    let change = diffs
        .iter()
        .flat_map(|d| d.viewport.faeden.iter())
        .find(|f| f.id == faden_id)
        .unwrap();
    assert_eq!(change.kind, FadenChangeKind::Spun);
    assert_eq!(change.knoten_id, first);
    assert_eq!(change.faden.as_ref().unwrap().typ, FadenTyp::Interesse);
    let cursor = diffs.last().unwrap().viewport.cursor.clone();
    assert_eq!(sub.cursor().as_deref(), Some(cursor.as_str()));

    // Disconnect; meanwhile another role ties N Knoten.
    drop(sub);
    let mut missed = Vec::new();
    for i in 1..=5 {
        missed.push(create_knoten(&ben, &format!("Verpasst {i}"), i).await);
    }
    // One outside the box: never sent.
    ben.mutate::<CreateKnoten>(create_knoten::Variables {
        input: create_knoten::CreateKnotenInput {
            lat: 48.137,
            lng: 11.575,
            ..knoten_input("In München", 99)
        },
    })
    .await
    .unwrap();

    // Reconnect with the cursor: exactly the missed ones, then live.
    let mut resumed = anna
        .subscribe::<Viewport>(viewport::Variables {
            after: Some(cursor.clone()),
            ..weimar()
        })
        .await
        .unwrap();
    let mut diffs = diffs_until(&mut resumed, STEP, |d| knoten_ids(d).len() >= missed.len()).await;
    diffs.extend(diffs_within(&mut resumed, Duration::from_secs(1)).await);
    assert_exactly(&knoten_ids(&diffs), &missed);
    assert!(
        diffs.iter().all(|d| !d.viewport.resync),
        "{:?}",
        diffs.iter().map(summary).collect::<Vec<_>>()
    );
    assert!(
        diffs.iter().all(|d| d.viewport.faeden.is_empty()),
        "the thread was spun before the cursor"
    );

    // And live afterwards.
    let live = create_knoten(&ben, "Danach", 6).await;
    let diffs = diffs_until(&mut resumed, STEP, |d| !knoten_ids(d).is_empty()).await;
    assert_exactly(&knoten_ids(&diffs), &[live]);
    drop(resumed);
    drop(up);
}

/// A TCP proxy that can cut every connection and refuse new ones, as a network outage would.
struct Proxy {
    url: String,
    down: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (down, down_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if *down_rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut cut = down_rx.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                    // Both sockets are dropped here: the client sees the connection die
                    // without a WebSocket close handshake.
                });
            }
        });
        Proxy { url, down, task }
    }

    fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_connection_reconnects_by_itself_and_resumes_from_the_cursor() {
    let (up, client) = start().await;
    let (_anna_id, anna) = register(&client, "Anna").await;
    let (_ben_id, ben) = register(&client, "Ben").await;
    let proxy = Proxy::start(up.addr().to_owned()).await;
    let anna_via_proxy = Client::builder(&proxy.url)
        .token(anna.token().unwrap())
        .reconnect(ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            ..ReconnectPolicy::default()
        })
        .build()
        .unwrap();

    let mut sub = anna_via_proxy
        .subscribe::<Viewport>(weimar())
        .await
        .unwrap();
    let mut states = sub.state();
    let seen_states = tokio::spawn(async move {
        let mut seen = vec![states.borrow_and_update().clone()];
        while states.changed().await.is_ok() {
            seen.push(states.borrow_and_update().clone());
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = create_knoten(&ben, "Vor dem Ausfall", 0).await;
    let diffs = diffs_until(&mut sub, STEP, |d| !knoten_ids(d).is_empty()).await;
    assert_exactly(&knoten_ids(&diffs), std::slice::from_ref(&first));
    let cursor = sub.cursor().unwrap();

    // The network goes down: the connection dies, reconnect attempts fail for a while.
    proxy.set_down(true);
    let mut missed = Vec::new();
    for i in 1..=4 {
        missed.push(create_knoten(&ben, &format!("Während des Ausfalls {i}"), i).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sub.cursor().as_deref(),
        Some(cursor.as_str()),
        "nothing arrived while down"
    );
    assert!(
        matches!(*sub.state().borrow(), ConnectionState::Reconnecting { .. }),
        "{:?}",
        *sub.state().borrow()
    );
    proxy.set_down(false);

    let mut diffs = diffs_until(&mut sub, STEP, |d| knoten_ids(d).len() >= missed.len()).await;
    diffs.extend(diffs_within(&mut sub, Duration::from_secs(1)).await);
    assert_exactly(&knoten_ids(&diffs), &missed);
    assert_eq!(*sub.state().borrow(), ConnectionState::Connected);

    // A forced reconnect (the test hook, e.g. a network change) while Knoten are tied.
    sub.reconnect();
    let mut more = Vec::new();
    for i in 5..=7 {
        more.push(create_knoten(&ben, &format!("Beim Neuverbinden {i}"), i).await);
    }
    let mut diffs = diffs_until(&mut sub, STEP, |d| knoten_ids(d).len() >= more.len()).await;
    diffs.extend(diffs_within(&mut sub, Duration::from_secs(1)).await);
    assert_exactly(&knoten_ids(&diffs), &more);

    sub.close();
    assert!(
        tokio::time::timeout(STEP, sub.next())
            .await
            .unwrap()
            .is_none(),
        "the stream ends after close()"
    );
    let seen = seen_states.await.unwrap();
    let reconnects: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            ConnectionState::Reconnecting { attempt, delay, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    println!("states: {seen:?}");
    assert!(
        reconnects.iter().any(|(attempt, _)| *attempt >= 2),
        "the outage took several attempts: {seen:?}"
    );
    assert!(
        reconnects
            .iter()
            .all(|(_, d)| *d <= Duration::from_millis(800)),
        "delays are capped: {seen:?}"
    );
    // The connection that came back delivered: the forced reconnect starts the backoff afresh.
    assert!(
        matches!(
            seen.iter().rev().find(|s| matches!(s, ConnectionState::Reconnecting { .. })),
            Some(ConnectionState::Reconnecting { attempt: 1, reason, .. }) if reason == "reconnect requested"
        ),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&ConnectionState::Closed));
    assert!(
        seen.iter()
            .filter(|s| **s == ConnectionState::Connected)
            .count()
            >= 3,
        "connected, reconnected after the outage, reconnected after reconnect(): {seen:?}"
    );
    drop(proxy);
    drop(up);
}
