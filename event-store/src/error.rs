//! Typed errors of the event log.

use crate::model::{ExpectedVersion, StreamVersion};
use uuid::Uuid;

/// Why one stream's append was refused. Nothing of that append was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Optimistic concurrency: the stream is not where the caller expected.
    #[error("stream {stream_id}: expected {expected:?}, but its version is {actual:?}")]
    WrongExpectedVersion {
        stream_id: String,
        expected: ExpectedVersion,
        /// `None` when the stream does not exist.
        actual: Option<StreamVersion>,
    },
    /// An event with this id is stored already, with different content
    /// (another stream, type, schema version or payload).
    #[error("event {event_id} is already stored with different content")]
    EventIdConflict { event_id: Uuid },
    /// Some events of the append are stored already and some are not: it is
    /// neither a retry of an earlier append nor a new one.
    #[error("append to {stream_id} repeats some stored events but not all")]
    PartialDuplicate { stream_id: String },
    /// An append must carry at least one event, with distinct ids.
    #[error("invalid append: {0}")]
    Invalid(String),
    /// The store itself failed; the append may be retried (it is idempotent).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A failure of the store itself (connection, database, backend).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached right now: connection refused or
    /// lost, no pooled connection within the acquire timeout, or the server
    /// shutting down or starting up. Nothing was done; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("the event store is shutting down")]
    Closed,
    #[error("stored event could not be decoded at position {position}: {message}")]
    Decode { position: u64, message: String },
    #[error("backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether the database was unreachable (as opposed to refusing this
    /// particular request): the writer then fails a whole group commit at
    /// once instead of retrying its appends one by one.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if connection_lost(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e.to_string())
        }
    }
}

/// Errors that say the server is away rather than that a statement failed:
/// I/O and TLS failures, the pool's timeout, SQLSTATE class 08 (connection
/// exception) and 57P01-57P03 (admin or crash shutdown, cannot connect now).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}
