//! One stream's append on KurrentDB: validation, the idempotency pre-check,
//! the optimistic-concurrency append itself, and reading back the positions
//! the new events got.
//!
//! Idempotency: KurrentDB only deduplicates a retry that comes with the same
//! expected revision, and only within one stream; our contract is stricter
//! (see [`crate::EventStore`]). So before writing, we read the part of the
//! stream where a retry of this append would have landed and compare event
//! ids:
//! - `Exact(v)`: from revision v + 1 on;
//! - `NoStream`: from the start;
//! - `Any`: the newest events, backwards.
//!
//! The window is [`super::IDEMPOTENCY_WINDOW`] events (or the size of the append, if
//! larger). All events found with the same content: the original answer,
//! nothing written. An id found with other content: `EventIdConflict`. Some
//! found, some not: `PartialDuplicate`. None found: append.
//!
//! Limits of this check, inherent to KurrentDB (no global event-id index):
//! an id stored in *another* stream is not seen (PostgreSQL reports it as an
//! `EventIdConflict`); an `Any` retry after more than the window's worth of
//! newer events in the stream is not seen and is written again; and two
//! *concurrent* first attempts of the same `Any` append may both pass the
//! check (with `Exact`/`NoStream` the server's revision check lets only one
//! win, and the server itself deduplicates an identical same-revision retry).

