//! Where the database comes from: `DATABASE_URL`, or a private cluster.

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::path::Path;

/// The database a command runs against, and whether we must stop it after.
pub struct Database {
    pub url: String,
    /// Set when this process started a private cluster it must stop.
    private_dir: Option<std::path::PathBuf>,
}

impl Database {
    /// A server someone else runs.
    pub fn external(url: String) -> Database {
        Database {
            url,
            private_dir: None,
        }
    }

    /// `DATABASE_URL` when set; otherwise a private cluster in `dir`, started
    /// now and stopped by [`Database::shutdown`].
    pub fn from_env_or_private(dir: &Path) -> anyhow::Result<Database> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(Database {
                url,
                private_dir: None,
            });
        }
        let already = local_pg::running_url(dir)?;
        let url = local_pg::up(dir)?;
        // If someone else (a `fraudctl pg up`) started it, leave it running.
        let private_dir = already.is_none().then(|| dir.to_path_buf());
        Ok(Database { url, private_dir })
    }

    pub fn shutdown(self) -> anyhow::Result<()> {
        if let Some(dir) = self.private_dir {
            local_pg::down(&dir)?;
        }
        Ok(())
    }
}

pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    event_store::postgres::with_jit_off(PgPoolOptions::new().max_connections(16))
        .connect(url)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    event_store::postgres::MIGRATOR
        .run(pool)
        .await
        .context("applying migrations")
}

/// The URL without its password, for messages (the one home is `settings`).
pub use settings::redact_url as redact;
