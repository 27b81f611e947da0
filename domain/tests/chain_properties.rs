#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Properties of the per-aggregate hash chain (DESIGN.md §3): a chain built with `hash_value`
//! verifies, and any tampering with any field of any event, or any reordering, is detected.
//!
//! "Detected" means: `verify_chain` reports a break, or, when the tampered event is the last
//! one (nothing links to it yet), its recomputed hash differs from the original one.

use chrono::DateTime;
use domain::events::EventType;
use domain::{Actor, AggregateType, Envelope, Meta, Ort, hash_envelope, hash_value, verify_chain};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value};
use ulid::Ulid;
use uuid::Uuid;

/// JCS numbers are IEEE doubles: integers beyond 2^53 lose precision (see tests/vectors/README.md).
const MAX_SAFE_INTEGER: i64 = 1 << 53;

const AGGREGATE_TYPES: [AggregateType; 8] = [
    AggregateType::Knoten,
    AggregateType::Faden,
    AggregateType::Antrag,
    AggregateType::Rolle,
    AggregateType::Zahlung,
    AggregateType::Delegation,
    AggregateType::Flag,
    AggregateType::System,
];

// ---------------------------------------------------------------------------------------------
// Strategies

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,10}",
        "[a-zäöüßÄÖÜ ẞ€😀🌱\u{e000}\u{2028}\"\\\\/\t\n]{0,10}",
        // Anything at all, control characters and astral planes included.
        prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO)
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn payload() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(text(), json_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn hex_hash() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[0-9a-f]{32}")
}

/// Everything about one event except its place in the chain.
#[derive(Debug, Clone)]
struct EventSpec {
    random: u128,
    event_type: Index,
    version: u32,
    ts_ms: i64,
    payload: Value,
    actor: Option<u128>,
    ip_hash: Option<String>,
    ua_hash: Option<String>,
    msg_id: String,
}

fn event_spec() -> impl Strategy<Value = EventSpec> {
    (
        any::<u128>(),
        any::<Index>(),
        1u32..=5,
        1_500_000_000_000i64..2_500_000_000_000,
        payload(),
        prop::option::of(any::<u128>()),
        hex_hash(),
        hex_hash(),
        "[a-z0-9:-]{1,40}",
    )
        .prop_map(
            |(random, event_type, version, ts_ms, payload, actor, ip_hash, ua_hash, msg_id)| {
                EventSpec {
                    random,
                    event_type,
                    version,
                    ts_ms,
                    payload,
                    actor,
                    ip_hash,
                    ua_hash,
                    msg_id,
                }
            },
        )
}

/// One aggregate's events, chained with `hash_value`, as JSON.
fn chain(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<Value>> {
    (
        "[a-z][a-z0-9_]{0,11}",
        any::<u128>(),
        any::<Index>(),
        prop::collection::vec(event_spec(), len),
    )
        .prop_map(|(ort, aggregate, aggregate_type, specs)| {
            build_chain(
                &ort,
                aggregate,
                *aggregate_type.get(&AGGREGATE_TYPES),
                &specs,
            )
        })
}

fn build_chain(
    ort: &str,
    aggregate: u128,
    aggregate_type: AggregateType,
    specs: &[EventSpec],
) -> Vec<Value> {
    let ort = Ort::new(ort).unwrap();
    let aggregate_id = Uuid::from_u128(aggregate);
    let mut prev_hash = None;
    let mut events = Vec::with_capacity(specs.len());
    for s in specs {
        let ts = DateTime::from_timestamp_millis(s.ts_ms).unwrap();
        let event = Envelope {
            id: Ulid::from_parts(u64::try_from(s.ts_ms).unwrap(), s.random),
            event_type: s.event_type.get(EventType::ALL).as_str().to_owned(),
            version: s.version,
            aggregate_id,
            aggregate_type,
            prev_hash: prev_hash.clone(),
            ts,
            subject: ort.aggregate_subject(aggregate_type, aggregate_id),
            payload: s.payload.clone(),
            meta: Meta {
                actor: s
                    .actor
                    .map_or(Actor::System, |a| Actor::Rolle(Uuid::from_u128(a))),
                ip_hash: s.ip_hash.clone(),
                ua_hash: s.ua_hash.clone(),
                msg_id: s.msg_id.clone(),
            },
        }
        .to_value()
        .unwrap();
        prev_hash = Some(hash_value(&event));
        events.push(event);
    }
    events
}

// ---------------------------------------------------------------------------------------------
// Tampering

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    At(usize),
}

