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
//! - `raised`: how an alert is known to exist (ADR 0003).
//!
//! Nothing here knows HTTP: outcomes and refusals are returned as values,
//! and `crate::http` turns them into answers and problems.

pub mod alerts;
pub mod events;
pub mod labels;
pub mod pipeline;
pub mod raised;

use std::convert::Infallible;

/// Why a command on an alert or a label was not carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError<R> {
    /// The aggregate refused it (a conflict, an unknown alert).
    Refused(R),
    /// The event store failed, or other writers kept changing the stream;
    /// the text is for the logs.
    Store(String),
    /// This replica is still reading the log after a start (see `raised`).
    CatchingUp,
}

impl CommandError<Infallible> {
    /// The same failure, as the error of a command that can be refused.
    pub fn widen<R>(self) -> CommandError<R> {
        match self {
            CommandError::Refused(never) => match never {},
            CommandError::Store(detail) => CommandError::Store(detail),
            CommandError::CatchingUp => CommandError::CatchingUp,
        }
    }
}

impl<R> From<pipeline::StoreFailure> for CommandError<R> {
    fn from(failure: pipeline::StoreFailure) -> Self {
        CommandError::Store(failure.0)
    }
}
