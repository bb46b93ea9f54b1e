//! The `command-service` binary: the REST ingest on its own.
//! (`fraudctl serve --role command` runs the same thing.)

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use command_service::configuration::Settings;
use command_service::startup::Application;
use event_store::postgres::MIGRATOR;
use event_store::{LogBackend, OpenOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs (JSON off a terminal) and, with OTEL_EXPORTER_OTLP_ENDPOINT, traces;
    // the guard flushes the traces on the way out.
    let _telemetry = telemetry::init("command-service");
    // Where the log is (SENTINEL_EVENT_STORE): PostgreSQL unless it names a
    // KurrentDB server; the customer state and policy reads go through it.
    let backend = LogBackend::from_env()?;
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = event_store::postgres::pool_options(32)
        .connect(&url)
        .await?;
    MIGRATOR.run(&pool).await?;
    telemetry::pool::spawn_pool_metrics(pool.clone(), "command", telemetry::pool::SAMPLE_EVERY);
    // On PostgreSQL the log's checkpoints are signed (docs/trust.md): the key
    // comes from the environment, or is generated into .sentinel/keys with a
    // warning. A KurrentDB log must answer now, or the service does not start.
    let store = event_store::open(&backend, &pool, &OpenOptions::from_env(true)?).await?;
    let app = Application::build(Settings::from_env()?, store).await?;
    tracing::info!(addr = %app.local_addr()?, "command service listening");
    app.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