/// Every node below the root (object members and array elements), depth first.
fn node_paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                node_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Seg::At(i));
                out.push(prefix.clone());
                node_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn all_nodes(v: &Value) -> Vec<Vec<Seg>> {
    let mut out = Vec::new();
    node_paths(v, &mut Vec::new(), &mut out);
    out
}

/// Every object, the root included.
fn all_objects(v: &Value) -> Vec<Vec<Seg>> {
    std::iter::once(Vec::new())
        .chain(all_nodes(v))
        .filter(|p| get(v, p).is_object())
        .collect()
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> &'a Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &v[k.as_str()],
        Seg::At(i) => &v[*i],
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()).unwrap(),
        Seg::At(i) => v.get_mut(*i).unwrap(),
    })
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    /// Change the value at a node (leaves flip; an object gains a key, an array an element).
    Change,
    /// Delete an object member or an array element.
    Delete,
    /// Add a new key (with a `null` value, the subtlest addition) to an object.
    Add,
}

const TAMPERS: [Tamper; 3] = [Tamper::Change, Tamper::Delete, Tamper::Add];

/// A different value that is also different in canonical form.
fn changed(v: &Value) -> Value {
    match v {
        Value::Null => Value::from(0),
        Value::Bool(b) => Value::Bool(!b),
        // Not `n + 1`: that is a no-op for large floats. 0.5 and 0.25 are exact doubles.
        Value::Number(n) if n.as_f64() == Some(0.5) => Value::from(0.25),
        Value::Number(_) => Value::from(0.5),
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Array(items) => {
            let mut items = items.clone();
            items.push(Value::Null);
            Value::Array(items)
        }
        Value::Object(m) => {
            let mut m = m.clone();
            m.insert(fresh_key(&m), Value::Null);
            Value::Object(m)
        }
    }
}

fn fresh_key(m: &Map<String, Value>) -> String {
    (0..)
        .map(|n| format!("tampered{n}"))
        .find(|k| !m.contains_key(k))
        .unwrap()
}

/// Apply `tamper` at `path` (from the candidate list for that kind); describes what was done.
fn apply(event: &mut Value, tamper: Tamper, path: &[Seg]) -> String {
    match tamper {
        Tamper::Change => {
            let node = get_mut(event, path);
            *node = changed(node);
        }
        Tamper::Delete => {
            let (last, parent) = path.split_last().unwrap();
            match (get_mut(event, parent), last) {
                (Value::Object(m), Seg::Key(k)) => {
                    m.remove(k).unwrap();
                }
                (Value::Array(items), Seg::At(i)) => {
                    items.remove(*i);
                }
                _ => unreachable!("path does not match the value"),
            }
        }
        Tamper::Add => {
            let Value::Object(m) = get_mut(event, path) else {
                unreachable!("not an object");
            };
            m.insert(fresh_key(m), Value::Null);
        }
    }
    format!("{tamper:?} at {path:?}")
}

fn candidates(event: &Value, tamper: Tamper) -> Vec<Vec<Seg>> {
    match tamper {
        Tamper::Change | Tamper::Delete => all_nodes(event),
        Tamper::Add => all_objects(event),
    }
}

