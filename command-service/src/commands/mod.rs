//! The command side's one way of carrying out a command on a stream, and
//! what every command shares.
//!
//! - `pipeline`: read the stream, fold it, decide, append with the expected
//!   version, and on a version conflict forget and go again (bounded). The
//!   transaction ingest (`crate::ingest`) runs through it with its own cache
//!   and batched loads; alerts and labels with a plain read of their stream;
//! - `events`: the one conversion of a `DomainEvent` to a `NewEvent`, and
//!   the one way an unreadable stored event is skipped;
//! - `alerts`, `labels`: the analyst's commands, decided by the aggregates
//!   in `domain::alert` and `domain::label`;
//! - `raised`: how an alert is known to exist (ADR 0003);
//! - `erasure`: erasing a customer's personal data (crypto-shredding);
//! - `error`: what a command can fail with.
//!
//! Nothing here knows HTTP: outcomes and refusals are returned as values,
//! and `crate::http` turns them into answers and problems.

pub mod alerts;
pub mod erasure;
pub mod error;
pub mod events;
pub mod labels;
pub mod pipeline;
pub mod raised;

pub use error::{CommandError, StoreFailure};
