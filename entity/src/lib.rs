//! SeaORM entities for Weberei's PostgreSQL tables: the projections (rollen, knoten, faeden,
//! antraege, stimmen, delegationen, zahlungen, nachrichten, einsprueche, antrag_counted_votes,
//! flags, rolle_activity), the append-only `events_archive` with its `events_archive_keys`, the
//! hash-chain `aggregate_heads`, and the API-owned `rolle_keys` and `sessions`. The schema itself
//! is owned by the `migration` crate; these types mirror it (a test checks they read a migrated
//! database).
//!
//! This crate must never hold business rules, do I/O of its own, or derive GraphQL (or other
//! API) types: the API converts `Model`s into its own types by hand.
//!
//! The PostGIS `point` columns of `rollen` and `knoten` are left out on purpose (SeaORM has no
//! geography type). Read them with raw SQL, e.g.
//! `SELECT ST_X(point::geometry) AS lon, ST_Y(point::geometry) AS lat FROM knoten WHERE id = $1`,
//! and write them with `ST_SetSRID(ST_MakePoint($lon, $lat), 4326)::geography`. Because
//! `knoten.point` is NOT NULL, a Knoten row is inserted with raw SQL, not `ActiveModel::insert`.

pub mod aggregate_heads;
pub mod antraege;
pub mod antrag_counted_votes;
pub mod delegationen;
pub mod einsprueche;
pub mod enums;
pub mod events_archive;
pub mod events_archive_keys;
pub mod faeden;
pub mod flags;
pub mod knoten;
pub mod nachrichten;
pub mod rolle_activity;
pub mod rolle_keys;
pub mod rollen;
pub mod sessions;
pub mod stimmen;
pub mod zahlungen;

/// The entities under short names, in the style of `sea-orm-cli generate`.
pub mod prelude {
    pub use crate::aggregate_heads::Entity as AggregateHeads;
    pub use crate::antraege::Entity as Antraege;
    pub use crate::antrag_counted_votes::Entity as AntragCountedVotes;
    pub use crate::delegationen::Entity as Delegationen;
    pub use crate::einsprueche::Entity as Einsprueche;
    pub use crate::enums::{AntragStatus, FadenTyp, KnotenTyp, Vote, ZahlungSource, ZahlungStatus};
    pub use crate::events_archive::Entity as EventsArchive;
    pub use crate::events_archive_keys::Entity as EventsArchiveKeys;
    pub use crate::faeden::Entity as Faeden;
    pub use crate::flags::Entity as Flags;
    pub use crate::knoten::Entity as Knoten;
    pub use crate::nachrichten::Entity as Nachrichten;
    pub use crate::rolle_activity::Entity as RolleActivity;
    pub use crate::rolle_keys::Entity as RolleKeys;
    pub use crate::rollen::Entity as Rollen;
    pub use crate::sessions::Entity as Sessions;
    pub use crate::stimmen::Entity as Stimmen;
    pub use crate::zahlungen::Entity as Zahlungen;
}
