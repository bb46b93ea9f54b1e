//! What a command can fail with: the pipeline's `StoreFailure`, and the
//! alert and label commands' `CommandError` (refused, store, catching up).

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

impl<R> From<StoreFailure> for CommandError<R> {
    fn from(failure: StoreFailure) -> Self {
        CommandError::Store(failure.0)
    }
}

/// The store failed, or other writers kept changing the stream; the text
/// is for the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFailure(pub String);
