//! The Webrat (DESIGN.md §4 "Governance", "Peer verification", "Moderation"): Anträge with their
//! objections, votes, tally and audit; 1:1 delegation; peer verification; moderation threads.
//!
//! The commands are built and executed by `services::governance`, which reads the facts from
//! outside the aggregate from the projections (whether the caller is verified, the caller's
//! home, whether a delegate exists, who wrote flagged content); the resolvers here only take
//! the input and shape the answer.
//!
//! Choices beyond DESIGN.md:
//! - Any verified role of the Ort may vote on and object to any Antrag; the domain leaves this
//!   to the caller and the quorum base is the Weberei's active roles either way.
//! - "The tally so far" counts the direct votes of the projection and the delegations active
//!   now whose delegators are verified, with the same rules as the decision
//!   (`governance::tally`); once decided, the recorded numbers are shown.
//! - The audit is rebuilt from what the projection recorded of the decision
//!   (`antrag_counted_votes` and the counts on `antraege`) and checked with
//!   `governance::audit_decision`, so anyone can recompute it from the API.
//! - A moderation thread is all flags on one piece of content; it is open while any of its
//!   flags is unresolved, and its outcome is that of its latest resolution. Hidden content is
//!   not shown as a thread's target (it disappears from every query).

mod antrag;
mod loaders;
mod moderation;
mod mutations;
mod queries;
mod subscriptions;
mod types;

pub use loaders::{AntragLoader, EinsprucheByAntrag, StimmenByAntrag, VerificationLoader};
pub use mutations::GovernanceMutation;
pub use queries::GovernanceQuery;
pub(crate) use queries::{AntragConnection, ModerationThreadConnection};
pub use subscriptions::GovernanceSubscription;
