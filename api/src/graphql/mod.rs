//! The schema: one module per feature, roots merged. Resolvers stay thin: they take input,
//! call a service (`crate::services`) or a read model (`crate::read`), and map the result to
//! the contract types defined here; the live subscriptions convert `crate::live` records.
//!
//! graphql must never touch the database directly (no SQL, no SeaORM query here), never build
//! a command itself, and never record refusals outside its edge extension (`edge.rs`).

mod edge;
mod governance;
mod knoten;
mod primitives;
mod rolle;
mod social;
mod viewport;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, MergedSubscription, Schema};
use bus::Bus;
use sea_orm::DatabaseConnection;

use crate::config::ApiConfig;
use crate::live::LiveHub;

/// Everything that can be read: the map (Knoten in a box), rooms, roles and sessions, search,
/// the server's public configuration, the Webrat's Anträge, delegations and moderation threads.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    knoten::KnotenQuery,
    social::SocialQuery,
    rolle::RolleQuery,
    governance::GovernanceQuery,
);

/// Everything that changes state. All but `register` need a session. Mutations that record an
/// event take an `idempotencyKey` that makes them safe to retry: a retry with the same key
/// records nothing new (see each input's `idempotencyKey`).
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    rolle::RolleMutation,
    knoten::KnotenMutation,
    social::SocialMutation,
    governance::GovernanceMutation,
);

/// Live updates over the WebSocket at `/graphql/ws` (graphql-transport-ws or graphql-ws): map
/// changes in a viewport and Webrat changes in a box (as diffs with a `cursor` to resume from),
/// and the changes of one Antrag.
#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    viewport::ViewportSubscription,
    governance::GovernanceSubscription,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What resolvers reach through the context.
#[derive(Clone)]
pub(crate) struct Deps {
    pub bus: Bus,
    pub db: DatabaseConnection,
    pub hub: LiveHub,
    pub config: Arc<ApiConfig>,
}

fn builder(
    bus: Option<Bus>,
    db: Option<DatabaseConnection>,
    hub: Option<LiveHub>,
    config: Arc<ApiConfig>,
) -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let mut b = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .extension(edge::ErrorCodes)
    .limit_depth(12)
    .limit_complexity(1_000)
    .limit_recursive_depth(32)
    // Connection types are generic: their descriptions are set here, by type.
    .override_output_type_description::<knoten::KnotenConnection>(
        "A page of Knoten from the `knoten` query, oldest first. Pass `pageInfo.endCursor` as \
         `after` for the next page.",
    )
    .override_output_type_description::<social::NachrichtConnection>(
        "A page of a room's messages (`Room.thread`), oldest first within the page. Page \
         backwards with `pageInfo.startCursor` as `before`, forwards with `pageInfo.endCursor` \
         as `after`.",
    )
    .override_output_type_description::<governance::AntragConnection>(
        "A page of Anträge from the `antraege` query, newest first. Pass `pageInfo.endCursor` \
         as `after` for the next page.",
    )
    .override_output_type_description::<governance::ModerationThreadConnection>(
        "A page of moderation threads from the `moderationThreads` query, most recently \
         flagged first. Pass `pageInfo.endCursor` as `after` for the next page.",
    );
    if let (Some(bus), Some(db), Some(hub)) = (bus, db, hub) {
        b = b
            .data(DataLoader::new(
                rolle::RolleLoader(db.clone()),
                tokio::spawn,
            ))
            .data(DataLoader::new(
                social::FaedenByKnoten(db.clone()),
                tokio::spawn,
            ))
            .data(DataLoader::new(
                governance::AntragLoader(db.clone()),
                tokio::spawn,
            ))
            .data(DataLoader::new(
                governance::StimmenByAntrag(db.clone()),
                tokio::spawn,
            ))
            .data(DataLoader::new(
                governance::EinsprucheByAntrag(db.clone()),
                tokio::spawn,
            ))
            .data(DataLoader::new(
                governance::VerificationLoader(db.clone()),
                tokio::spawn,
            ))
            .data(bus.clone())
            .data(Deps {
                bus,
                db,
                hub,
                config,
            });
    }
    b
}

/// The schema with its dependencies.
pub fn schema(bus: Bus, db: DatabaseConnection, hub: LiveHub, config: Arc<ApiConfig>) -> AppSchema {
    builder(Some(bus), Some(db), Some(hub), config).finish()
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn schema_sdl() -> String {
    builder(None, None, None, Arc::new(ApiConfig::default()))
        .finish()
        .sdl()
}
