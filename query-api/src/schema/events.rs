//! The event log itself, for auditors: `events(after, first, types)` pages
//! through the global log in position order, and `LogEvent` is how every
//! audit trail (a customer's history, a transaction's, an alert's
//! lifecycle) shows an event: its envelope, metadata and payload, exactly as
//! the log holds them (after upcasting to today's schema).

use super::common::{list_cost, page_size, shared};
use crate::error::{OrInternal, bad_input};
use crate::page::{PageInfo, parse_plain_cursor};
use async_graphql::{Context, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use event_store::{EventStore, Position, RecordedEvent};
use uuid::Uuid;

/// One event of the log.
pub struct LogEvent(pub RecordedEvent);

#[Object]
impl LogEvent {
    /// Its place in the global log (gap-safe, grows with commit order).
    async fn position(&self) -> i64 {
        self.0.position.0 as i64
    }

    async fn event_id(&self) -> Uuid {
        self.0.event_id
    }

    /// `customer-{id}`, `alert-{id}`, `label-{transaction}`, `quarantine`,
    /// `repeats` or `ruleset`.
    async fn stream_id(&self) -> &str {
        &self.0.stream_id
    }

    /// Its version within its stream (the first event is 0).
    async fn stream_version(&self) -> i64 {
        self.0.stream_version as i64
    }

    /// The event type, e.g. `TransactionRecorded`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }

    /// The schema version of `payload` as shown (after upcasting).
    async fn schema_version(&self) -> i32 {
        self.0.schema_version as i32
    }

    /// The schema version the event was written with.
    async fn stored_schema_version(&self) -> i32 {
        self.0.stored_schema_version as i32
    }

    /// When it happened in the world.
    async fn event_time(&self) -> DateTime<Utc> {
        self.0.event_time
    }

    /// When the log recorded it.
    async fn recorded_time(&self) -> DateTime<Utc> {
        self.0.recorded_time
    }

    /// Shared by every event one outside request caused.
    async fn correlation_id(&self) -> Option<Uuid> {
        self.0.metadata.correlation_id
    }

    async fn causation_id(&self) -> Option<Uuid> {
        self.0.metadata.causation_id
    }

    /// The W3C trace context of the request that caused it.
    async fn traceparent(&self) -> Option<&str> {
        self.0.metadata.traceparent.as_deref()
    }

    /// The payload, as JSON. Personal fields (a transaction's
    /// `device_info.ip_address` and `user_agent`, and refused input's) are
    /// sealed in the log; here they are opened with the customer's data
    /// key, or `null` once the customer's personal data was erased (see
    /// `personalData`).
    async fn payload(&self, ctx: &Context<'_>) -> async_graphql::Result<Json<serde_json::Value>> {
        super::personal::reveal(shared(ctx)?, &self.0)
            .await
            .map(|(payload, _)| Json(payload))
            .or_internal("reading an event's payload")
    }

    /// What the payload's personal fields are: none, shown (opened with
    /// the customer's key), erased, sealed (not openable here) or
    /// plaintext (recorded before crypto-shredding).
    async fn personal_data(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::personal::PersonalData> {
        super::personal::reveal(shared(ctx)?, &self.0)
            .await
            .map(|(_, status)| status)
            .or_internal("reading an event's payload")
    }

    /// Set when upcasting this event failed (`payload` is then as stored).
    async fn upcast_error(&self) -> Option<&str> {
        self.0.upcast_error.as_deref()
    }
}

/// One event and its cursor (its position, or its stream version in a
/// stream's history).
#[derive(SimpleObject)]
pub struct EventEdge {
    pub cursor: String,
    pub node: LogEvent,
}

/// A page of events.
pub struct EventConnection {
    pub edges: Vec<EventEdge>,
    pub page_info: PageInfo,
}

#[Object]
impl EventConnection {
    async fn edges(&self) -> &[EventEdge] {
        &self.edges
    }

    async fn nodes(&self) -> Vec<&LogEvent> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
}

#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The global log in position order, for auditors. `after` is a
    /// position (as a string; `"0"` is the start). With `types`, only events
    /// of those types are returned; a page then reads at most a bounded
    /// number of events looking for matches, and `pageInfo.endCursor` is
    /// where it stopped reading, so asking again from there goes on.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default = 100)] first: i32,
        types: Option<Vec<String>>,
    ) -> async_graphql::Result<EventConnection> {
        let first = page_size(ctx, first)?;
        let shared = shared(ctx)?;
        let start = match &after {
            Some(c) => parse_plain_cursor(c)?,
            None => 0,
        };
        if let Some(types) = &types {
            for t in types {
                if !DomainEvent::TYPES.iter().any(|(name, _)| name == t) {
                    let known: Vec<&str> = DomainEvent::TYPES.iter().map(|(n, _)| *n).collect();
                    return Err(bad_input(format!(
                        "unknown event type {t:?}; known: {}",
                        known.join(", ")
                    )));
                }
            }
        }
        let store = &*shared.store;
        let page = match types {
            None => plain_page(store, start, first).await?,
            Some(types) => {
                filtered_page(store, start, first, &types, shared.limits.events_scan_limit).await?
            }
        };
        Ok(EventConnection {
            page_info: PageInfo {
                has_next_page: page.more,
                has_previous_page: start > 0,
                start_cursor: page.events.first().map(|e| e.position.0.to_string()),
                end_cursor: page
                    .resume_at
                    .or_else(|| page.events.last().map(|e| e.position.0))
                    .map(|p| p.to_string()),
            },
            edges: page
                .events
                .into_iter()
                .map(|e| EventEdge {
                    cursor: e.position.0.to_string(),
                    node: LogEvent(e),
                })
                .collect(),
        })
    }
}

