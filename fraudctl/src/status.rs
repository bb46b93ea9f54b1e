//! `fraudctl demo` and `fraudctl status`: bring the event store and the
//! ingest up, and say what is in the log. (The demo grows into the full
//! end-to-end run, with projectors, GraphQL and traffic, with issue 6.)

use crate::database::{self, Database};
use crate::serve;
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
    pool.close().await;
    println!();
    println!("try:  curl -s localhost:8080/v1/transactions -H 'content-type: application/json' \\");
    println!(
        "        -d '{{\"transaction_id\":\"t-1\",\"customer_id\":\"c-1\",\"amount\":12.5,\"timestamp\":\"'$(date -u +%FT%TZ)'\"}}'"
    );
    let stop = async move {
        match duration {
            Some(secs) => {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                Ok(())
            }
            None => tokio::signal::ctrl_c().await,
        }
    };
    serve::run(url, serve::Role::All, stop).await?;
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