use super::envelope;
use crate::error::{AppendError, StoreError};
use crate::model::{AppendOutcome, AppendRequest, ExpectedVersion, StoredIdentity};
use kurrentdb::{
    AppendToStreamOptions, Client, CurrentRevision, ReadStreamOptions, StreamPosition, StreamState,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Why one request failed, with what `append_batch` needs to know about it.
#[derive(Debug)]
pub(super) struct AppendFailure {
    pub error: AppendError,
    /// No KurrentDB node could be reached: nothing of this request was sent.
    pub unreachable: bool,
    /// The request may have been written even so (the append call failed
    /// without a clear answer, or it succeeded and reading back failed).
    pub maybe_written: bool,
}

impl AppendFailure {
    /// A refusal: nothing of this request was written.
    fn refused(error: AppendError) -> Self {
        AppendFailure {
            error,
            unreachable: false,
            maybe_written: false,
        }
    }

    /// The store failed before this request's append was sent.
    fn before_write(context: &str, error: kurrentdb::Error) -> Self {
        AppendFailure {
            unreachable: super::is_unreachable(&error),
            error: AppendError::Store(super::backend_error(context, &error)),
            maybe_written: false,
        }
    }
}

/// Appends one request, atomically (KurrentDB writes one append's events as
/// one transaction) and idempotently.
pub(super) async fn append_one(
    client: &Client,
    request: &AppendRequest,
) -> Result<AppendOutcome, AppendFailure> {
    validate(request).map_err(AppendFailure::refused)?;
    let stored = stored_events(client, request).await?;
    if let Some(outcome) = replay_outcome(request, &stored).map_err(AppendFailure::refused)? {
        return Ok(outcome);
    }

    let events = request
        .events
        .iter()
        .map(|e| {
            envelope::encode(e).map_err(|err| {
                AppendFailure::refused(AppendError::Invalid(format!(
                    "event {} cannot be encoded: {err}",
                    e.event_id
                )))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = AppendToStreamOptions::default().stream_state(stream_state(request.expected));
    match client
        .append_to_stream(request.stream_id.as_str(), &options, events)
        .await
    {
        Ok(written) => read_back(client, request, written.next_expected_version)
            .await
            .map_err(|error| AppendFailure {
                error: AppendError::Store(error),
                unreachable: false,
                maybe_written: true,
            }),
        Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
            Err(AppendFailure::refused(AppendError::WrongExpectedVersion {
                stream_id: request.stream_id.clone(),
                expected: request.expected,
                actual: match current {
                    CurrentRevision::Current(v) => Some(v),
                    CurrentRevision::NoStream => None,
                },
            }))
        }
        Err(error) if super::is_unreachable(&error) => {
            Err(AppendFailure::before_write("append", error))
        }
        Err(error) => Err(AppendFailure {
            error: AppendError::Store(super::backend_error("append", &error)),
            unreachable: false,
            maybe_written: true,
        }),
    }
}

fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream => StreamState::NoStream,
        ExpectedVersion::Exact(v) => StreamState::StreamRevision(v),
    }
}

/// The same rules as the PostgreSQL backend, plus KurrentDB's reserved `$`
/// prefix: a `$` stream or event type is a system one, and every read path
/// of this backend skips system events, so it would be written and never read.
fn validate(request: &AppendRequest) -> Result<(), AppendError> {
    request.validate()?;
    if request.stream_id.starts_with('$') {
        return Err(AppendError::Invalid(format!(
            "stream id {} is reserved: `$` streams are KurrentDB system streams",
            request.stream_id
        )));
    }
    if let Some(event) = request
        .events
        .iter()
        .find(|e| e.event_type.starts_with('$'))
    {
        return Err(AppendError::Invalid(format!(
            "event {} has type {}: `$` types are KurrentDB system events",
            event.event_id, event.event_type
        )));
    }
    Ok(())
}

/// The events of this request already in the stream, within the pre-check
/// window (see the module docs), by id.
async fn stored_events(
    client: &Client,
    request: &AppendRequest,
) -> Result<HashMap<Uuid, StoredIdentity>, AppendFailure> {
    let window = super::IDEMPOTENCY_WINDOW.max(request.events.len());
    let options = match request.expected {
        ExpectedVersion::Exact(v) => ReadStreamOptions::default()
            .position(StreamPosition::Position(v.saturating_add(1)))
            .forwards(),
        ExpectedVersion::NoStream => ReadStreamOptions::default().position(StreamPosition::Start),
        ExpectedVersion::Any => ReadStreamOptions::default().position(StreamPosition::End),
    }
    .max_count(window);
    let wanted: HashSet<Uuid> = request.events.iter().map(|e| e.event_id).collect();
    let mut found = HashMap::new();

    let mut stream = match client
        .read_stream(request.stream_id.as_str(), &options)
        .await
    {
        Ok(stream) => stream,
        Err(kurrentdb::Error::ResourceNotFound | kurrentdb::Error::ResourceDeleted) => {
            return Ok(found);
        }
        Err(error) => return Err(AppendFailure::before_write("idempotency check", error)),
    };
    loop {
        match stream.next().await {
            Ok(Some(resolved)) => {
                if let Some(event) = envelope::original(&resolved)
                    && wanted.contains(&event.id)
                {
                    found.insert(event.id, envelope::identity(event));
                }
            }
            Ok(None)
            | Err(kurrentdb::Error::ResourceNotFound | kurrentdb::Error::ResourceDeleted) => {
                return Ok(found);
            }
            Err(error) => return Err(AppendFailure::before_write("idempotency check", error)),
        }
    }
}

/// The answer for an append whose events are all stored already, or why it
/// is refused; `None` when none of them is stored. Pure: no I/O.
fn replay_outcome(
    request: &AppendRequest,
    stored: &HashMap<Uuid, StoredIdentity>,
) -> Result<Option<AppendOutcome>, AppendError> {
    let mut seen: Vec<Option<&StoredIdentity>> = Vec::with_capacity(request.events.len());
    for event in &request.events {
        match stored.get(&event.event_id) {
            Some(s) if event.same_content_as(&request.stream_id, s) => seen.push(Some(s)),
            Some(_) => {
                return Err(AppendError::EventIdConflict {
                    event_id: event.event_id,
                });
            }
            None => seen.push(None),
        }
    }
    if seen.iter().all(Option::is_some) {
        let found: Vec<&StoredIdentity> = seen.into_iter().flatten().collect();
        return Ok(Some(AppendOutcome {
            positions: found.iter().map(|s| s.position).collect(),
            last_version: found.iter().map(|s| s.stream_version).max().unwrap_or(0),
            duplicate: true,
        }));
    }
    if seen.iter().any(Option::is_some) {
        return Err(AppendError::PartialDuplicate {
            stream_id: request.stream_id.clone(),
        });
    }
    Ok(None)
}

/// The positions of the events just appended. KurrentDB answers an append
/// with the revision of its last event and one position for the whole
/// write, so each event's own position is read back from the stream: the
/// append's events are the `n` revisions ending at `last_revision`.
async fn read_back(
    client: &Client,
    request: &AppendRequest,
    last_revision: u64,
) -> Result<AppendOutcome, StoreError> {
    let n = request.events.len();
    let first = last_revision.saturating_sub(n.saturating_sub(1) as u64);
    let options = ReadStreamOptions::default()
        .position(StreamPosition::Position(first))
        .forwards()
        .max_count(n);
    let mut stream = client
        .read_stream(request.stream_id.as_str(), &options)
        .await
        .map_err(|e| super::backend_error("reading back an append", &e))?;
    let mut written = HashMap::with_capacity(n);
    while let Some(resolved) = stream
        .next()
        .await
        .map_err(|e| super::backend_error("reading back an append", &e))?
    {
        if let Some(event) = envelope::original(&resolved) {
            let position =
                envelope::position_of(event).ok_or_else(|| envelope::no_position(event))?;
            written.insert(event.id, (event.revision, position));
        }
    }

    let mut positions = Vec::with_capacity(n);
    let mut last_version = 0;
    for event in &request.events {
        let (revision, position) = written.get(&event.event_id).copied().ok_or_else(|| {
            StoreError::Backend(format!(
                "event {} was appended to {} but is not at revisions {first}..={last_revision}",
                event.event_id, request.stream_id
            ))
        })?;
        positions.push(position);
        last_version = last_version.max(revision);
    }
    Ok(AppendOutcome {
        positions,
        last_version,
        duplicate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewEvent, Position};
    use chrono::Utc;
    use serde_json::json;

    fn event(n: u64) -> NewEvent {
        NewEvent::new("TestHappened", 1, Utc::now(), json!({ "n": n }))
    }

    fn stored(stream: &str, e: &NewEvent, version: u64, position: u64) -> (Uuid, StoredIdentity) {
        (
            e.event_id,
            StoredIdentity {
                stream_id: stream.into(),
                stream_version: version,
                position: Position(position),
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                payload: e.payload.clone(),
            },
        )
    }

    #[test]
    fn all_stored_is_the_original_answer() {
        let (a, b) = (event(0), event(1));
        let request = AppendRequest::new("s", ExpectedVersion::Any, vec![a.clone(), b.clone()]);
        let found = HashMap::from([stored("s", &a, 4, 100), stored("s", &b, 5, 180)]);
        let outcome = replay_outcome(&request, &found)
            .expect("not refused")
            .expect("duplicate");
        assert_eq!(outcome.positions, vec![Position(100), Position(180)]);
        assert_eq!(outcome.last_version, 5);
        assert!(outcome.duplicate);
    }

    #[test]
    fn other_content_partial_and_new() {
        let (a, b) = (event(0), event(1));
        let mut changed = a.clone();
        changed.payload = crate::Payload::from_value(&json!({ "n": 999 }));
        let found = HashMap::from([stored("s", &a, 0, 100)]);

        let request = AppendRequest::new("s", ExpectedVersion::Any, vec![changed]);
        assert!(matches!(
            replay_outcome(&request, &found),
            Err(AppendError::EventIdConflict { event_id }) if event_id == a.event_id
        ));
        let request = AppendRequest::new("s", ExpectedVersion::Any, vec![a.clone(), b.clone()]);
        assert!(matches!(
            replay_outcome(&request, &found),
            Err(AppendError::PartialDuplicate { .. })
        ));
        let request = AppendRequest::new("s", ExpectedVersion::Any, vec![b]);
        assert!(matches!(replay_outcome(&request, &found), Ok(None)));
    }

    #[test]
    fn system_names_are_refused() {
        let request = AppendRequest::new("$ce-customer", ExpectedVersion::Any, vec![event(0)]);
        assert!(matches!(validate(&request), Err(AppendError::Invalid(_))));
        let mut e = event(0);
        e.event_type = "$metadata".into();
        let request = AppendRequest::new("customer-1", ExpectedVersion::Any, vec![e]);
        assert!(matches!(validate(&request), Err(AppendError::Invalid(_))));
        let request = AppendRequest::new("customer-1", ExpectedVersion::Any, vec![event(0)]);
        assert!(validate(&request).is_ok());
    }
}
