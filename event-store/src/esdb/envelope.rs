//! The envelope on KurrentDB: how a [`NewEvent`] becomes a KurrentDB event,
//! how a KurrentDB event becomes a [`RecordedEvent`], and how our global
//! [`Position`] maps onto KurrentDB's `$all` positions.
//!
//! Layout of one event:
//! - KurrentDB event id = our event id; event type = our event type;
//! - data = the JSON payload (content type `application/json`);
//! - custom metadata = a JSON object with `schema_version`, `event_time`
//!   (RFC 3339, nanosecond precision), `traceparent`, and the correlation and
//!   causation ids under KurrentDB's own conventional keys `$correlationId` and
//!   `$causationId` (so the server's `$by_correlation_id` projection works);
//! - stream version = the event's stream revision; recorded time = the
//!   server's `created` timestamp (100 ns ticks, parsed here at full precision:
//!   the client's own `created` field is truncated to whole seconds).
//!
//! Position: our `Position(p)` is the event's own log position in the
//! transaction file, i.e. its *prepare* position. Every append through the
//! gRPC API is an implicit, self-committed transaction: each event is one
//! prepare record flagged "committed", and the server reports such an event
//! at `$all` position (commit = prepare = its log position). So `p` is unique
//! per event, strictly increasing in `$all` order (also across several events
//! of one append, unlike the commit position of the append, which the server
//! reports once for the whole write), and we turn it back into a KurrentDB
//! position as `{ commit: p, prepare: p }`, which is exactly that event's
//! `$all` position. Stream reads report the same prepare position (older
//! servers send commit = u64::MAX there, prepare is still the log position),
//! so every read path agrees. Events written by legacy explicit transactions
//! (the old TCP API) have commit != prepare; this backend does not support
//! logs containing them. Position 0 means "before everything" (`$all` start):
//! the first record of a transaction file is never a user event.

