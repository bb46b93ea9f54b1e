//! The `projection-service` binary: the projectors on their own.
//! (`fraudctl serve --role projection` runs the same thing.)

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use event_store::postgres::MIGRATOR;
use event_store::{LogBackend, OpenOptions};
use projection_service::configuration::Settings;
use projection_service::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs (JSON off a terminal) and, with OTEL_EXPORTER_OTLP_ENDPOINT, traces;
    // the guard flushes the traces on the way out.
    let _telemetry = telemetry::init("projection-service");
    // Where the log is (SENTINEL_EVENT_STORE); the read models and the
    // projectors' checkpoints are in DATABASE_URL's PostgreSQL either way.
    let backend = LogBackend::from_env()?;
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = event_store::postgres::pool_options(24)
        .connect(&url)
        .await?;
    MIGRATOR.run(&pool).await?;
    telemetry::pool::spawn_pool_metrics(pool.clone(), "projection", telemetry::pool::SAMPLE_EVERY);
    let store = event_store::open(&backend, &pool, &OpenOptions::from_env(false)?).await?;
    let app = Application::build(Settings::from_env()?, pool, store).await?;
    tracing::info!(addr = %app.local_addr()?, "projection service listening");
    app.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
