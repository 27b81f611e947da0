//! Shared GraphQL primitives every feature module uses: ids, the caller and the idempotency
//! key, the bounding box input, the event receipt, the `U64` scalar, keyset and stream cursors
//! and page sizes. Feature modules import from here, never from each other, for these.

use async_graphql::{
    Context, ID, InputObject, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject,
    Value,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bus::Stored;
use chrono::{DateTime, Utc};
use domain::DomainError;
use domain::geo::Bbox;
use uuid::Uuid;

use super::Deps;
use crate::auth::{Caller, ClientInfo, InvalidToken};
use crate::error::ApiError;
use crate::services::Origin;

// ---------------------------------------------------------------------------------------------
// Ids, callers, keys

pub(crate) fn parse_id(id: &ID, field: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        DomainError::validation(field, format!("{:?} is not an id (UUID)", id.as_str())).into()
    })
}

/// A UUID as a GraphQL id.
pub(crate) fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

/// The caller's session, or UNAUTHENTICATED with what to do about it.
pub(crate) fn require_caller(ctx: &Context<'_>) -> Result<Caller, ApiError> {
    if let Some(c) = ctx.data_opt::<Caller>() {
        return Ok(*c);
    }
    if ctx.data_opt::<InvalidToken>().is_some() {
        return Err(ApiError::Unauthenticated(
            "the session token is unknown or revoked: log in again (register creates a new session)".into(),
        ));
    }
    Err(ApiError::Unauthenticated(
        "this needs a session: send `Authorization: Bearer <token>` (the token comes from `register`)".into(),
    ))
}

pub(crate) fn validate_idempotency_key(key: &str) -> Result<&str, ApiError> {
    let ok = (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(key)
    } else {
        Err(DomainError::validation(
            "idempotencyKey",
            "must be 1 to 128 visible ASCII characters (no spaces)",
        )
        .into())
    }
}

/// What a mutation needs first: the caller (UNAUTHENTICATED without a session), the
/// dependencies, and the command's origin with its validated idempotency key.
pub(crate) fn mutation<'a>(
    ctx: &'a Context<'_>,
    key: &'a str,
) -> Result<(&'a Deps, Origin<'a>), ApiError> {
    let caller = require_caller(ctx)?;
    let deps = ctx
        .data::<Deps>()
        .map_err(|e| ApiError::unavailable(e.message))?;
    let key = validate_idempotency_key(key)?;
    let client = ctx.data_opt::<ClientInfo>();
    Ok((
        deps,
        Origin {
            caller,
            client,
            key,
        },
    ))
}

