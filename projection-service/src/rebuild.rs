//! Replay without downtime: build a projector's tables from the start of the
//! log into `rm_{name}__next` while the serving tables keep answering, then,
//! in one transaction that holds the serving checkpoint, catch up to the live
//! projector, hand each live partition its checkpoint, and swap the schemas.
//! After the swap the live runners carry on from the new checkpoints (see
//! `live`); nothing is missing or applied twice.

use crate::apply::{self, DeadLetterPolicy};
use crate::checkpoint::{self, Checkpoint};
use crate::partition::Partition;
use crate::projector::Projector;
use crate::schema;
use event_store::{EventStore, Position, RecordedEvent};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Events read and applied per transaction.
    pub page_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { page_size: 5000 }
    }
}

/// Where a rebuild is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub position: u64,
    pub head: u64,
    pub events: u64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// Events read from the log.
    pub events: u64,
    /// The checkpoint the new tables went into service with.
    pub position: u64,
    pub dead_letters: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("a rebuild of this projection is already running")]
    AlreadyRunning,
    #[error(transparent)]
    Stopped(#[from] apply::BatchError),
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Rebuilds `projector` from position 0 and swaps it into service.
pub async fn rebuild(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    options: Options,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Rebuilt, RebuildError> {
    let name = projector.name();
    // Held for the whole rebuild on a connection of its own; closing the
    // connection releases it whatever happens.
    let mut guard = pool.acquire().await?.detach();
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('sentinel-rebuild:' || $1))")
            .bind(name)
            .fetch_one(&mut guard)
            .await?;
    if !locked {
        return Err(RebuildError::AlreadyRunning);
    }
    let result = build_and_swap(pool, store, projector, policy, options, progress).await;
    let _ = guard.close().await;
    result
}

async fn build_and_swap(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    options: Options,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Rebuilt, RebuildError> {
    let name = projector.name();
    let next = schema::next(name);
    let mut built = build(
        pool, store, projector, policy, options, &next, None, progress,
    )
    .await?;

    // The swap: hold the serving checkpoint so no live batch commits, catch
    // up to where the live partitions are, give each its checkpoint, rename.
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let serving = schema::serving(name);
    let mut live: Vec<(Partition, u64)> = Vec::new();
    if schema::exists(&mut tx, &serving).await? {
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE {serving}.checkpoint IN ACCESS EXCLUSIVE MODE"
        )))
        .execute(&mut *tx)
        .await?;
        schema::enter(&mut tx, &serving).await?;
        live = checkpoint::all(&mut tx).await?;
    }
    let target = live.iter().map(|(_, p)| *p).max().unwrap_or(0);
    schema::enter(&mut tx, &next).await?;
    while built.position < target {
        let page = store
            .read_all(Position(built.position), options.page_size)
            .await?;
        let Some(last) = page.last() else { break };
        let last = last.position.0;
        let outcome = apply::apply_batch(&mut tx, projector, Partition::ALL, policy, &page).await?;
        built.events += page.len() as u64;
        built.dead_letters += outcome.dead_lettered as u64;
        built.position = last;
    }
    sqlx::query("DELETE FROM checkpoint")
        .execute(&mut *tx)
        .await?;
    if live.is_empty() {
        live.push((Partition::ALL, built.position));
    }
    for (partition, _) in &live {
        let at = Checkpoint {
            position: built.position,
            version: projector.version(),
        };
        checkpoint::write(&mut tx, *partition, at).await?;
    }
    schema::swap(&mut tx, name).await?;
    tx.commit().await?;
    Ok(built)
}

/// Builds `projector`'s tables into `target` (dropped first if present) from
/// the start of the log, up to the head (or `until`). Used by rebuilds, and
/// by `fraudctl replay --verify` and the tests to get a reference copy.
#[allow(clippy::too_many_arguments)]
pub async fn build(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    options: Options,
    target: &str,
    until: Option<u64>,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    {
        let mut tx = pool.begin().await?;
        schema::drop_if_exists(&mut tx, target).await?;
        schema::create(&mut tx, target, projector).await?;
        let at = Checkpoint {
            position: 0,
            version: projector.version(),
        };
        checkpoint::write(&mut tx, Partition::ALL, at).await?;
        tx.commit().await?;
    }
    let mut done = Rebuilt {
        events: 0,
        position: 0,
        dead_letters: 0,
        elapsed: Duration::ZERO,
    };
    let mut head = store.head_position().await?.0;
    let mut last_head_check = Instant::now();
    // Read the next page while the current one is applied.
    let mut page = store.read_all(Position(0), options.page_size).await?;
    loop {
        if let Some(limit) = until {
            page.retain(|e| e.position.0 <= limit);
        }
        let Some(last) = page.last().map(|e| e.position.0) else {
            break;
        };
        let (outcome, next_page) = tokio::join!(
            apply_page(pool, projector, policy, target, &page, last),
            store.read_all(Position(last), options.page_size)
        );
        done.dead_letters += outcome? as u64;
        done.events += page.len() as u64;
        done.position = last;
        page = next_page?;
        if last_head_check.elapsed() > Duration::from_secs(2) {
            head = store.head_position().await?.0;
            last_head_check = Instant::now();
        }
        progress(&Progress {
            position: last,
            head: head.max(last),
            events: done.events,
            elapsed: started.elapsed(),
        });
    }
    done.elapsed = started.elapsed();
    Ok(done)
}

/// One page in one transaction, checkpoint included; returns dead letters.
async fn apply_page(
    pool: &PgPool,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    target: &str,
    page: &[RecordedEvent],
    last: u64,
) -> Result<usize, RebuildError> {
    let mut tx = pool.begin().await?;
    schema::enter(&mut tx, target).await?;
    let outcome = apply::apply_batch(&mut tx, projector, Partition::ALL, policy, page).await?;
    let at = Checkpoint {
        position: last,
        version: projector.version(),
    };
    checkpoint::write(&mut tx, Partition::ALL, at).await?;
    tx.commit().await?;
    Ok(outcome.dead_lettered)
}

/// Row-for-row comparison of a projector's tables in two schemas: the tables
/// that differ, with their row counts. Empty means identical.
pub async fn differences(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    a: &str,
    b: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let mut out = Vec::new();
    for table in projector.tables() {
        let digest = |schema: &str| {
            format!(
                "SELECT count(*), coalesce(md5(string_agg(r, E'\\n' ORDER BY r)), '') \
                 FROM (SELECT to_jsonb(t)::text AS r FROM {schema}.{table} t) rows"
            )
        };
        let (count_a, digest_a): (i64, String) = sqlx::query_as(AssertSqlSafe(digest(a)))
            .fetch_one(&mut *conn)
            .await?;
        let (count_b, digest_b): (i64, String) = sqlx::query_as(AssertSqlSafe(digest(b)))
            .fetch_one(&mut *conn)
            .await?;
        if digest_a != digest_b {
            out.push(format!(
                "{table}: {a} has {count_a} rows, {b} has {count_b}, contents differ"
            ));
        }
    }
    Ok(out)
}
