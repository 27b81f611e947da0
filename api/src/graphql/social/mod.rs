//! Fäden, rooms (thread, participants, design area), search and the public config: the
//! contract types in `types.rs`, the queries in `queries.rs`, the mutations in `mutations.rs`.

mod mutations;
mod queries;
mod types;

pub use mutations::SocialMutation;
pub(crate) use queries::NachrichtConnection;
pub use queries::SocialQuery;
pub(crate) use types::load_nachricht;
pub use types::{FadenNode, FaedenByKnoten, NachrichtNode};
