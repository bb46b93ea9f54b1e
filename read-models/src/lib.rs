//! Sentinel's read-model contract: what the projection side writes and the
//! query side reads, in one place, so the two can only disagree at compile
//! time (ADR 0013).
//!
//! - `model`: what every read model declares (`Model`: name, version,
//!   partitioning, DDL, tables) and the registry `ALL`.
//! - `schema`: the PostgreSQL schema names a model lives under
//!   (`rm_{name}` serving, `rm_{name}__next` rebuilding).
//! - One module per model: `transactions`, `velocity`, `geo`, `profiles`,
//!   `alerts`, `merchants`, `data_quality`. Each holds its `MODEL`, its DDL,
//!   the row types and read queries the query API runs and, where the model
//!   keeps state, its pure fold (state + apply: no SQL, no async).
//!
//! What the contract promises:
//! - The DDL, the read queries and the row types are written next to each
//!   other, so a column renamed in one is seen in the others.
//! - A fold is a pure function of the events it is given, in log order: the
//!   live projector, a rebuild and time travel (which folds one customer's
//!   stream in memory) all run the same code and get the same state.
//! - Nothing here runs a query: the crate depends on `domain` only (and on
//!   `sqlx` for `FromRow`); projection-service owns loading, flushing,
//!   checkpoints and rebuilds, query-api owns running the reads.

pub mod alerts;
pub mod data_quality;
pub mod geo;
pub mod merchants;
pub mod model;
pub mod profiles;
pub mod schema;
pub mod transactions;
pub mod velocity;

pub use model::{ALL, Model, by_name};
