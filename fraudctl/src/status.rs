//! `fraudctl status`: what is in the log (head, streams, events by type).

use sqlx::PgPool;

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
