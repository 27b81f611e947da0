//! The event envelope of DESIGN.md §3, serialized as JSON with the field names of the seed.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;
use uuid::Uuid;

use crate::error::DomainError;
use crate::events::{EventType, Payload};

/// The kind of aggregate an event belongs to; each has its own hash chain per id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateType {
    Knoten,
    Faden,
    Antrag,
    Rolle,
    Zahlung,
    Delegation,
    Flag,
    System,
}

impl AggregateType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Knoten => "knoten",
            Self::Faden => "faden",
            Self::Antrag => "antrag",
            Self::Rolle => "rolle",
            Self::Zahlung => "zahlung",
            Self::Delegation => "delegation",
            Self::Flag => "flag",
            Self::System => "system",
        }
    }

    /// Which stream (and subject domain) events of this aggregate live in.
    pub fn domain(self) -> StreamDomain {
        match self {
            Self::Knoten | Self::Faden | Self::Rolle => StreamDomain::Social,
            Self::Antrag | Self::Delegation | Self::Flag => StreamDomain::Governance,
            Self::Zahlung => StreamDomain::Finance,
            Self::System => StreamDomain::System,
        }
    }
}

/// The streams of one Ort (DESIGN.md §3): `wg_<ort>_<domain>` holding `wg.<ort>.<domain>.>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamDomain {
    Social,
    Governance,
    Finance,
    Dlq,
    System,
}

impl StreamDomain {
    pub const ALL: [StreamDomain; 5] = [
        Self::Social,
        Self::Governance,
        Self::Finance,
        Self::Dlq,
        Self::System,
    ];

    /// The streams whose events are projected (everything but the dead letters).
    pub const PROJECTED: [StreamDomain; 4] =
        [Self::Social, Self::Governance, Self::Finance, Self::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Social => "social",
            Self::Governance => "governance",
            Self::Finance => "finance",
            Self::Dlq => "dlq",
            Self::System => "system",
        }
    }
}

/// The slug of a town: lowercase ASCII letters, digits and `_`, 1..=32 chars, so that it is
/// valid both in NATS subjects and in stream names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ort(String);

impl Ort {
    pub fn new(slug: &str) -> Result<Self, DomainError> {
        let ok = !slug.is_empty()
            && slug.len() <= 32
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(slug.to_owned()))
        } else {
            Err(DomainError::validation(
                "ort",
                format!("{slug:?} is not a valid Ort slug (1-32 of a-z, 0-9, _)"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `wg_<ort>_<domain>`
    pub fn stream_name(&self, domain: StreamDomain) -> String {
        format!("wg_{}_{}", self.0, domain.as_str())
    }

    /// `wg.<ort>.<domain>.>`
    pub fn stream_filter(&self, domain: StreamDomain) -> String {
        format!("wg.{}.{}.>", self.0, domain.as_str())
    }

    /// `wg.<ort>.<domain>.<aggregateType>.<aggregateId>`: the subject of one aggregate's chain.
    pub fn aggregate_subject(&self, aggregate_type: AggregateType, id: Uuid) -> String {
        format!(
            "wg.{}.{}.{}.{}",
            self.0,
            aggregate_type.domain().as_str(),
            aggregate_type.as_str(),
            id
        )
    }

    /// `wg.<ort>.dlq.rejected`: every refused command (audit, expected).
    pub fn rejected_subject(&self) -> String {
        format!("wg.{}.dlq.rejected", self.0)
    }

    /// `wg.<ort>.dlq.dead`: what a worker could not process (counts against the SLO).
    pub fn dead_subject(&self) -> String {
        format!("wg.{}.dlq.dead", self.0)
    }
}

impl TryFrom<String> for Ort {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Ort::new(&value)
    }
}

impl From<Ort> for String {
    fn from(value: Ort) -> Self {
        value.0
    }
}

impl fmt::Display for Ort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who caused an event: a Rolle, or the system (timers, workers, admin tooling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    Rolle(Uuid),
    System,
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Actor::Rolle(id) => s.collect_str(id),
            Actor::System => s.serialize_str("system"),
        }
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw == "system" {
            return Ok(Actor::System);
        }
        Uuid::parse_str(&raw)
            .map(Actor::Rolle)
            .map_err(serde::de::Error::custom)
    }
}