/// The domain names its fields in snake_case after its own words; the client sent camelCase.
pub(crate) fn rename_field(e: ApiError, from: &str, to: &str) -> ApiError {
    match e {
        ApiError::Domain(DomainError::Validation { field, message }) if field == from => {
            ApiError::Domain(DomainError::Validation {
                field: to.to_owned(),
                message,
            })
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs and receipts

/// A bounding box in degrees (WGS84). West must not be east of east (no antimeridian
/// crossing); the area is limited by the server (VALIDATION when too large).
#[derive(InputObject, Clone, Copy, Debug)]
pub struct BboxInput {
    /// Western edge, longitude in [-180, 180].
    pub west: f64,
    /// Southern edge, latitude in [-90, 90].
    pub south: f64,
    /// Eastern edge, longitude in [-180, 180].
    pub east: f64,
    /// Northern edge, latitude in [-90, 90].
    pub north: f64,
}

impl BboxInput {
    pub fn validate(self, max_area: f64) -> Result<Bbox, ApiError> {
        Ok(Bbox::new(
            self.west, self.south, self.east, self.north, max_area,
        )?)
    }
}

/// The event a mutation produced: where it sits in the log.
#[derive(SimpleObject, Clone, Debug)]
pub struct EventReceipt {
    /// Event id (ULID).
    pub id: String,
    /// Event type, e.g. `KnotenGeknuepft`.
    #[graphql(name = "type")]
    pub event_type: String,
    /// SHA-256 (hex) of the RFC 8785 canonical JSON of the event: the link the next event of
    /// this aggregate will carry as `prev_hash`.
    pub hash: String,
    /// Hash of the previous event of the same aggregate; null for the first.
    pub prev_hash: Option<String>,
    /// JetStream stream sequence. Null while the event waits in the fallback because
    /// JetStream was unavailable; it is published there later, in order.
    pub stream_sequence: Option<U64>,
}

impl From<&Stored> for EventReceipt {
    fn from(s: &Stored) -> Self {
        Self {
            id: s.envelope.id.to_string(),
            event_type: s.envelope.event_type.clone(),
            hash: s.hash.clone(),
            prev_hash: s.envelope.prev_hash.clone(),
            stream_sequence: s.seq.map(U64),
        }
    }
}

/// An unsigned 64-bit integer as a decimal string: stream sequences outgrow GraphQL's 32-bit
/// `Int` and JavaScript's safe integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct U64(pub u64);

/// An unsigned 64-bit integer as a decimal string (e.g. `"18446744073709551615"`): stream
/// sequences outgrow GraphQL's 32-bit `Int` and JavaScript's safe integers. As input, a
/// non-negative integer literal is accepted too.
#[Scalar(name = "U64")]
impl ScalarType for U64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(U64)
                .map_err(|_| InputValueError::custom("U64 must be a decimal string")),
            Value::Number(n) => n
                .as_u64()
                .map(U64)
                .ok_or_else(|| InputValueError::custom("U64 must be non-negative")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Pagination

/// `first` of a connection: `default` when absent, VALIDATION outside 1..=`max`.
pub(crate) fn page_size(first: Option<i32>, default: i32, max: usize) -> Result<i32, ApiError> {
    let max = i32::try_from(max).unwrap_or(i32::MAX);
    let first = first.unwrap_or(default);
    if !(1..=max).contains(&first) {
        return Err(
            DomainError::validation("first", format!("must be between 1 and {max}")).into(),
        );
    }
    Ok(first)
}

/// Later than any row: the upper end of a keyset range without `before`.
pub(crate) fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(32_503_680_000, 0).unwrap_or_default()
}

/// The keyset cursor of a connection ordered by `(time, id)`: opaque to clients.
pub(crate) fn encode_keyset(ts: DateTime<Utc>, id: &ID) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", ts.timestamp_micros(), id.as_str()))
}

/// A keyset cursor back to `(time, id)`; VALIDATION of `field` ("not a cursor returned by this
/// `source`") for anything this API did not hand out.
pub(crate) fn decode_keyset(
    cursor: &str,
    field: &str,
    source: &str,
) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::from(DomainError::validation(
            field,
            format!("not a cursor returned by this {source}"),
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, id) = raw.split_once('|').ok_or_else(bad)?;
    let ts = DateTime::from_timestamp_micros(ts.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((ts, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// The cursor of a live subscription: a position in one stream (`<prefix>:<seq>`), opaque.
pub(crate) fn encode_stream_cursor(prefix: &str, seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{prefix}{seq}"))
}

/// A stream cursor back to its position; VALIDATION of `after` with `message` otherwise.
pub(crate) fn decode_stream_cursor(
    prefix: &str,
    cursor: &str,
    message: &str,
) -> Result<u64, ApiError> {
    let bad = || ApiError::from(DomainError::validation("after", message));
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let seq = raw.strip_prefix(prefix).ok_or_else(bad)?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    seq.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_validation_error() {
        let ts = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap_or_default();
        let id = ID(Uuid::from_u128(7).to_string());
        let c = encode_keyset(ts, &id);
        let (t, i) = decode_keyset(&c, "after", "connection")
            .ok()
            .unwrap_or_default();
        assert_eq!((t, i), (ts, Uuid::from_u128(7)));
        assert!(matches!(
            decode_keyset("nope", "after", "connection"),
            Err(ApiError::Domain(DomainError::Validation { .. }))
        ));
    }

    #[test]
    fn domain_field_names_become_the_clients_names() {
        let e = rename_field(
            DomainError::validation("valid_until", "past").into(),
            "valid_until",
            "validUntil",
        );
        assert!(
            matches!(e, ApiError::Domain(DomainError::Validation { ref field, .. }) if field == "validUntil")
        );
    }
}
