//! What a projector is: a named, versioned fold of the event log into tables
//! of its own, applied in log order one batch at a time. The models' names,
//! versions, DDL and tables are declared by the read-model contract
//! (`read_models::Model`, see `read_models::ALL`); a projector adds how rows
//! are loaded, folded and written.
//!
//! The runtime (see `live` and `rebuild`) owns transactions, checkpoints,
//! partitions and dead letters; a projector only turns decoded events into
//! SQL. It runs with `search_path` set to its own schema, so its SQL names
//! tables bare and the same code writes the serving tables and a rebuild's
//! fresh ones (ADR 0005).

use crate::fold::Fold;
// Where projectors and their callers have always found it.
pub use crate::event::ProjectedEvent;
use sqlx::PgConnection;

#[async_trait::async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Short, stable, `[a-z_]+`: names the schema `rm_{name}`.
    fn name(&self) -> &'static str;

    /// Bump when the tables or the fold change: the service then rebuilds
    /// the projector from the start of the log into fresh tables.
    fn version(&self) -> u32;

    /// Whether instances may split the work by customer (`--partition i/n`).
    /// Only projectors whose rows are keyed by customer can: the others need
    /// every event in log order.
    fn partitioned(&self) -> bool;

    /// `CREATE TABLE` / `CREATE INDEX` / `CREATE VIEW` statements with bare
    /// names, run once in a fresh schema.
    fn ddl(&self) -> &'static str;

    /// Secondary indexes (by name) that `apply` itself looks rows up by. A
    /// rebuild creates these with the tables and every other index only
    /// once the tables are filled.
    fn apply_indexes(&self) -> &'static [&'static str] {
        &[]
    }

    /// The tables that make up the read model (compared row for row by the
    /// determinism tests and `fraudctl replay --verify`).
    fn tables(&self) -> &'static [&'static str];

    /// The projector's fold, if it keeps rows in memory across batches
    /// (see `fold`). `fresh`: the tables are empty, as a rebuild's are, so
    /// rows memory lacks need not be looked for. A rebuild folds the whole
    /// log through it and writes each row once; without one, a rebuild
    /// applies the log page by page like live projection.
    fn fold(&self, fresh: bool) -> Option<Box<dyn Fold>> {
        let _ = fresh;
        None
    }

    /// Applies `events` (in log order, already filtered to this instance's
    /// partition) inside the runtime's transaction. Must be a pure function
    /// of the tables and the events: the same events in batches of any size
    /// give the same rows.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error>;
}
