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

/// A pool on `url` in which every transaction is read-only.
pub async fn read_only_pool(url: &str) -> anyhow::Result<PgPool> {
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
