#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The committed hash-chain vectors (`tests/vectors/chain-vectors.json`) agree with this crate,
//! and are exactly what `examples/gen_vectors.rs` generates (so they never drift).

#[allow(dead_code)]
#[path = "../examples/gen_vectors.rs"]
mod gen_vectors;

use domain::{Envelope, canonical_json, hash_envelope, hash_value, verify_chain};
use serde_json::Value;

const FILE: &str = include_str!("vectors/chain-vectors.json");

fn cases() -> Vec<Value> {
    let doc: Value = serde_json::from_str(FILE).expect("chain-vectors.json is JSON");
    doc["cases"].as_array().expect("cases").clone()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

#[test]
fn committed_file_is_the_generator_output() {
    let generated = gen_vectors::generate().expect("generate");
    assert!(
        generated == FILE,
        "tests/vectors/chain-vectors.json is stale; regenerate it with\n  \
         cargo run -p domain --example gen_vectors > domain/tests/vectors/chain-vectors.json"
    );
}

#[test]
fn the_file_covers_the_documented_cases() {
    let names: Vec<String> = cases()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "valid_knoten_chain",
            "valid_single_genesis",
            "broken_prev_hash_altered",
            "broken_genesis_prev_hash_not_null",
            "broken_payload_tampered",
            "broken_reordered",
            "broken_mixed_aggregate_ids",
        ]
    );
}

#[test]
fn canonical_forms_match() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let events = case["events"].as_array().unwrap();
        let canonical = strings(&case["canonical"]);
        assert_eq!(events.len(), canonical.len(), "{name}");
        for (i, (event, expected)) in events.iter().zip(canonical).enumerate() {
            assert_eq!(canonical_json(event), expected, "{name} event {i}");
            // The canonical form is itself JSON for the same value, and a fixed point.
            let reparsed: Value = serde_json::from_str(expected).unwrap();
            assert_eq!(canonical_json(&reparsed), expected, "{name} event {i}");
        }
    }
}

#[test]
fn hashes_match() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let events = case["events"].as_array().unwrap();
        let hashes = strings(&case["hashes"]);
        assert_eq!(events.len(), hashes.len(), "{name}");
        for (i, (event, expected)) in events.iter().zip(hashes).enumerate() {
            assert_eq!(expected.len(), 64, "{name} event {i}");
            assert!(
                expected
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{name} event {i}: hash must be lowercase hex"
            );
            assert_eq!(hash_value(event), expected, "{name} event {i}");
        }
    }
}

#[test]
fn every_event_round_trips_through_the_envelope_type() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let events = case["events"].as_array().unwrap();
        let hashes = strings(&case["hashes"]);
        for (i, (event, expected)) in events.iter().zip(hashes).enumerate() {
            let envelope: Envelope = serde_json::from_value(event.clone())
                .unwrap_or_else(|e| panic!("{name} event {i} is not an Envelope: {e}"));
            assert_eq!(
                hash_envelope(&envelope).unwrap(),
                expected,
                "{name} event {i}: re-serializing the typed envelope changed its hash"
            );
        }
    }
}

#[test]
fn verdicts_match_verify_chain() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let events = case["events"].as_array().unwrap();
        let verdict = &case["verdict"];
        let result = verify_chain(events);
        if verdict["valid"].as_bool().unwrap() {
            let hashes = result.unwrap_or_else(|b| panic!("{name}: expected valid, got {b}"));
            assert_eq!(hashes, strings(&case["hashes"]), "{name}");
        } else {
            let at = usize::try_from(verdict["broken_at"].as_u64().unwrap()).unwrap();
            let reason = verdict["reason"].as_str().unwrap();
            let brk = result
                .err()
                .unwrap_or_else(|| panic!("{name}: expected a break at {at}, chain verified"));
            assert_eq!(brk.index, at, "{name}: {brk}");
            // The reason's first word names the failing field; verify_chain must agree.
            let field = reason.split_whitespace().next().unwrap();
            assert!(
                brk.reason.contains(field),
                "{name}: expected a {field} break, got {brk}"
            );
        }
    }
}
