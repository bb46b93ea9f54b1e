//! The query pool and the per-request statement counter.
//!
//! The pool is derived from the one the service is given (same server, same
//! database) with settings of its own, passed as connection start-up
//! options so they cost no round trip:
//! - `search_path`: every projector's serving schema (`rm_{name}`, built
//!   from the contract, `read_models::ALL`), then `public`, so SQL names
//!   tables bare and a blue/green swap (ADR 0005) is picked up by name;
//! - `plan_cache_mode = force_custom_plan`: the filters are written
//!   `($n IS NULL OR column = $n)`; planned with the actual values, the
//!   unused ones fold away and the indexes of the used ones apply;
//! - `default_transaction_read_only = on`: the API only reads (time travel
//!   included: it folds in memory), so its role needs only SELECT;
//! - `statement_timeout`: a runaway query is cancelled.

use crate::configuration::Settings;
use read_models::schema;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// `rm_transactions,rm_velocity,...,public`.
pub fn search_path() -> anyhow::Result<String> {
    let mut schemas = Vec::new();
    for m in read_models::ALL {
        schema::check_name(m.name).map_err(anyhow::Error::msg)?;
        schemas.push(schema::serving(m.name));
    }
    schemas.push("public".to_owned());
    Ok(schemas.join(","))
}

/// The pool the resolvers use, on `base`'s server and database.
pub fn query_pool(base: &PgPool, settings: &Settings) -> anyhow::Result<PgPool> {
    let timeout_ms = settings.statement_timeout.as_millis().max(1).to_string();
    let options = (*base.connect_options())
        .clone()
        .application_name("sentinel-query-api")
        .options([
            ("search_path", search_path()?),
            ("plan_cache_mode", "force_custom_plan".to_owned()),
            ("default_transaction_read_only", "on".to_owned()),
            ("statement_timeout", timeout_ms),
        ]);
    Ok(PgPoolOptions::new()
        .max_connections(settings.pool_size.max(1))
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// The pool as one request sees it: every statement is counted.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    statements: Arc<AtomicUsize>,
}

impl Db {
    pub fn new(pool: PgPool) -> Db {
        Db {
            pool,
            statements: Arc::default(),
        }
    }

    /// The pool, for one SQL statement: call it once per statement.
    pub fn pool(&self) -> &PgPool {
        self.statements.fetch_add(1, Ordering::Relaxed);
        &self.pool
    }

    /// Statements run so far by this request.
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }
}