use crate::error::StoreError;
use crate::model::{EventMetadata, NewEvent, Position, RecordedEvent, StoredIdentity};
use crate::payload::Payload;
use chrono::{DateTime, Utc};
use kurrentdb::{EventData, ResolvedEvent, StreamPosition, SubscriptionFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// KurrentDB's `created` metadata: 100 ns ticks since the Unix epoch.
const TICKS_PER_SECOND: i64 = 10_000_000;

/// Our part of an event's custom metadata. Every field is optional on read,
/// so an event written by another application still decodes (as schema
/// version 1, happened when recorded, no trace).
#[derive(Debug, Default, Serialize, Deserialize)]
struct CustomMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_time: Option<DateTime<Utc>>,
    #[serde(
        rename = "$correlationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    correlation_id: Option<Uuid>,
    #[serde(
        rename = "$causationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

/// The KurrentDB event to append for `event`.
pub(super) fn encode(event: &NewEvent) -> Result<EventData, serde_json::Error> {
    EventData::json(&event.event_type, &event.payload)?
        .id(event.event_id)
        .metadata_as_json(&metadata_of(event))
}

fn metadata_of(event: &NewEvent) -> CustomMetadata {
    CustomMetadata {
        schema_version: Some(event.schema_version),
        event_time: Some(event.event_time),
        correlation_id: event.metadata.correlation_id,
        causation_id: event.metadata.causation_id,
        traceparent: event.metadata.traceparent.clone(),
    }
}

/// Lenient on purpose: metadata we cannot read is treated as absent.
fn parse_metadata(bytes: &[u8]) -> CustomMetadata {
    if bytes.is_empty() {
        return CustomMetadata::default();
    }
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// The event a read or subscription delivered (the link itself for a link
/// event: we never resolve links, and link events are system events).
pub(super) fn original(resolved: &ResolvedEvent) -> Option<&kurrentdb::RecordedEvent> {
    resolved.link.as_ref().or(resolved.event.as_ref())
}

/// The event's global position (see the module docs), if the server said.
pub(super) fn position_of(event: &kurrentdb::RecordedEvent) -> Option<Position> {
    let p = event.position;
    if p.prepare != u64::MAX {
        Some(Position(p.prepare))
    } else if p.commit != u64::MAX {
        Some(Position(p.commit))
    } else {
        None
    }
}

/// The error for an event whose position the server did not report.
pub(super) fn no_position(event: &kurrentdb::RecordedEvent) -> StoreError {
    StoreError::Decode {
        position: 0,
        message: format!(
            "KurrentDB reported no log position for event {} of {}",
            event.id,
            event.stream_id()
        ),
    }
}

/// The KurrentDB `$all` position of our position `p` (see the module docs).
pub(super) fn log_position(p: Position) -> kurrentdb::Position {
    kurrentdb::Position {
        commit: p.0,
        prepare: p.0,
    }
}

/// Where a forward read or subscription of `$all` "after `p`" starts. Reads
/// include the event at the start position (callers skip it); subscriptions
/// exclude it.
pub(super) fn all_from(p: Position) -> StreamPosition<kurrentdb::Position> {
    if p == Position::START {
        StreamPosition::Start
    } else {
        StreamPosition::Position(log_position(p))
    }
}

/// KurrentDB's own events (`$`-prefixed types, such as `$metadata`, `$>`
/// links, `$statsCollected`) and anything in a `$`-prefixed stream: never
/// part of our log.
pub(super) fn is_system(event: &kurrentdb::RecordedEvent) -> bool {
    event.event_type.starts_with('$') || event.stream_id().starts_with('$')
}

/// A server-side `$all` filter dropping `$`-prefixed event types. Readers
/// still check [`is_system`] on what arrives.
pub(super) fn user_events_only() -> SubscriptionFilter {
    SubscriptionFilter::on_event_type().exclude_system_events()
}

/// Decodes a KurrentDB event into our envelope (not yet upcast).
pub(super) fn decode(event: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, StoreError> {
    let position = position_of(event).ok_or_else(|| no_position(event))?;
    let payload = std::str::from_utf8(&event.data)
        .map_err(|e| e.to_string())
        .and_then(|text| Payload::from_json(text).map_err(|e| e.to_string()))
        .map_err(|e| StoreError::Decode {
            position: position.0,
            message: format!("payload of event {} is not JSON: {e}", event.id),
        })?;
    let metadata = parse_metadata(&event.custom_metadata);
    let recorded_time = recorded_time(event);
    let schema_version = metadata.schema_version.unwrap_or(1);
    Ok(RecordedEvent {
        event_id: event.id,
        stream_id: event.stream_id().to_owned(),
        stream_version: event.revision,
        position,
        event_type: event.event_type.clone(),
        schema_version,
        stored_schema_version: schema_version,
        event_time: metadata.event_time.unwrap_or(recorded_time),
        recorded_time,
        payload,
        metadata: EventMetadata {
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            traceparent: metadata.traceparent,
        },
        upcast_error: None,
    })
}

/// What the idempotency check compares. An event we cannot decode gets an
/// identity no append can match (schema version 0 is never valid), so
/// reusing its id is an [`crate::AppendError::EventIdConflict`].
pub(super) fn identity(event: &kurrentdb::RecordedEvent) -> StoredIdentity {
    match decode(event) {
        Ok(e) => StoredIdentity {
            stream_id: e.stream_id,
            stream_version: e.stream_version,
            position: e.position,
            event_type: e.event_type,
            schema_version: e.stored_schema_version,
            payload: e.payload,
        },
        Err(_) => StoredIdentity {
            stream_id: event.stream_id().to_owned(),
            stream_version: event.revision,
            position: position_of(event).unwrap_or_default(),
            event_type: event.event_type.clone(),
            schema_version: 0,
            payload: Payload::from_value(&serde_json::Value::Null),
        },
    }
}

/// The server's `created` timestamp at full precision, falling back to the
/// client's (whole seconds) when the raw ticks are missing.
fn recorded_time(event: &kurrentdb::RecordedEvent) -> DateTime<Utc> {
    event
        .metadata
        .get("created")
        .and_then(|ticks| time_of_ticks(ticks))
        .unwrap_or(event.created)
}

fn time_of_ticks(ticks: &str) -> Option<DateTime<Utc>> {
    let ticks = ticks.parse::<i64>().ok()?;
    let secs = ticks.div_euclid(TICKS_PER_SECOND);
    let nanos = ticks.rem_euclid(TICKS_PER_SECOND) * 100;
    DateTime::from_timestamp(secs, u32::try_from(nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_round_trips_under_kurrentdb_keys() {
        let event_time = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("time");
        let event = NewEvent::new("TestHappened", 3, event_time, json!({"n": 1})).with_metadata(
            EventMetadata {
                correlation_id: Some(Uuid::now_v7()),
                causation_id: Some(Uuid::now_v7()),
                traceparent: Some("00-abc-def-01".into()),
            },
        );
        let bytes = serde_json::to_vec(&metadata_of(&event)).expect("encode");
        let raw: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let keys: Vec<&str> = raw
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "schema_version",
            "event_time",
            "$correlationId",
            "$causationId",
            "traceparent",
        ] {
            assert!(keys.contains(&key), "{key} in {raw}");
        }
        let back = parse_metadata(&bytes);
        assert_eq!(back.schema_version, Some(3));
        assert_eq!(back.event_time, Some(event_time), "nanoseconds survive");
        assert_eq!(back.correlation_id, event.metadata.correlation_id);
        assert_eq!(back.causation_id, event.metadata.causation_id);
        assert_eq!(back.traceparent, event.metadata.traceparent);
    }

    #[test]
    fn foreign_metadata_reads_as_absent() {
        for bytes in [
            &b""[..],
            b"not json",
            b"[1,2]",
            b"{\"schema_version\":\"x\"}",
        ] {
            let m = parse_metadata(bytes);
            assert!(m.schema_version.is_none() && m.event_time.is_none());
        }
        let m = parse_metadata(br#"{"$correlationId":"0190a0a0-0000-7000-8000-000000000001"}"#);
        assert!(m.correlation_id.is_some() && m.schema_version.is_none());
    }

    #[test]
    fn created_ticks_keep_sub_second_precision() {
        let t = time_of_ticks("17000000001234567").expect("ticks");
        assert_eq!(t.timestamp(), 1_700_000_000);
        assert_eq!(t.timestamp_subsec_nanos(), 123_456_700);
        assert!(time_of_ticks("soon").is_none());
    }

    #[test]
    fn positions_map_to_self_committed_log_positions() {
        assert_eq!(
            log_position(Position(4242)),
            kurrentdb::Position {
                commit: 4242,
                prepare: 4242
            }
        );
        assert_eq!(all_from(Position::START), StreamPosition::Start);
        assert_eq!(
            all_from(Position(7)),
            StreamPosition::Position(log_position(Position(7)))
        );
    }
}
