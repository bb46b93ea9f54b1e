//! Sentinel's projection side: projectors fold the event log, in order, into
//! read models in PostgreSQL, each with a checkpoint written in the same
//! transaction as its rows; rebuilds write fresh tables and swap them in
//! atomically.
//!
//! - `projector`: the trait a read model implements; `event`: what it is given.
//! - `models`: the read models.
//! - `apply`, `checkpoint`, `partition`, `schema`: the runtime's parts.
//! - `fold`: a projector's rows held in memory across batches (rebuilds);
//!   `copy`: how a rebuild writes rows into its fresh tables.
//! - `live`: a projector following the log; `rebuild`: replay and swap.
//! - `status`: what each projector reports, in PostgreSQL and on `/metrics`.
//! - `quality`: detection recall, precision and false-positive rate on the
//!   latest labelled window, as gauges.

pub mod apply;
pub mod checkpoint;
pub mod configuration;
pub mod copy;
pub mod event;
pub mod fold;
pub mod http;
pub mod live;
pub mod models;
pub mod partition;
pub mod projector;
pub mod quality;
pub mod rebuild;
pub mod schema;
pub mod startup;
pub mod status;
pub mod tracing_context;
