//! The projector runtime against real PostgreSQL and the real command side:
//! live projection equals a full replay, a failure between apply and commit
//! counts nothing twice, a replay under concurrent ingest swaps in tables
//! equal to a fresh replay, partitions add up to the whole, a changed
//! version rebuilds on start, and undecodable events are dead-lettered.

mod support;

use event_store::{EventStore, ExpectedVersion, NewEvent};
use projection_service::apply::DeadLetterPolicy;
use projection_service::configuration::Settings;
use projection_service::live::LiveProjector;
use projection_service::models;
use projection_service::partition::Partition;
use projection_service::projector::{ProjectedEvent, Projector};
use projection_service::rebuild::{self, Options};
use projection_service::status::StatusBoard;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::*;
use tokio::sync::watch;

/// A live runner over the whole log.
fn runner(
    projector: Arc<dyn Projector>,
    pool: &PgPool,
    store: &Arc<dyn EventStore>,
    policy: DeadLetterPolicy,
    batch_size: usize,
    board: StatusBoard,
) -> LiveProjector {
    LiveProjector {
        projector,
        pool: pool.clone(),
        store: store.clone(),
        partition: Partition::ALL,
        policy,
        batch_size,
        board,
        rebuild_first: false,
    }
}

fn names(projectors: &[Arc<dyn Projector>]) -> Vec<&'static str> {
    projectors.iter().map(|p| p.name()).collect()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn live_read_models_equal_a_full_replay(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    // Projection starts halfway through the workload: it catches up, then follows.
    let mut workload = Workload::new(7, 150);
    drive(&command, &mut workload, 6, 250).await;
    let projection = spawn_projection(
        pool.clone(),
        store.clone(),
        Settings {
            batch_size: 97,
            ..Settings::default()
        },
    )
    .await;
    drive(&command, &mut workload, 6, 250).await;
    let all = models::all();
    wait_caught_up(&pool, &*store, &names(&all)).await;
    projection.shutdown().await;
    assert_equals_replay(&pool, &*store, &all).await;
}

