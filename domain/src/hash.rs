//! RFC 8785 (JCS) canonical JSON and the per-aggregate SHA-256 hash chain.
//!
//! `hash(e) = hex(SHA-256(JCS(envelope)))`. Hash what was received (the JSON value), never a
//! re-serialization of our own struct, so any language with a JCS library can check a chain.

use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::envelope::Envelope;

/// RFC 8785 canonical form of a JSON value.
pub fn canonical_json(value: &Value) -> String {
    // serde_jcs only fails for non-JSON data models (maps with non-string keys); a Value
    // cannot contain those, so the fallback is unreachable in practice.
    serde_jcs::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// Lowercase hex SHA-256 of the canonical form of `value`.
pub fn hash_value(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(value).as_bytes()))
}

/// The hash of an envelope as we would serialize it.
pub fn hash_envelope(envelope: &Envelope) -> Result<String, serde_json::Error> {
    Ok(hash_value(&envelope.to_value()?))
}

/// Where and why a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("chain broken at event {index}: {reason}")]
pub struct ChainBreak {
    pub index: usize,
    pub reason: String,
}

/// Check one aggregate's events in order: the first has `prev_hash: null`, each later one
/// carries the hash of the one before, all share `aggregateId`. Returns every event's hash.
pub fn verify_chain(events: &[Value]) -> Result<Vec<String>, ChainBreak> {
    verify_chain_from(None, events)
}

/// Like [`verify_chain`], continuing after a known head (`None` = start of the chain).
pub fn verify_chain_from(head: Option<&str>, events: &[Value]) -> Result<Vec<String>, ChainBreak> {
    let mut hashes = Vec::with_capacity(events.len());
    let mut expected_prev = head.map(str::to_owned);
    let mut aggregate: Option<&Value> = None;
    for (index, event) in events.iter().enumerate() {
        let brk = |reason: String| ChainBreak { index, reason };
        let id = event
            .get("aggregateId")
            .ok_or_else(|| brk("aggregateId is missing".into()))?;
        match aggregate {
            None => aggregate = Some(id),
            Some(first) if first != id => {
                return Err(brk(format!("aggregateId {id} differs from {first}")));
            }
            Some(_) => {}
        }
        let prev = match event.get("prev_hash") {
            Some(Value::Null) => None,
            Some(Value::String(h)) => Some(h.as_str()),
            Some(other) => return Err(brk(format!("prev_hash is not a string or null: {other}"))),
            None => return Err(brk("prev_hash is missing".into())),
        };
        if prev != expected_prev.as_deref() {
            return Err(brk(format!(
                "prev_hash {} does not match the previous event's hash {}",
                prev.unwrap_or("null"),
                expected_prev.as_deref().unwrap_or("null (start of chain)")
            )));
        }
        let hash = hash_value(event);
        expected_prev = Some(hash.clone());
        hashes.push(hash);
    }
    Ok(hashes)
}

/// A chain check failure for a single link, used by the projection worker.
pub fn check_link(expected_prev: Option<&str>, event: &Value) -> Result<String, ChainBreak> {
    verify_chain_from(expected_prev, std::slice::from_ref(event)).map(|mut h| h.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_sorts_keys_and_normalises_numbers() {
        let v = json!({"b": 1.0, "a": [true, null, "ä"], "c": 1e21, "d": 0.1});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":[true,null,"ä"],"b":1,"c":1e+21,"d":0.1}"#
        );
    }

    #[test]
    fn hash_is_independent_of_key_order() {
        let a: Value = serde_json::from_str(r#"{"x":1,"y":{"b":2,"a":1}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y":{"a":1,"b":2},"x":1}"#).unwrap();
        assert_eq!(hash_value(&a), hash_value(&b));
    }

    #[test]
    fn a_link_to_the_wrong_head_is_a_break() {
        let e = json!({"aggregateId": "a", "prev_hash": "00"});
        assert!(check_link(Some("00"), &e).is_ok());
        let err = check_link(Some("11"), &e).unwrap_err();
        assert!(err.reason.contains("does not match"), "{err}");
        assert!(check_link(None, &e).is_err());
    }
}
