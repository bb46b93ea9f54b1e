//! The projection service killed (issue: reliability): the real
//! `projection-service` binary, SIGKILLed at random moments while it follows
//! the log under ingest and while it rebuilds every projection
//! (`SENTINEL_REBUILD_ON_START=all` on every other start), restarted each
//! time; after a final catch-up the read models equal a full replay, row for
//! row.

mod support;

use event_store::EventStore;
use projection_service::models;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use test_support::database_url;

fn start(url: &str, rebuild: bool) -> Child {
    Command::new(env!("CARGO_BIN_EXE_projection-service"))
        .env("DATABASE_URL", url)
        .env("SENTINEL_PROJECTION_ADDR", "127.0.0.1:0")
        .env("SENTINEL_PROJECTION_BATCH", "100")
        .env(
            "SENTINEL_REBUILD_ON_START",
            if rebuild { "all" } else { "" },
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn projection-service")
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn read_models_equal_a_replay_after_sigkills_during_live_projection_and_rebuilds(
    pool: PgPool,
) {
    let url = database_url(&pool);
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let mut workload = Workload::new(61, 200);
    drive(&command, &mut workload, 4, 250).await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(61);
    let cycles: usize = std::env::var("SENTINEL_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    for cycle in 0..cycles {
        let mut child = start(&url, cycle % 2 == 1);
        // Ingest goes on while it runs; the kill lands at a random moment.
        drive(&command, &mut workload, 1, 100).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..900))).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
    // The killed instances did work (the kills landed on a running service).
    let progressed: i64 =
        sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM rm_transactions.checkpoint")
            .fetch_one(&pool)
            .await
            .expect("checkpoint");
    assert!(progressed > 0, "no killed instance got anywhere");
    let mut child = start(&url, false);
    let all = models::all();
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    wait_caught_up(&pool, &*store, &names).await;
    child.kill().expect("stop");
    let _ = child.wait();
    assert_equals_replay(&pool, &*store, &all).await;
    println!("projection-service kills survived: {cycles}; read models equal a full replay");
}
