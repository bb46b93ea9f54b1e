//! Sentinel's command side: the REST ingest.
//!
//! `POST /v1/transactions` (and `/batch`) parse and validate input,
//! quarantine what is refused, ask the domain for a decision against the
//! customer's state, and append the transaction and alert events through the
//! event store's group commit; an answer is sent only after the commit.
//! - `configuration`: settings from the environment;
//! - `startup`: builds and runs the service;
//! - `commands/`: the one command pipeline (read, fold, decide, append,
//!   retry on a version conflict) and the analyst's alert and label
//!   commands, decided by `domain`;
//! - `http/`: one module per resource, and `Problem`, the one error type;
//! - `ingest/`: per-customer state, idempotency, decisions, quarantine;
//! - `peers/`: what the command side folds from the whole log: the merchant
//!   and category counts behind the features, and the transaction
//!   directory labels are resolved with;
//! - `metrics`: Prometheus counters and timings, served at `/metrics`.

pub mod commands;
pub mod configuration;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod peers;
pub mod policy;
pub mod startup;
