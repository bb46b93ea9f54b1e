//! The event envelope and the arguments and answers of an append.

use crate::payload::Payload;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A place in the global log. Positions grow with commit order; `Position(0)`
/// means "before the first event", so `read_all(Position::START, ..)` reads everything.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position(pub u64);

impl Position {
    pub const START: Position = Position(0);
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The version of one event inside its stream; the first event is version 0.
pub type StreamVersion = u64;

/// What the caller believes the stream looks like before the append
/// (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(StreamVersion),
}

/// Who caused an event and which trace it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Shared by every event that one outside request caused.
    pub correlation_id: Option<Uuid>,
    /// The event (or command) that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// W3C trace context of the request that caused the event.
    pub traceparent: Option<String>,
}

/// An event to append. `event_id` is the idempotency key and should be a
/// UUID v7 ([`NewEvent::new`] makes one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    /// When it happened in the world (not when it was recorded).
    pub event_time: DateTime<Utc>,
    pub payload: Payload,
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// An event with a fresh UUID v7 id and empty metadata.
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u32,
        event_time: DateTime<Utc>,
        payload: serde_json::Value,
    ) -> Self {
        Self::with_payload(
            event_type,
            schema_version,
            event_time,
            Payload::from_value(&payload),
        )
    }

    /// An event whose payload is already JSON text: the command side writes
    /// its events straight to text, without a JSON tree per event.
    pub fn with_payload(
        event_type: impl Into<String>,
        schema_version: u32,
        event_time: DateTime<Utc>,
        payload: Payload,
    ) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            event_time,
            payload,
            metadata: EventMetadata::default(),
        }
    }

    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Whether `stored` is this same event already in the log (for idempotent
    /// appends). Metadata is left out on purpose: a client's retry carries a
    /// new trace, but it is still the same event.
    pub(crate) fn same_content_as(&self, stream_id: &str, stored: &StoredIdentity) -> bool {
        stored.stream_id == stream_id
            && stored.event_type == self.event_type
            && stored.schema_version == self.schema_version
            && stored.payload.same_json(&self.payload)
    }
}

/// What identifies a stored event's content, for the idempotency check.
#[derive(Debug, Clone)]
pub(crate) struct StoredIdentity {
    pub stream_id: String,
    pub stream_version: StreamVersion,
    pub position: Position,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Payload,
}

/// An event as read back from the log, after upcasting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: StreamVersion,
    pub position: Position,
    pub event_type: String,
    /// The schema version of `payload` as delivered (after upcasting).
    pub schema_version: u32,
    /// The schema version the event was written with.
    pub stored_schema_version: u32,
    pub event_time: DateTime<Utc>,
    pub recorded_time: DateTime<Utc>,
    /// The JSON payload as stored (after upcasting); `payload.parse::<T>()`.
    pub payload: Payload,
    pub metadata: EventMetadata,
    /// Set when an upcaster failed on this event: `payload` is then the stored
    /// payload untouched, and a reader decides what to do (a projector
    /// dead-letters it). One bad event never stops a read.
    pub upcast_error: Option<String>,
}

/// One stream's part of a batched append.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl AppendRequest {
    /// The rules every backend checks before writing: a stream id, at least
    /// one event, distinct event ids, a type and a schema version >= 1.
    pub(crate) fn validate(&self) -> Result<(), crate::AppendError> {
        use crate::AppendError::Invalid;
        if self.stream_id.is_empty() {
            return Err(Invalid("stream id is empty".into()));
        }
        if self.events.is_empty() {
            return Err(Invalid(format!(
                "append to {} carries no events",
                self.stream_id
            )));
        }
        let mut ids = std::collections::HashSet::with_capacity(self.events.len());
        for event in &self.events {
            if !ids.insert(event.event_id) {
                return Err(Invalid(format!(
                    "event id {} appears twice in one append",
                    event.event_id
                )));
            }
            if event.schema_version == 0 || event.event_type.is_empty() {
                return Err(Invalid(format!(
                    "event {} needs a type and a schema version >= 1",
                    event.event_id
                )));
            }
        }
        Ok(())
    }

    pub fn new(
        stream_id: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        AppendRequest {
            stream_id: stream_id.into(),
            expected,
            events,
        }
    }
}

/// The answer to a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The global position of each event, in the order given.
    pub positions: Vec<Position>,
    /// The stream version of the last event of this append.
    pub last_version: StreamVersion,
    /// True when every event was already stored and nothing new was written.
    pub duplicate: bool,
}
