//! Replay without downtime: build a projector's tables from the start of the
//! log into `rm_{name}__next` while the serving tables keep answering, then,
//! in one transaction that holds the serving checkpoint, catch up to the live
//! projector, hand each live partition its checkpoint, and swap the schemas.
//! After the swap the live runners carry on from the new checkpoints (see
//! `live`); nothing is missing or applied twice.

use crate::apply::{self, DeadLetterPolicy, Decoded};
use crate::checkpoint::{self, Checkpoint};
use crate::partition::Partition;
use crate::projector::Projector;
use crate::schema;
use event_store::{EventStore, Position};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Events read per page (and applied per transaction by projectors
    /// without a fold, and while catching up before the swap).
    pub page_size: usize,
    /// Most rows a projector's fold holds in memory before writing them
    /// out and starting afresh (reading back rows as it needs them). One
    /// flush at the end is the fast case; this only bounds memory.
    pub hold_rows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            page_size: 5000,
            hold_rows: 2_000_000,
        }
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

/// One projector to rebuild, with its dead-letter policy.
#[derive(Clone)]
pub struct Job {
    pub projector: Arc<dyn Projector>,
    pub policy: DeadLetterPolicy,
}

/// Rebuilds `projector` from position 0 and swaps it into service.
pub async fn rebuild(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: Arc<dyn Projector>,
    policy: DeadLetterPolicy,
    options: Options,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Rebuilt, RebuildError> {
    let job = Job { projector, policy };
    let mut results = rebuild_many(pool, store, vec![job], options, progress).await;
    results
        .pop()
        .map_or(Err(RebuildError::AlreadyRunning), |(_, r)| r)
}

/// Rebuilds several projectors from one pass over the log (each page read
/// and decoded once, applied by every projector in its own transaction),
/// then swaps each into service. A projector already being rebuilt
/// elsewhere is refused; the others go ahead.
pub async fn rebuild_many(
    pool: &PgPool,
    store: &dyn EventStore,
    jobs: Vec<Job>,
    options: Options,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Vec<(&'static str, Result<Rebuilt, RebuildError>)> {
    let mut results = Vec::new();
    let mut locked = Vec::new();
    for job in jobs {
        match lock(pool, job.projector.name()).await {
            Ok(guard) => locked.push((job, guard)),
            Err(e) => results.push((job.projector.name(), Err(e))),
        }
    }
    let targets: Vec<(Job, String)> = locked
        .iter()
        .map(|(job, _)| (job.clone(), schema::next(job.projector.name())))
        .collect();
    let built = build_many(pool, store, targets, options, None, progress).await;
    for ((job, guard), built) in locked.into_iter().zip(built) {
        let name = job.projector.name();
        let outcome = match built {
            Ok(built) => swap_in(pool, store, &*job.projector, job.policy, options, built).await,
            Err(e) => Err(e),
        };
        let _ = guard.close().await;
        results.push((name, outcome));
    }
    results
}

/// Takes the rebuild lock of `name` on a connection of its own, held until
/// that connection is closed (so it is released whatever happens).
async fn lock(pool: &PgPool, name: &str) -> Result<PgConnection, RebuildError> {
    let mut guard = pool.acquire().await?.detach();
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('sentinel-rebuild:' || $1))")
            .bind(name)
            .fetch_one(&mut guard)
            .await?;
    if locked {
        Ok(guard)
    } else {
        let _ = guard.close().await;
        Err(RebuildError::AlreadyRunning)
    }
}

/// Swap attempts that give up the lock to catch up outside it, before a
/// swap reads the rest under the lock (ingest outran the catch-up each time).
const LOCK_ATTEMPTS: usize = 10;

/// The swap: catch up with the live partitions outside any lock; then hold
/// the serving checkpoint (no live batch commits meanwhile), and if nothing
/// is left to read, give each live partition its checkpoint and rename.
/// Nothing is read under the lock (while live batches wait on it, holding
/// their connections) except as a last resort.
async fn swap_in(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    options: Options,
    mut built: Rebuilt,
) -> Result<Rebuilt, RebuildError> {
    let name = projector.name();
    let (serving, next) = (schema::serving(name), schema::next(name));
    for attempt in 1.. {
        let now = live_position(pool, &serving).await?;
        catch_up(
            pool, store, projector, policy, options, &next, &mut built, now,
        )
        .await?;

        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
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
        if built.position < target && attempt < LOCK_ATTEMPTS {
            tx.rollback().await?;
            continue;
        }
        schema::enter(&mut tx, &next).await?;
        while built.position < target {
            let page = store
                .read_all(Position(built.position), options.page_size)
                .await?;
            let Some(last) = page.last() else { break };
            let last = last.position.0;
            let outcome =
                apply::apply_batch(&mut tx, projector, Partition::ALL, policy, &page).await?;
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
        break;
    }
    Ok(built)
}

/// Where the furthest live partition is (0 with no serving tables).
async fn live_position(pool: &PgPool, serving: &str) -> Result<u64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if !schema::exists(&mut conn, serving).await? {
        return Ok(0);
    }
    let at: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT coalesce(max(position), 0) FROM {serving}.checkpoint"
    )))
    .fetch_one(&mut *conn)
    .await?;
    Ok(at.max(0) as u64)
}

