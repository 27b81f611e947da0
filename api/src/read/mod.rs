//! Read models: ALL database access of the api crate, one module per domain. Each function
//! answers one question about the projections (or writes the API's own tables, `sessions` and
//! `rolle_keys`) and returns plain rows: no GraphQL types, no commands, no bus.
//!
//! Where SeaORM's query builder cannot say it (PostGIS, pg_trgm similarity, one-statement JSON
//! export), the SQL stays here, in the module of its domain.
//!
//! A read model must never import `graphql`, `services` or `live`: they call it, not the other
//! way round.

pub(crate) mod accounts;
pub(crate) mod governance;
pub(crate) mod knoten;
pub(crate) mod social;

use chrono::{DateTime, Utc};

/// A keyset position: `(created_at, id)` of the last row of a page.
pub(crate) type Keyset = (DateTime<Utc>, uuid::Uuid);

/// H3 cell index as stored (`bigint`) -> its hex notation ("" when it is not a cell).
pub(crate) fn h3_hex(h3: i64) -> String {
    h3o::CellIndex::try_from(h3 as u64)
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// A timestamp as the entities hold it (`timestamptz`, always UTC here) as UTC.
pub(crate) fn utc(t: sea_orm::prelude::DateTimeWithTimeZone) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}
