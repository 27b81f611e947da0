//! The schema's custom scalars as Rust types (the generated code refers to them by name).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `DateTime`: an RFC 3339 instant in UTC.
pub type DateTime = chrono::DateTime<chrono::Utc>;

/// `JSON`: any JSON value (design areas and Antrag contents are JSON objects).
pub type Json = serde_json::Value;

/// `U64`: an unsigned 64-bit integer. The server sends it as a decimal string (stream
/// sequences outgrow GraphQL's `Int`); a number is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct U64(pub u64);

impl U64 {
    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for U64 {
    fn from(v: u64) -> Self {
        U64(v)
    }
}

impl From<U64> for u64 {
    fn from(v: U64) -> Self {
        v.0
    }
}

impl fmt::Display for U64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for U64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct U64Visitor;

        impl Visitor<'_> for U64Visitor {
            type Value = U64;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned 64-bit integer as a decimal string or a number")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64, E> {
                Ok(U64(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64, E> {
                u64::try_from(v)
                    .map(U64)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<U64, E> {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                v.parse()
                    .map(U64)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }

        deserializer.deserialize_any(U64Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_travels_as_a_decimal_string_and_accepts_numbers() {
        let big = U64(u64::MAX);
        let json = serde_json::to_string(&big).unwrap();
        assert_eq!(json, format!("\"{}\"", u64::MAX));
        assert_eq!(serde_json::from_str::<U64>(&json).unwrap(), big);
        assert_eq!(serde_json::from_str::<U64>("42").unwrap(), U64(42));
        for bad in ["\"-1\"", "\"1e3\"", "\"\"", "-1", "\" 1\"", "1.5", "true"] {
            assert!(
                serde_json::from_str::<U64>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn date_times_are_rfc3339_utc() {
        let t: DateTime = serde_json::from_str("\"2026-03-01T12:30:00.123+01:00\"").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T11:30:00.123+00:00");
    }
}
