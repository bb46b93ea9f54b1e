//! Sentinel's query side: GraphQL (async-graphql on axum) over the read
//! models the projectors keep, the audit history and time travel straight
//! from the event log, and live alerts over WebSocket.
//!
//! - `schema`: the GraphQL types and resolvers, one file per area;
//!   rows, read queries and schema names are the read-model contract's
//!   (`read_models`): the query side links no projection code;
//! - `loaders`: batched look-ups (DataLoader), so a page of rows costs a
//!   bounded number of SQL statements, not one per row;
//! - `db`: the query pool (its `search_path` names the serving read-model
//!   schemas) and the per-request statement counter;
//! - `time_travel`: a customer's state replayed from the log in memory by
//!   the read models' own folds (`read_models`);
//! - `feed`: the one background poller that pushes newly projected alerts to
//!   every subscriber;
//! - `observe`: error codes on every error, request metrics;
//! - `console`, `assets`: the console at `/console/` and GraphiQL at `/`,
//!   every file they load compiled into the binary; `forward`: the
//!   console's actions passed to the command service;
//! - `http`, `auth`, `configuration`, `startup`: the service around it.

// Untrusted queries must never crash the service: no panicking shortcuts
// outside tests (clippy checks it).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod assets;
pub mod auth;
pub mod configuration;
pub mod console;
pub mod db;
pub mod error;
pub mod feed;
pub mod forward;
pub mod http;
pub mod loaders;
pub mod observe;
pub mod page;
pub mod schema;
pub mod startup;
pub mod time_travel;
