//! Between domain events and the log: the one conversion of a
//! [`DomainEvent`] to a [`NewEvent`] (payload written straight to JSON
//! text, no JSON tree per event: the ingest's hot path goes through it),
//! and reading a stream back, skipping what cannot be read.

use chrono::{DateTime, Utc};
use domain::DomainEvent;
use event_store::{
    EventMetadata, EventStore, NewEvent, Payload, RecordedEvent, StoreError, StreamVersion,
};

/// Events per read when a stream is read whole.
const STREAM_PAGE: usize = 1000;

/// `event` as appended: its type, schema version and payload, with the
/// given event time and metadata, and a fresh UUID v7 id (`with_id` sets a
/// decided one).
pub fn new_event(
    event: &DomainEvent,
    event_time: DateTime<Utc>,
    metadata: EventMetadata,
) -> Result<NewEvent, serde_json::Error> {
    let payload = Payload::from_json(event.to_json()?)?;
    Ok(NewEvent::with_payload(
        event.event_type(),
        event.schema_version(),
        event_time,
        payload,
    )
    .with_metadata(metadata))
}

/// The stored event as a domain event, or `None` (logged) if it cannot be
/// read: one unreadable event must not lock a customer or an alert out; it
/// is reported, and the projection side dead-letters it.
pub fn decode(event: &RecordedEvent) -> Option<DomainEvent> {
    match DomainEvent::from_json(
        &event.event_type,
        event.schema_version,
        event.payload.as_str(),
    ) {
        Ok(e) => Some(e),
        Err(error) => {
            tracing::error!(stream = %event.stream_id, position = event.position.0, %error, "skipping an unreadable event");
            None
        }
    }
}

/// The readable events of a stream from `from` on, each with its event
/// time, and the stream's last version (`None` if there was nothing from
/// there).
pub async fn read_from(
    store: &dyn EventStore,
    stream: &str,
    mut from: StreamVersion,
) -> Result<(Vec<(DomainEvent, DateTime<Utc>)>, Option<StreamVersion>), StoreError> {
    let (mut events, mut version) = (Vec::new(), None);
    loop {
        let page = store.read_stream(stream, from, STREAM_PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        version = Some(last.stream_version);
        events.extend(
            page.iter()
                .filter_map(|e| decode(e).map(|decoded| (decoded, e.event_time))),
        );
        // A short page is the end (the store's contract): no second round
        // trip to learn that.
        if page.len() < STREAM_PAGE {
            break;
        }
    }
    Ok((events, version))
}
