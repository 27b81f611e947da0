//! Shared set-up of the binary's end-to-end tests: `viewport` (raw graphql-transport-ws
//! subscribers against `weberei up`) and `client` (`weberei up` spoken to through
//! `weberei-client`). Each test file uses only part of it.
#![allow(dead_code)]

pub mod client;
pub mod viewport;