/// Applies like the real projector, then fails before the runtime commits
/// (every `every`-th batch), as a crash between apply and commit would.
struct FailsBeforeCommit {
    inner: Arc<dyn Projector>,
    calls: AtomicUsize,
    every: usize,
    failures: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Projector for FailsBeforeCommit {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn partitioned(&self) -> bool {
        self.inner.partitioned()
    }
    fn ddl(&self) -> &'static str {
        self.inner.ddl()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        self.inner.apply(conn, events).await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) % self.every == self.every - 1 {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(sqlx::Error::Protocol(
                "injected failure before commit".into(),
            ));
        }
        Ok(())
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_failure_between_apply_and_commit_counts_nothing_twice(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(11, 60);
    drive(&command, &mut workload, 4, 200).await;
    let all = models::all();
    let failures = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop) = watch::channel(false);
    let mut runners = Vec::new();
    for p in &all {
        let flaky: Arc<dyn Projector> = Arc::new(FailsBeforeCommit {
            inner: p.clone(),
            calls: AtomicUsize::new(0),
            every: 3,
            failures: failures.clone(),
        });
        let runner = runner(
            flaky,
            &pool,
            &store,
            DeadLetterPolicy::Skip,
            64,
            StatusBoard::default(),
        );
        runners.push(tokio::spawn(runner.run(stop.clone())));
    }
    // Once failures have been injected, kill them mid-stream too, and start
    // plain runners from their checkpoints.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while failures.load(Ordering::SeqCst) < all.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for r in &runners {
        r.abort();
    }
    drive(&command, &mut workload, 2, 200).await;
    for p in &all {
        let runner = runner(
            p.clone(),
            &pool,
            &store,
            DeadLetterPolicy::Skip,
            64,
            StatusBoard::default(),
        );
        runners.push(tokio::spawn(runner.run(stop.clone())));
    }
    wait_caught_up(&pool, &*store, &names(&all)).await;
    let _ = stop_tx.send(true);
    for r in runners {
        let _ = r.await;
    }
    assert!(
        failures.load(Ordering::SeqCst) > 0,
        "no failure was injected"
    );
    assert_equals_replay(&pool, &*store, &all).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_replay_under_concurrent_ingest_swaps_in_tables_equal_to_a_fresh_replay(pool: PgPool) {
    let command = Arc::new(spawn_command(pool.clone()).await);
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(23, 120);
    drive(&command, &mut workload, 6, 250).await;
    let projection = spawn_projection(pool.clone(), store.clone(), Settings::default()).await;
    let all = models::all();
    wait_caught_up(&pool, &*store, &names(&all)).await;

    let ingest = {
        let command = command.clone();
        tokio::spawn(async move {
            let mut workload = Workload::new(24, 120);
            drive(&command, &mut workload, 8, 100).await;
        })
    };
    // All at once, from one pass over the log, as `fraudctl replay --all` does.
    let jobs = all
        .iter()
        .map(|p| rebuild::Job {
            projector: p.clone(),
            policy: DeadLetterPolicy::Skip,
        })
        .collect();
    let results = rebuild::rebuild_many(
        &pool,
        &*store,
        jobs,
        Options {
            page_size: 500,
            ..Options::default()
        },
        &|_| {},
    )
    .await;
    let mut swapped = 0;
    for (name, done) in results {
        let done = done.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(done.events > 0);
        swapped += 1;
    }
    assert_eq!(swapped, all.len());
    ingest.await.expect("ingest");
    wait_caught_up(&pool, &*store, &names(&all)).await;
    projection.shutdown().await;
    assert_equals_replay(&pool, &*store, &all).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn partitions_together_equal_the_whole_log(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(31, 100);
    drive(&command, &mut workload, 4, 250).await;
    let mut instances = Vec::new();
    for i in 0..3 {
        let settings = Settings {
            partition: Partition::new(i, 3).expect("partition"),
            ..Settings::default()
        };
        instances.push(spawn_projection(pool.clone(), store.clone(), settings).await);
    }
    drive(&command, &mut workload, 2, 250).await;
    let all = models::all();
    wait_caught_up(&pool, &*store, &names(&all)).await;
    for i in instances {
        i.shutdown().await;
    }
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rm_transactions.checkpoint WHERE partition_count = 3",
    )
    .fetch_one(&pool)
    .await
    .expect("checkpoints");
    assert_eq!(rows, 3, "each partition keeps its own checkpoint");
    assert_equals_replay(&pool, &*store, &all).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn one_process_projects_on_several_partitions_and_changes_layout(pool: PgPool) {
    // Whole log first, then the same process restarted with three local
    // partitions per partitioned projector (`SENTINEL_LOCAL_PARTITIONS`):
    // the pieces take over where the whole stopped, each once, and the
    // read models still equal a replay.
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(37, 100);
    let all = models::all();
    let whole = spawn_projection(pool.clone(), store.clone(), Settings::default()).await;
    drive(&command, &mut workload, 3, 250).await;
    wait_caught_up(&pool, &*store, &names(&all)).await;
    whole.shutdown().await;

    let settings = Settings {
        local_partitions: 3,
        ..Settings::default()
    };
    let split = spawn_projection(pool.clone(), store.clone(), settings).await;
    drive(&command, &mut workload, 3, 250).await;
    wait_caught_up(&pool, &*store, &names(&all)).await;
    split.shutdown().await;
    let layouts: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition_count, count(*) FROM rm_transactions.checkpoint \
         GROUP BY partition_count",
    )
    .fetch_all(&pool)
    .await
    .expect("checkpoints");
    assert_eq!(layouts, vec![(3, 3)], "the new layout replaced the old one");
    let unpartitioned: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition_count, count(*) FROM rm_merchants.checkpoint GROUP BY partition_count",
    )
    .fetch_all(&pool)
    .await
    .expect("checkpoints");
    assert_eq!(
        unpartitioned,
        vec![(1, 1)],
        "labels have no customer: one runner"
    );
    assert_equals_replay(&pool, &*store, &all).await;
}

/// The transactions projector under another version number.
struct Renumbered(u32);