/// Applies the log after `built` up to at least `target` into `next`, a
/// page per transaction.
#[allow(clippy::too_many_arguments)]
async fn catch_up(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    options: Options,
    next: &str,
    built: &mut Rebuilt,
    target: u64,
) -> Result<(), RebuildError> {
    while built.position < target {
        let page = store
            .read_all(Position(built.position), options.page_size)
            .await?;
        let Some(last) = page.last().map(|e| e.position.0) else {
            break;
        };
        let mut tx = pool.begin().await?;
        schema::enter_for_apply(&mut tx, next).await?;
        let outcome = apply::apply_batch(&mut tx, projector, Partition::ALL, policy, &page).await?;
        let at = Checkpoint {
            position: last,
            version: projector.version(),
        };
        checkpoint::write(&mut tx, Partition::ALL, at).await?;
        tx.commit().await?;
        built.events += page.len() as u64;
        built.dead_letters += outcome.dead_lettered as u64;
        built.position = last;
    }
    Ok(())
}

/// Builds `projector`'s tables into `target` (dropped first if present) from
/// the start of the log, up to the head (or `until`). Used by `fraudctl
/// replay --verify` and the tests to get a reference copy.
#[allow(clippy::too_many_arguments)]
pub async fn build(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: Arc<dyn Projector>,
    policy: DeadLetterPolicy,
    options: Options,
    target: &str,
    until: Option<u64>,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Rebuilt, RebuildError> {
    let job = Job { projector, policy };
    let mut built = build_many(
        pool,
        store,
        vec![(job, target.to_owned())],
        options,
        until,
        progress,
    )
    .await;
    built.pop().unwrap_or(Err(RebuildError::AlreadyRunning))
}

/// A page read once and decoded once, shared by every builder.
struct Page {
    decoded: Decoded,
    read: usize,
    last: u64,
}

/// Builds each job's tables into its target schema from one pass over the
/// log; one result per job, in order.
async fn build_many(
    pool: &PgPool,
    store: &dyn EventStore,
    targets: Vec<(Job, String)>,
    options: Options,
    until: Option<u64>,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Vec<Result<Rebuilt, RebuildError>> {
    let started = Instant::now();
    let mut builders = Vec::new();
    let mut feeds = Vec::new();
    for (job, target) in targets {
        let (feed, pages) = mpsc::channel::<Arc<Page>>(2);
        let pool = pool.clone();
        builders.push(tokio::spawn(async move {
            let indexes = prepare(&pool, &*job.projector, &target).await?;
            let built =
                apply_pages(&pool, &*job.projector, job.policy, &target, options, pages).await?;
            let mut tx = pool.begin().await?;
            schema::create_indexes(&mut tx, &target, &indexes).await?;
            tx.commit().await?;
            Ok(built)
        }));
        feeds.push(feed);
    }
    let read = feed_pages(store, &feeds, options, until, started, progress).await;
    drop(feeds);
    let mut results = Vec::new();
    for builder in builders {
        let built = match builder.await {
            Ok(built) => built,
            Err(e) => Err(RebuildError::Store(event_store::StoreError::Backend(
                e.to_string(),
            ))),
        };
        results.push(match (&read, built) {
            (Err(e), _) => Err(RebuildError::Store(event_store::StoreError::Backend(
                e.to_string(),
            ))),
            (Ok(_), Ok(mut built)) => {
                built.elapsed = started.elapsed();
                Ok(built)
            }
            (Ok(_), Err(e)) => Err(e),
        });
    }
    results
}

/// Drops and recreates `target` with the projector's tables at position 0;
/// returns the secondary indexes to create once the tables are filled.
async fn prepare(
    pool: &PgPool,
    projector: &dyn Projector,
    target: &str,
) -> Result<Vec<String>, RebuildError> {
    let mut tx = pool.begin().await?;
    schema::drop_if_exists(&mut tx, target).await?;
    let indexes = schema::create_deferring_indexes(&mut tx, target, projector).await?;
    let at = Checkpoint {
        position: 0,
        version: projector.version(),
    };
    checkpoint::write(&mut tx, Partition::ALL, at).await?;
    tx.commit().await?;
    Ok(indexes)
}

/// Reads the log once, decoding each page once, and hands every page to
/// every builder still running; reads the next page while they apply.
async fn feed_pages(
    store: &dyn EventStore,
    feeds: &[mpsc::Sender<Arc<Page>>],
    options: Options,
    until: Option<u64>,
    started: Instant,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<u64, event_store::StoreError> {
    let mut head = store.head_position().await?.0;
    let mut last_head_check = Instant::now();
    let mut events = 0u64;
    let mut page = store.read_all(Position(0), options.page_size).await?;
    loop {
        if let Some(limit) = until {
            page.retain(|e| e.position.0 <= limit);
        }
        let Some(last) = page.last().map(|e| e.position.0) else {
            break;
        };
        let hand_out = async {
            let shared = Arc::new(Page {
                decoded: Decoded::of(&page, Partition::ALL),
                read: page.len(),
                last,
            });
            for feed in feeds {
                // A builder that failed has gone; the others carry on.
                let _ = feed.send(shared.clone()).await;
            }
        };
        let (_, next) = tokio::join!(hand_out, store.read_all(Position(last), options.page_size));
        events += page.len() as u64;
        page = next?;
        if last_head_check.elapsed() > Duration::from_secs(2) {
            head = store.head_position().await?.0;
            last_head_check = Instant::now();
        }
        progress(&Progress {
            position: last,
            head: head.max(last),
            events,
            elapsed: started.elapsed(),
        });
    }
    Ok(events)
}

/// A builder. With a fold: folds every page in memory and writes each row
/// once at the end (or whenever the fold holds `hold_rows`), the checkpoint
/// with it. Without: applies each page in a transaction of its own,
/// checkpoint included.
async fn apply_pages(
    pool: &PgPool,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    target: &str,
    options: Options,
    mut pages: mpsc::Receiver<Arc<Page>>,
) -> Result<Rebuilt, RebuildError> {
    let mut done = Rebuilt {
        events: 0,
        position: 0,
        dead_letters: 0,
        elapsed: Duration::ZERO,
    };
    let checkpoint = |position| Checkpoint {
        position,
        version: projector.version(),
    };
    let mut fold = projector.fold(true);
    while let Some(page) = pages.recv().await {
        let mut tx = pool.begin().await?;
        schema::enter_for_apply(&mut tx, target).await?;
        let outcome = match fold.as_deref_mut() {
            None => {
                let outcome =
                    apply::apply_decoded(&mut tx, projector, policy, &page.decoded).await?;
                checkpoint::write(&mut tx, Partition::ALL, checkpoint(page.last)).await?;
                outcome
            }
            Some(fold) => {
                let outcome =
                    apply::fold_decoded(&mut tx, projector, fold, policy, &page.decoded).await?;
                if fold.held() >= options.hold_rows {
                    fold.flush(&mut tx).await?;
                    checkpoint::write(&mut tx, Partition::ALL, checkpoint(page.last)).await?;
                }
                outcome
            }
        };
        tx.commit().await?;
        done.events += page.read as u64;
        done.dead_letters += outcome.dead_lettered as u64;
        done.position = page.last;
    }
    if let Some(fold) = fold.as_deref_mut() {
        let mut tx = pool.begin().await?;
        schema::enter_for_apply(&mut tx, target).await?;
        fold.flush(&mut tx).await?;
        checkpoint::write(&mut tx, Partition::ALL, checkpoint(done.position)).await?;
        tx.commit().await?;
    }
    Ok(done)
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
