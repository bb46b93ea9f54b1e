//! The fast rebuild against the incremental path: on a random workload from
//! the real command side, every read model folded in memory over the whole
//! log (written once), and folded with a memory bound so small that it
//! writes out and reads back rows many times, equals the same log applied
//! batch by batch in random batch sizes as live projection applies it, row
//! for row.

mod support;

use event_store::{EventStore, Position, RecordedEvent};
use projection_service::apply::{DeadLetterPolicy, Decoded};
use projection_service::models;
use projection_service::partition::Partition;
use projection_service::projector::Projector;
use projection_service::rebuild::{self, Options};
use projection_service::schema;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{AssertSqlSafe, PgPool};
use std::sync::Arc;
use support::*;

async fn whole_log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut log = Vec::new();
    loop {
        let after = log
            .last()
            .map_or(Position(0), |e: &RecordedEvent| e.position);
        let page = store.read_all(after, 1000).await.expect("read");
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

/// The log applied through `Projector::apply`, in random batch sizes, each
/// batch in its own transaction, as a live runner does.
async fn incremental(
    pool: &PgPool,
    projector: &dyn Projector,
    log: &[RecordedEvent],
    target: &str,
    rng: &mut StdRng,
) {
    let mut tx = pool.begin().await.expect("begin");
    schema::drop_if_exists(&mut tx, target).await.expect("drop");
    schema::create(&mut tx, target, projector)
        .await
        .expect("create");
    tx.commit().await.expect("commit");
    let mut rest = log;
    while !rest.is_empty() {
        let n = rng.random_range(1..=400).min(rest.len());
        let decoded = Decoded::of(&rest[..n], Partition::ALL);
        assert!(decoded.dead.is_empty(), "{:?}", decoded.dead);
        let mut tx = pool.begin().await.expect("begin");
        schema::enter(&mut tx, target).await.expect("enter");
        projector
            .apply(&mut tx, &decoded.events)
            .await
            .expect("apply");
        tx.commit().await.expect("commit");
        rest = &rest[n..];
    }
}

async fn folded(
    pool: &PgPool,
    store: &dyn EventStore,
    projector: Arc<dyn Projector>,
    options: Options,
    target: &str,
    head: u64,
) {
    rebuild::build(
        pool,
        store,
        projector,
        DeadLetterPolicy::Skip,
        options,
        target,
        Some(head),
        &|_| {},
    )
    .await
    .expect("build");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_model_folded_in_memory_equals_batch_by_batch_application(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    // Few customers, so each has many events spread over many pages.
    let mut workload = Workload::new(31, 60);
    drive(&command, &mut workload, 8, 250).await;
    let log = whole_log(&*store).await;
    let head = log.last().expect("a log").position.0;
    let mut rng = StdRng::seed_from_u64(31);

    let mut folding = Vec::new();
    for p in models::all() {
        let name = p.name();
        if p.fold(true).is_some() {
            folding.push(name);
        }
        let (batches, whole, bounded) = (
            format!("inc_{name}"),
            format!("fast_{name}"),
            format!("bounded_{name}"),
        );
        incremental(&pool, &*p, &log, &batches, &mut rng).await;
        let whole_log = Options {
            page_size: 173,
            hold_rows: usize::MAX,
        };
        folded(&pool, &*store, p.clone(), whole_log, &whole, head).await;
        // Writes out and reads back every few pages.
        let small = Options {
            page_size: 97,
            hold_rows: 40,
        };
        folded(&pool, &*store, p.clone(), small, &bounded, head).await;

        let mut conn = pool.acquire().await.expect("conn");
        for table in p.tables() {
            let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM {batches}.{table}"
            )))
            .fetch_one(&mut *conn)
            .await
            .expect("count");
            assert!(
                rows > 0 || *table == "alert_context" || *table == "impossible_travel",
                "{name}.{table} is empty: the comparison proves nothing"
            );
        }
        for other in [&whole, &bounded] {
            let differences = rebuild::differences(&mut conn, &*p, &batches, other)
                .await
                .expect("compare");
            assert!(
                differences.is_empty(),
                "{name}: batch by batch and {other} differ: {differences:#?}"
            );
        }
    }
    // The test is about the folds: the models that rewrite rows per event.
    for name in ["velocity", "geo", "profiles", "merchants"] {
        assert!(folding.contains(&name), "{name} has no fold: {folding:?}");
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_transaction_recorded_twice_rebuilds_as_live_projection_keeps_it(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(37, 10);
    drive(&command, &mut workload, 1, 40).await;
    // The ingest records a transaction id once; a log written by something
    // else (or an older version) might not. The rebuild copies rows into its
    // fresh table, which this would break: it must keep the first, as the
    // live upsert does.
    let first = whole_log(&*store)
        .await
        .into_iter()
        .find(|e| e.event_type == "TransactionRecorded")
        .expect("a transaction");
    let payload: serde_json::Value = serde_json::from_str(first.payload.as_str()).expect("payload");
    let id = payload["transaction"]["transaction_id"]
        .as_str()
        .expect("a transaction id")
        .to_owned();
    let again = event_store::NewEvent::new("TransactionRecorded", 2, first.event_time, payload);
    store
        .append(
            "customer-replayed-elsewhere",
            event_store::ExpectedVersion::NoStream,
            vec![again],
        )
        .await
        .expect("append");
    drive(&command, &mut workload, 1, 40).await;
    let log = whole_log(&*store).await;
    let head = log.last().expect("a log").position.0;

    let p: Arc<dyn Projector> = Arc::new(models::transactions::Transactions);
    let mut rng = StdRng::seed_from_u64(37);
    incremental(&pool, &*p, &log, "inc_twice", &mut rng).await;
    folded(
        &pool,
        &*store,
        p.clone(),
        Options::default(),
        "fast_twice",
        head,
    )
    .await;
    let mut conn = pool.acquire().await.expect("conn");
    let differences = rebuild::differences(&mut conn, &*p, "inc_twice", "fast_twice")
        .await
        .expect("compare");
    assert!(differences.is_empty(), "{differences:#?}");
    let (rows, position): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM fast_twice.transactions), \
           (SELECT position FROM fast_twice.transactions WHERE transaction_id = $1)",
    )
    .bind(&id)
    .fetch_one(&mut *conn)
    .await
    .expect("rows");
    let recorded = log
        .iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .count() as i64;
    assert_eq!(rows, recorded - 1, "one row per transaction id");
    assert_eq!(position as u64, first.position.0, "the first is kept");
}
