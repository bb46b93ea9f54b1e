//! The `projection-service` binary: the projectors on their own.
//! (`fraudctl serve --role projection` runs the same thing.)

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use event_store::postgres::{MIGRATOR, PgEventStore};
use projection_service::configuration::Settings;
use projection_service::startup::Application;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_json_logs();
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .connect(&url)
        .await?;
    MIGRATOR.run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let app = Application::build(Settings::from_env()?, pool, store).await?;
    tracing::info!(addr = %app.local_addr()?, "projection service listening");
    app.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