/// Who and how: never raw IP or user agent, only salted hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub actor: Actor,
    pub ip_hash: Option<String>,
    pub ua_hash: Option<String>,
    /// The idempotency key: `Nats-Msg-Id` on JetStream, `dedupe:<msg_id>` in Redis.
    pub msg_id: String,
}

/// One immutable event. `hash(e) = SHA-256(RFC 8785 canonical JSON of the whole envelope)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(with = "ulid_string")]
    pub id: Ulid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    #[serde(rename = "aggregateId")]
    pub aggregate_id: Uuid,
    #[serde(rename = "aggregateType")]
    pub aggregate_type: AggregateType,
    pub prev_hash: Option<String>,
    #[serde(with = "rfc3339_millis")]
    pub ts: DateTime<Utc>,
    pub subject: String,
    pub payload: serde_json::Value,
    pub meta: Meta,
}

/// What the caller supplies for one new event besides its payload.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub id: Ulid,
    pub ts: DateTime<Utc>,
    pub meta: Meta,
}

impl Envelope {
    /// Seal a typed payload into an envelope on its aggregate's chain.
    pub fn seal<P: Payload>(
        ort: &Ort,
        aggregate_id: Uuid,
        prev_hash: Option<String>,
        payload: &P,
        ctx: EventContext,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: ctx.id,
            event_type: P::TYPE.as_str().to_owned(),
            version: P::VERSION,
            aggregate_id,
            aggregate_type: P::AGGREGATE,
            prev_hash,
            ts: truncate_millis(ctx.ts),
            subject: ort.aggregate_subject(P::AGGREGATE, aggregate_id),
            payload: serde_json::to_value(payload)?,
            meta: ctx.meta,
        })
    }

    /// A one-event envelope on a fixed subject (dead letters, fallback notices): each is its
    /// own aggregate, so it never competes for a chain.
    pub fn standalone<P: Payload>(
        subject: String,
        payload: &P,
        ctx: EventContext,
        aggregate_id: Uuid,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: ctx.id,
            event_type: P::TYPE.as_str().to_owned(),
            version: P::VERSION,
            aggregate_id,
            aggregate_type: P::AGGREGATE,
            prev_hash: None,
            ts: truncate_millis(ctx.ts),
            subject,
            payload: serde_json::to_value(payload)?,
            meta: ctx.meta,
        })
    }

    /// The known type of this event, if it is one of ours.
    pub fn known_type(&self) -> Option<EventType> {
        EventType::parse(&self.event_type)
    }

    /// Decode the payload as `P`, checking that the envelope says it is one.
    pub fn decode<P: Payload>(&self) -> Result<P, DomainError> {
        if self.event_type != P::TYPE.as_str() {
            return Err(DomainError::validation(
                "type",
                format!("expected {}, got {}", P::TYPE.as_str(), self.event_type),
            ));
        }
        serde_json::from_value(self.payload.clone())
            .map_err(|e| DomainError::validation("payload", e.to_string()))
    }

    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// Events carry millisecond timestamps so that every language round-trips them exactly.
pub fn truncate_millis(ts: DateTime<Utc>) -> DateTime<Utc> {
    let millis = ts.timestamp_millis();
    DateTime::from_timestamp_millis(millis).unwrap_or(ts)
}

mod ulid_string {
    use serde::{Deserialize, Deserializer, Serializer};
    use ulid::Ulid;

    pub fn serialize<S: Serializer>(id: &Ulid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ulid, D::Error> {
        let raw = String::deserialize(d)?;
        Ulid::from_string(&raw).map_err(serde::de::Error::custom)
    }
}

mod rfc3339_millis {
    use super::*;

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ort_slug_rejects_subject_breaking_characters() {
        assert!(Ort::new("kleinroennau").is_ok());
        for bad in ["", "a.b", "a b", "Gross", "a>", "a*", &"x".repeat(33)] {
            assert!(Ort::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn subjects_follow_the_design() {
        let ort = Ort::new("demo").unwrap();
        let id = Uuid::nil();
        assert_eq!(
            ort.aggregate_subject(AggregateType::Knoten, id),
            "wg.demo.social.knoten.00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            ort.stream_name(StreamDomain::Governance),
            "wg_demo_governance"
        );
        assert_eq!(ort.stream_filter(StreamDomain::Dlq), "wg.demo.dlq.>");
        assert_eq!(ort.dead_subject(), "wg.demo.dlq.dead");
    }
}
