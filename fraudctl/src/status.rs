//! `fraudctl demo` and `fraudctl status`: bring the event store up and say
//! what is in it. (The demo grows into the full end-to-end run later.)

use crate::database::{self, Database};
use sqlx::PgPool;
use std::path::Path;
use std::time::Duration;

pub async fn demo(duration: Option<u64>) -> anyhow::Result<()> {
    let db = Database::from_env_or_private(Path::new(".sentinel/pg"))?;
    let result = run_demo(&db.url, duration).await;
    db.shutdown()?;
    result
}

async fn run_demo(url: &str, duration: Option<u64>) -> anyhow::Result<()> {
    let pool = database::connect(url).await?;
    database::migrate(&pool).await?;
    println!("Sentinel event store is up at {}", database::redact(url));
    print(&pool).await?;
    println!();
    match duration {
        Some(secs) => {
            println!("running for {secs} s");
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
        None => {
            println!("press Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
        }
    }
    pool.close().await;
    println!("stopped");
    Ok(())
}

/// Head position, streams, and events by type.
pub async fn print(pool: &PgPool) -> anyhow::Result<()> {
    let (events, head, streams): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT coalesce(max(position), 0) FROM events), \
                (SELECT count(DISTINCT stream_id) FROM events)",
    )
    .fetch_one(pool)
    .await?;
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    println!("  migrations applied : {migrations}");
    println!("  head position      : {head}");
    println!("  events             : {events}");
    println!("  streams            : {streams}");
    let by_type: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 20",
    )
    .fetch_all(pool)
    .await?;
    for (t, n) in by_type {
        println!("    {t:<24} {n}");
    }
    Ok(())
}