/// Is tampering with event `at` of a chain (whose untampered hashes were `original`) detected?
fn detected(tampered: &[Value], at: usize, original: &[String]) -> Result<(), String> {
    match verify_chain(tampered) {
        Err(brk) if brk.index == at || brk.index == at + 1 => Ok(()),
        Err(brk) => Err(format!("break reported at the wrong place: {brk}")),
        Ok(_) if at + 1 < tampered.len() => Err("a tampered inner event verified".into()),
        Ok(hashes) if hashes[at] != original[at] => Ok(()),
        Ok(_) => Err("the last event's hash did not change".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_built_chain_verifies(events in chain(1..=8)) {
        let hashes = verify_chain(&events).map_err(|b| TestCaseError::fail(b.to_string()))?;
        prop_assert_eq!(hashes.len(), events.len());
        for (event, hash) in events.iter().zip(&hashes) {
            prop_assert_eq!(&hash_value(event), hash);
            // The typed envelope round-trips without changing the hash.
            let envelope: Envelope = serde_json::from_value(event.clone()).unwrap();
            prop_assert_eq!(&hash_envelope(&envelope).unwrap(), hash);
        }
    }

    #[test]
    fn any_single_tampering_is_detected(
        events in chain(1..=8),
        which in any::<Index>(),
        tamper in prop::sample::select(TAMPERS.to_vec()),
        where_ in any::<Index>(),
    ) {
        let original = verify_chain(&events).unwrap();
        let at = which.index(events.len());
        let paths = candidates(&events[at], tamper);
        let path = where_.get(&paths);
        let mut tampered = events.clone();
        let what = apply(&mut tampered[at], tamper, path);
        prop_assert!(tampered[at] != events[at], "{} changed nothing", what);
        if let Err(e) = detected(&tampered, at, &original) {
            return Err(TestCaseError::fail(format!("event {at}: {what}: {e}")));
        }
    }

    #[test]
    fn swapping_two_events_is_detected(
        events in chain(2..=8),
        a in any::<Index>(),
        b in any::<Index>(),
    ) {
        let n = events.len();
        let i = a.index(n);
        // A second, different position.
        let j = (i + 1 + b.index(n - 1)) % n;
        let mut swapped = events.clone();
        swapped.swap(i, j);
        let brk = verify_chain(&swapped);
        prop_assert!(brk.is_err(), "swapping events {} and {} went unnoticed", i, j);
        prop_assert_eq!(brk.unwrap_err().index, i.min(j));
    }
}

proptest! {
    // Exhaustive per chain, so fewer (and shorter) chains.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_tampering_of_every_field_of_every_event_is_detected(events in chain(1..=4)) {
        let original = verify_chain(&events).unwrap();
        let mut tried = 0usize;
        for at in 0..events.len() {
            for tamper in TAMPERS {
                for path in candidates(&events[at], tamper) {
                    let mut tampered = events.clone();
                    let what = apply(&mut tampered[at], tamper, &path);
                    if let Err(e) = detected(&tampered, at, &original) {
                        return Err(TestCaseError::fail(format!("event {at}: {what}: {e}")));
                    }
                    tried += 1;
                }
            }
        }
        // Every envelope field and every meta field was tampered with, three ways or two.
        prop_assert!(tried >= events.len() * (2 * 14 + 2));
    }
}

/// The envelope fields named in DESIGN.md §3 are exactly the ones the tampering walks over.
#[test]
fn the_tampering_covers_every_envelope_and_meta_field() {
    let spec = event_spec();
    let mut runner = TestRunner::deterministic();
    let specs: Vec<EventSpec> = (0..2)
        .map(|_| spec.new_tree(&mut runner).unwrap().current())
        .collect();
    let events = build_chain("demo", 7, AggregateType::Knoten, &specs);
    let paths = all_nodes(&events[1]);
    for field in [
        "id",
        "type",
        "version",
        "aggregateId",
        "aggregateType",
        "prev_hash",
        "ts",
        "subject",
        "payload",
        "meta",
    ] {
        assert!(paths.contains(&vec![Seg::Key(field.into())]), "{field}");
    }
    for field in ["actor", "ip_hash", "ua_hash", "msg_id"] {
        assert!(
            paths.contains(&vec![Seg::Key("meta".into()), Seg::Key(field.into())]),
            "meta.{field}"
        );
    }
    assert_eq!(events[1].as_object().unwrap().len(), 10, "{:#}", events[1]);
}
