//! A projector's fold, holding its rows in memory across batches.
//!
//! Live projection folds each batch in a fold of its own: read the rows the
//! batch names, fold, write them back. A rebuild keeps one fold over the
//! whole log (its tables start empty, so nothing needs reading) and writes
//! each row once at the end, instead of rewriting a customer's row for
//! nearly every event. Both go through the same fold and the same writes,
//! so the two paths cannot drift apart (ADR 0006).

use crate::event::ProjectedEvent;
use sqlx::PgConnection;

#[async_trait::async_trait]
pub trait Fold: Send {
    /// Folds `events` (in log order) into the rows held in memory, first
    /// reading from the tables any row they need that memory lacks (unless
    /// the fold was made `fresh` and has not flushed since).
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error>;

    /// Writes every row changed since the last flush and forgets all rows:
    /// later batches read back what they need.
    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error>;

    /// Rows held in memory, for a rebuild to bound its memory by.
    fn held(&self) -> usize;
}

/// A projector's whole `apply` for one batch through its fold.
pub async fn apply_once(
    mut fold: Box<dyn Fold>,
    conn: &mut PgConnection,
    events: &[ProjectedEvent],
) -> Result<(), sqlx::Error> {
    fold.apply(conn, events).await?;
    fold.flush(conn).await
}

/// How many rows go into one write statement: big enough that a statement
/// costs little per row, small enough to keep messages and memory modest.
pub const WRITE_CHUNK: usize = 10_000;
