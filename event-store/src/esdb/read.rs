//! Reads on KurrentDB: one stream, the global log (`$all`, without system
//! events) and its head. Every event read passes through the upcasters.

use super::envelope;
use crate::error::StoreError;
use crate::model::{Position, RecordedEvent, StreamVersion};
use crate::upcast::Upcasters;
use kurrentdb::{Client, ReadAllOptions, ReadStreamOptions, StreamPosition};

pub(super) async fn read_stream(
    client: &Client,
    upcasters: &Upcasters,
    stream_id: &str,
    from_version: StreamVersion,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let options = ReadStreamOptions::default()
        .position(StreamPosition::Position(from_version))
        .forwards()
        .max_count(limit);
    let mut stream = match client.read_stream(stream_id, &options).await {
        Ok(stream) => stream,
        // A stream that does not exist (or was deleted) has no events.
        Err(kurrentdb::Error::ResourceNotFound | kurrentdb::Error::ResourceDeleted) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(super::backend_error("read_stream", &e)),
    };
    let mut events = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(resolved)) => {
                if let Some(event) = envelope::original(&resolved) {
                    events.push(upcasters.apply(envelope::decode(event)?));
                }
            }
            Ok(None)
            | Err(kurrentdb::Error::ResourceNotFound | kurrentdb::Error::ResourceDeleted) => {
                return Ok(events);
            }
            Err(e) => return Err(super::backend_error("read_stream", &e)),
        }
    }
}

/// Up to `limit` non-system events of `$all` after `after`. A forward read
/// of `$all` from a position includes the event at that position, so it is
/// skipped here; so is any system event the server-side filter let through.
/// Pages until `limit` events are found or `$all` ends, so a short answer
/// always means "caught up".
pub(super) async fn read_all(
    client: &Client,
    upcasters: &Upcasters,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::with_capacity(limit.min(4096));
    let mut cursor = after;
    while events.len() < limit {
        // One more than needed: the first event may be the one at `cursor`.
        let request = (limit - events.len()).saturating_add(1);
        let options = ReadAllOptions::default()
            .position(envelope::all_from(cursor))
            .forwards()
            .filter(envelope::user_events_only())
            .max_count(request);
        let mut page = client
            .read_all(&options)
            .await
            .map_err(|e| super::backend_error("read_all", &e))?;
        let mut received = 0;
        while let Some(resolved) = page
            .next()
            .await
            .map_err(|e| super::backend_error("read_all", &e))?
        {
            received += 1;
            let Some(event) = envelope::original(&resolved) else {
                continue;
            };
            let position =
                envelope::position_of(event).ok_or_else(|| envelope::no_position(event))?;
            if position <= cursor {
                continue;
            }
            cursor = position;
            if envelope::is_system(event) {
                continue;
            }
            events.push(upcasters.apply(envelope::decode(event)?));
            if events.len() == limit {
                break;
            }
        }
        if received < request {
            break; // the end of $all
        }
    }
    Ok(events)
}

/// The position of the newest non-system event of `$all`.
pub(super) async fn head_position(client: &Client) -> Result<Position, StoreError> {
    // Read lazily, newest first: the server-side filter already drops system
    // event types, so the first event nearly always answers.
    let options = ReadAllOptions::default()
        .position(StreamPosition::End)
        .backwards()
        .filter(envelope::user_events_only())
        .max_count(usize::MAX);
    let mut stream = client
        .read_all(&options)
        .await
        .map_err(|e| super::backend_error("head_position", &e))?;
    while let Some(resolved) = stream
        .next()
        .await
        .map_err(|e| super::backend_error("head_position", &e))?
    {
        if let Some(event) = envelope::original(&resolved)
            && !envelope::is_system(event)
            && let Some(position) = envelope::position_of(event)
        {
            return Ok(position);
        }
    }
    Ok(Position::START)
}