struct Page {
    events: Vec<RecordedEvent>,
    more: bool,
    /// Where reading stopped, when past the last event returned.
    resume_at: Option<u64>,
}

async fn plain_page(
    store: &dyn EventStore,
    after: u64,
    first: usize,
) -> async_graphql::Result<Page> {
    let mut events = store
        .read_all(Position(after), first + 1)
        .await
        .or_internal("reading the log")?;
    let more = events.len() > first;
    events.truncate(first);
    Ok(Page {
        events,
        more,
        resume_at: None,
    })
}

async fn filtered_page(
    store: &dyn EventStore,
    after: u64,
    first: usize,
    types: &[String],
    scan_limit: usize,
) -> async_graphql::Result<Page> {
    const CHUNK: usize = 1000;
    let mut found = Vec::new();
    let mut cursor = after;
    let mut scanned = 0;
    loop {
        let chunk = store
            .read_all(Position(cursor), CHUNK)
            .await
            .or_internal("reading the log")?;
        let full = chunk.len() == CHUNK;
        for event in chunk {
            scanned += 1;
            let position = event.position.0;
            if types.contains(&event.event_type) {
                if found.len() == first {
                    // One more match than asked for: there is a next page.
                    return Ok(Page {
                        events: found,
                        more: true,
                        resume_at: None,
                    });
                }
                found.push(event);
            }
            cursor = position;
        }
        if !full {
            return Ok(Page {
                events: found,
                more: false,
                resume_at: Some(cursor).filter(|c| *c > after),
            });
        }
        if scanned >= scan_limit {
            return Ok(Page {
                events: found,
                more: true,
                resume_at: Some(cursor),
            });
        }
    }
}

/// Up to `first + 1` events of one stream from `from_version` on (the extra
/// one says whether more follow).
pub(crate) async fn stream_page(
    store: &dyn EventStore,
    stream: &str,
    after: Option<u64>,
    first: usize,
) -> async_graphql::Result<EventConnection> {
    let from = after.map_or(0, |v| v + 1);
    let mut events = store
        .read_stream(stream, from, first + 1)
        .await
        .or_internal("reading the log")?;
    let more = events.len() > first;
    events.truncate(first);
    let cursors: Vec<String> = events
        .iter()
        .map(|e| e.stream_version.to_string())
        .collect();
    Ok(EventConnection {
        page_info: PageInfo::of(&cursors, more, after.is_some()),
        edges: events
            .into_iter()
            .zip(cursors)
            .map(|(e, cursor)| EventEdge {
                cursor,
                node: LogEvent(e),
            })
            .collect(),
    })
}

/// Every event of a stream (audit trails of alerts and labels: short), at
/// most 10,000.
pub(crate) async fn whole_stream(
    store: &dyn EventStore,
    stream: &str,
) -> async_graphql::Result<Vec<RecordedEvent>> {
    read_stream_up_to(store, stream, 10_000).await
}

/// The events of a stream from its start, in pages, up to `most` (rounded
/// up to a page).
pub(crate) async fn read_stream_up_to(
    store: &dyn EventStore,
    stream: &str,
    most: usize,
) -> async_graphql::Result<Vec<RecordedEvent>> {
    const CHUNK: usize = 1000;
    let mut out = Vec::new();
    loop {
        let chunk = store
            .read_stream(stream, out.len() as u64, CHUNK)
            .await
            .or_internal("reading the log")?;
        let done = chunk.len() < CHUNK;
        out.extend(chunk);
        if done || out.len() >= most {
            return Ok(out);
        }
    }
}

/// The event at `position`, if any.
pub(crate) async fn event_at(
    store: &dyn EventStore,
    position: i64,
) -> async_graphql::Result<Option<RecordedEvent>> {
    let Ok(after) = u64::try_from(position - 1) else {
        return Ok(None);
    };
    let mut events = store
        .read_all(Position(after), 1)
        .await
        .or_internal("reading the log")?;
    Ok(events.pop().filter(|e| e.position.0 as i64 == position))
}