#[async_trait::async_trait]
impl Projector for Renumbered {
    fn name(&self) -> &'static str {
        "transactions"
    }
    fn version(&self) -> u32 {
        self.0
    }
    fn partitioned(&self) -> bool {
        true
    }
    fn ddl(&self) -> &'static str {
        models::transactions::Transactions.ddl()
    }
    fn tables(&self) -> &'static [&'static str] {
        models::transactions::Transactions.tables()
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        models::transactions::Transactions.apply(conn, events).await
    }
}

async fn run_briefly(
    pool: &PgPool,
    store: Arc<dyn EventStore>,
    projector: Arc<dyn Projector>,
) -> StatusBoard {
    let board = StatusBoard::default();
    let (stop_tx, stop) = watch::channel(false);
    let runner = runner(
        projector,
        pool,
        &store,
        DeadLetterPolicy::Skip,
        500,
        board.clone(),
    );
    let task = tokio::spawn(runner.run(stop));
    wait_caught_up(pool, &*store, &["transactions"]).await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    board
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_new_version_rebuilds_on_start_and_an_old_runner_stands_down(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(41, 50);
    drive(&command, &mut workload, 2, 200).await;
    run_briefly(&pool, store.clone(), Arc::new(Renumbered(1))).await;
    drive(&command, &mut workload, 1, 200).await;
    run_briefly(&pool, store.clone(), Arc::new(Renumbered(2))).await;
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT DISTINCT version FROM rm_transactions.checkpoint")
            .fetch_all(&pool)
            .await
            .expect("versions");
    assert_eq!(versions, vec![2]);
    assert_equals_replay(
        &pool,
        &*store,
        &[Arc::new(Renumbered(2)) as Arc<dyn Projector>],
    )
    .await;

    // A runner still following the log stands down when a rebuild of a
    // newer version swaps in under it.
    let board = StatusBoard::default();
    let (_stop_tx, stop) = watch::channel(false);
    let runner = runner(
        Arc::new(Renumbered(2)),
        &pool,
        &store,
        DeadLetterPolicy::Skip,
        500,
        board.clone(),
    );
    let task = tokio::spawn(runner.run(stop));
    rebuild::rebuild(
        &pool,
        &*store,
        Arc::new(Renumbered(3)),
        DeadLetterPolicy::Skip,
        Options::default(),
        &|_| {},
    )
    .await
    .expect("rebuild to version 3");
    drive(&command, &mut workload, 1, 50).await;
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("the old runner stops by itself")
        .expect("join");
    let status = &board.snapshot()[0];
    assert_eq!(status.state.as_str(), "stopped");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("version 3")),
        "{status:?}"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_undecodable_event_is_dead_lettered_and_skipped_or_stops_the_projector(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(51, 20);
    drive(&command, &mut workload, 1, 50).await;
    let broken = NewEvent::new(
        "TransactionRecorded",
        2,
        chrono::Utc::now(),
        serde_json::json!({"transaction": {"oops": true}}),
    );
    let at = store
        .append("customer-broken", ExpectedVersion::NoStream, vec![broken])
        .await
        .expect("append")
        .positions[0]
        .0;
    drive(&command, &mut workload, 1, 50).await;

    let board = run_briefly(
        &pool,
        store.clone(),
        Arc::new(models::transactions::Transactions),
    )
    .await;
    let dead: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT projection, position, error FROM projection_dead_letters")
            .fetch_all(&pool)
            .await
            .expect("dead letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].0.as_str(), dead[0].1), ("transactions", at as i64));
    assert!(board.snapshot()[0].dead_letters == 1);

    // Under `stop`, a fresh projector halts at the same event and says why.
    sqlx::query("DROP SCHEMA rm_transactions CASCADE")
        .execute(&pool)
        .await
        .expect("drop");
    let board = StatusBoard::default();
    let (_stop_tx, stop) = watch::channel(false);
    let runner = runner(
        Arc::new(models::transactions::Transactions),
        &pool,
        &store,
        DeadLetterPolicy::Stop,
        500,
        board.clone(),
    );
    tokio::time::timeout(std::time::Duration::from_secs(30), runner.run(stop))
        .await
        .expect("the runner stops by itself");
    let status = &board.snapshot()[0];
    assert_eq!(status.state.as_str(), "failed");
    assert!(status.checkpoint < at, "it stopped before the bad event");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(&format!("position {at}")))
    );
}
