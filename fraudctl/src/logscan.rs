//! Reading the event log from a command-line tool without touching it: a
//! pool whose sessions are read-only (PostgreSQL refuses any write), and a
//! scan of the global log in position order, page by page.

use anyhow::Context;
use domain::DomainEvent;
use event_store::postgres::PgEventStore;
use event_store::{EventStore, Position, RecordedEvent};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;

const PAGE: usize = 5_000;

/// A pool on `url` in which every transaction is read-only. The tools that
/// scan the log through it read the PostgreSQL log only: with a KurrentDB
/// SENTINEL_EVENT_STORE this is an error rather than a scan of another log.
pub async fn read_only_pool(url: &str) -> anyhow::Result<PgPool> {
    event_store::LogBackend::from_env()?.require_postgres("reading the log from fraudctl")?;
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("{} is not a PostgreSQL URL", crate::database::redact(url)))?
        .options([("default_transaction_read_only", "on")]);
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .with_context(|| format!("connecting to {}", crate::database::redact(url)))
}

/// Calls `f` with every event of the types in `types` (all if empty), decoded
/// (upcast to today's schema), in global order. Unreadable events are counted
/// and skipped. Returns how many events were read and how many were skipped.
pub async fn scan(
    pool: &PgPool,
    types: &[&str],
    mut f: impl FnMut(&RecordedEvent, DomainEvent) -> anyhow::Result<()>,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(u64, u64)> {
    let store = PgEventStore::new(pool.clone());
    let (mut after, mut read, mut skipped) = (Position::START, 0u64, 0u64);
    loop {
        let page = store
            .read_all(after, PAGE)
            .await
            .context("reading the event log")?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            read += 1;
            if !types.is_empty() && !types.contains(&e.event_type.as_str()) {
                continue;
            }
            match DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str()) {
                Ok(event) => f(e, event)?,
                Err(error) => {
                    skipped += 1;
                    tracing::warn!(position = e.position.0, %error, "skipping an unreadable event");
                }
            }
        }
        progress(read);
    }
    Ok((read, skipped))
}

/// The head of the log, for progress bars.
pub async fn head(pool: &PgPool) -> anyhow::Result<u64> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .context("reading the head of the log")?;
    Ok(head.max(0) as u64)
}

/// One event of a typed scan: its position and the event.
pub struct Typed {
    pub position: u64,
    pub event: DomainEvent,
}

/// Like [`scan`], but PostgreSQL filters the types (`types` must not be
/// empty) and only events at positions up to `until` are read: a job that
/// needs one event type in twenty (the labels) does not pull the whole log
/// over the wire. Decoded the same way (`DomainEvent::from_json`, which
/// upcasts); unreadable events are counted and skipped. `progress` gets the
/// position reached. Returns how many were skipped.
pub async fn scan_types(
    pool: &PgPool,
    types: &[&str],
    until: u64,
    mut f: impl FnMut(Typed) -> anyhow::Result<()>,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    let (mut after, mut skipped) = (0i64, 0u64);
    let until = i64::try_from(until).unwrap_or(i64::MAX);
    loop {
        let page: Vec<(i64, String, i32, String)> = sqlx::query_as(
            "SELECT position, event_type, schema_version, payload::text FROM events \
             WHERE position > $1 AND position <= $2 AND event_type = ANY($3) \
             ORDER BY position LIMIT $4",
        )
        .bind(after)
        .bind(until)
        .bind(&types)
        .bind(PAGE as i64)
        .fetch_all(pool)
        .await
        .context("reading the event log")?;
        let Some(last) = page.last() else { break };
        after = last.0;
        let full = page.len() == PAGE;
        for (position, event_type, schema_version, payload) in page {
            match DomainEvent::from_json(&event_type, schema_version.max(0) as u32, &payload) {
                Ok(event) => f(Typed {
                    position: position.max(0) as u64,
                    event,
                })?,
                Err(error) => {
                    skipped += 1;
                    tracing::warn!(position, %error, "skipping an unreadable event");
                }
            }
        }
        progress(after.max(0) as u64);
        if !full {
            break;
        }
    }
    progress(until.max(0) as u64);
    Ok(skipped)
}

/// Every event of one rare type up to position `until`, in log order: one
/// sequential pass over the table, sorted here (a paged scan in position
/// order walks the whole index for a type that is one event in a hundred).
/// Unreadable events are logged and skipped.
pub async fn all_of_type(
    pool: &PgPool,
    event_type: &str,
    until: u64,
) -> anyhow::Result<Vec<Typed>> {
    use futures_util::TryStreamExt;
    let until = i64::try_from(until).unwrap_or(i64::MAX);
    let mut rows = sqlx::query_as::<_, (i64, i32, String)>(
        "SELECT position, schema_version, payload::text FROM events \
         WHERE event_type = $1 AND position <= $2",
    )
    .bind(event_type)
    .bind(until)
    .fetch(pool);
    let mut out = Vec::new();
    while let Some((position, schema_version, payload)) =
        rows.try_next().await.context("reading the event log")?
    {
        match DomainEvent::from_json(event_type, schema_version.max(0) as u32, &payload) {
            Ok(event) => out.push(Typed {
                position: position.max(0) as u64,
                event,
            }),
            Err(error) => tracing::warn!(position, %error, "skipping an unreadable event"),
        }
    }
    out.sort_by_key(|t| t.position);
    Ok(out)
}
