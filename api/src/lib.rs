//! The GraphQL API of Weberei (axum + async-graphql): queries and mutations over HTTP,
//! subscriptions over graphql-ws and graphql-transport-ws, GraphiQL, health and Prometheus
//! metrics, and the live fan-out of events to viewport subscribers.
//!
//! The API decides commands through `bus` (events are the only way to change anything) and
//! reads projections from PostgreSQL. It must never write projection tables, never talk to a
//! worker directly, and never let a SeaORM model or a domain type leak into the schema: the
//! GraphQL types here are the contract.

pub mod accounts;
pub mod admin;
mod auth;
mod config;
mod error;
mod graphql;
mod http;
mod live;
mod live_decode;
mod live_governance;
pub mod rooms;
mod state;
mod tiles;

pub use config::{ApiConfig, Flags};
pub use error::ApiError;
pub use graphql::{AppSchema, schema, schema_sdl};
pub use http::app;
pub use live::LiveHub;
pub use state::AppState;
