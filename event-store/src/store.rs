//! The one contract every event-store backend honours. The shared contract
//! test suite (`event-store/tests/contract/`) runs it against each backend.

use crate::error::{AppendError, StoreError};
use crate::model::{
    AppendOutcome, AppendRequest, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamVersion,
};
use crate::postgres::keys::KeyRing;
use futures_util::stream::BoxStream;
use std::sync::Arc;

/// A live, resumable feed of the global log: every event after the starting
/// position, in position order, then new events as they commit. It wakes on
/// commits (no fixed-interval polling) and ends only when dropped or on an
/// error it cannot recover from.
pub type EventSubscription = BoxStream<'static, Result<RecordedEvent, StoreError>>;

/// The event log.
///
/// Guarantees, on every backend:
/// - an append is atomic: all its events or none;
/// - optimistic concurrency through [`ExpectedVersion`];
/// - idempotent by event id: appending events that are all stored already
///   (same stream, type, schema version and payload) returns their original
///   positions and writes nothing; a stored id with other content is
///   [`AppendError::EventIdConflict`];
/// - gap-safe global order: once a reader has seen position P, no event
///   committed later has a position below P;
/// - every read path returns upcast events (today's schema versions).
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to one stream, atomically, returning their positions.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        let request = AppendRequest::new(stream_id, expected, events);
        let mut results = self.append_batch(vec![request]).await?;
        results.pop().unwrap_or_else(|| {
            Err(AppendError::Store(StoreError::Backend(
                "append_batch returned no result".into(),
            )))
        })
    }

    /// Appends to many streams in one database transaction (the command
    /// side's group commit). Each request is checked on its own: one request's
    /// version conflict fails only that request, and its result says why.
    /// An `Err` of the whole call means nothing was written.
    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Result<AppendOutcome, AppendError>>, StoreError>;

    /// Up to `limit` events of one stream, from `from_version` on. Fewer
    /// than `limit` means the stream had no more when it was read.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Several streams in one call (the command side fills its customer
    /// cache for many customers at once): for each `(stream, from_version)`,
    /// in the order given, what `read_stream(stream, from_version,
    /// limit_per_stream)` would return. A stream that does not exist gives
    /// an empty list; a stream named twice is answered twice. Backends
    /// without a native multi-stream read keep this default: one
    /// `read_stream` after another.
    async fn read_streams(
        &self,
        streams: &[(&str, StreamVersion)],
        limit_per_stream: usize,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        let mut answers = Vec::with_capacity(streams.len());
        for (stream_id, from_version) in streams {
            answers.push(
                self.read_stream(stream_id, *from_version, limit_per_stream)
                    .await?,
            );
        }
        Ok(answers)
    }

    /// Up to `limit` events of the global log with a position above `after`.
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the newest committed event (`Position::START` when empty).
    async fn head_position(&self) -> Result<Position, StoreError>;

    /// Every event after `after`, then live events as they commit.
    async fn subscribe_all(&self, after: Position) -> Result<EventSubscription, StoreError>;

    /// The data keys of crypto-shredding (docs/trust.md). They live in
    /// PostgreSQL beside the log; a backend without them says so, and a
    /// service built on it must be given a [`KeyRing`] of its own.
    fn key_ring(&self) -> Result<Arc<KeyRing>, StoreError> {
        Err(StoreError::Backend(
            "this event store keeps no data keys: give the service a PostgreSQL key ring".into(),
        ))
    }
}
