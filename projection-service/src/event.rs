//! The event a projector is given: one entry of the log, decoded into
//! today's types. Its own file so that `projector` (which names a
//! projector's `Fold`) and `fold` (which folds these) need not import each
//! other.

use chrono::{DateTime, Utc};
use domain::DomainEvent;
use event_store::Position;
use uuid::Uuid;

/// One event from the log, decoded into today's types.
#[derive(Debug, Clone)]
pub struct ProjectedEvent {
    pub position: Position,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_time: DateTime<Utc>,
    pub recorded_time: DateTime<Utc>,
    pub event: DomainEvent,
}
