//! `fraudctl serve`: runs Sentinel's services, without traffic, until
//! Ctrl-C. The projection and query roles join as their issues land them.

use crate::database::{self, Database};
use command_service::configuration::Settings;
use command_service::startup::Application;
use event_store::postgres::PgEventStore;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Role {
    /// The REST ingest (127.0.0.1:8080 unless SENTINEL_COMMAND_ADDR says otherwise).
    Command,
}

pub async fn serve(role: Role) -> anyhow::Result<()> {
    let db = Database::from_env_or_private(Path::new(".sentinel/pg"))?;
    let result = run(&db.url, role, tokio::signal::ctrl_c()).await;
    db.shutdown()?;
    result
}

/// Runs `role` against `url` until `stop` completes.
pub async fn run(
    url: &str,
    role: Role,
    stop: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    let pool = database::connect(url).await?;
    database::migrate(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    match role {
        Role::Command => {
            let app = Application::build(Settings::from_env()?, store).await?;
            let addr = app.local_addr()?;
            println!(
                "command service: http://{addr}  (POST /v1/transactions, /v1/transactions/batch; /healthz, /readyz)"
            );
            println!("press Ctrl-C to stop");
            app.run_until(async {
                let _ = stop.await;
            })
            .await?;
        }
    }
    pool.close().await;
    Ok(())
}
