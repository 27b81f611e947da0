//! The GraphQL API of Weberei (axum + async-graphql): queries and mutations over HTTP,
//! subscriptions over graphql-ws and graphql-transport-ws, GraphiQL, health and Prometheus
//! metrics, and the live fan-out of events to viewport subscribers.
//!
//! The API decides commands through `bus` (events are the only way to change anything) and
//! reads projections from PostgreSQL. It must never write projection tables, never talk to a
//! worker directly, and never let a SeaORM model or a domain type leak into the schema: the
//! GraphQL types here are the contract.
//!
//! Layers, each only calling the ones below it:
//! - `http` (routes, auth extraction, headers) ->
//! - `graphql` (types and resolvers only; its `edge` extension codes errors and hands refusals
//!   to `rejections`) ->
//! - `services` (per domain: command building and execution, also used by the demo town and
//!   the CLI) ->
//! - `read` (per domain: all database access).
//!
//! Beside them, `live` follows the streams and produces neutral change records that `tiles`
//! groups per map tile and `graphql` converts; `auth`, `error`, `config` are shared below all.

mod auth;
mod config;
mod error;
mod graphql;
mod http;
mod live;
mod read;
mod rejections;
mod services;
mod state;
mod tiles;

pub use config::{ApiConfig, Flags};
pub use error::ApiError;
pub use graphql::{AppSchema, schema, schema_sdl};
pub use http::app;
pub use live::LiveHub;
pub use services::{accounts, admin, rooms};
pub use state::AppState;
