//! The `query-api` binary: the GraphQL API on its own.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use event_store::{LogBackend, OpenOptions};
use query_api::configuration::Settings;
use query_api::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("query-api");
    // Where the log is (SENTINEL_EVENT_STORE): histories, audit trails,
    // time travel and live alerts read it; the read models stay in PostgreSQL.
    let backend = LogBackend::from_env()?;
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    // The log's reads (histories, audit trails, time travel, live alerts);
    // the read models have the API's own query pool (see `db`). The query
    // side runs no migrations: the other services (or `fraudctl migrate`) do.
    let pool = event_store::postgres::pool_options(8).connect(&url).await?;
    telemetry::pool::spawn_pool_metrics(pool.clone(), "query", telemetry::pool::SAMPLE_EVERY);
    let store = event_store::open(&backend, &pool, &OpenOptions::from_env(false)?).await?;
    let app = Application::build(Settings::from_env()?, pool, store).await?;
    tracing::info!(addr = %app.local_addr()?, "query API listening");
    app.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
