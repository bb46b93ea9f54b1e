//! Checkpoints: how far each partition of a projector has applied the log.
//! Read `FOR UPDATE` at the start of every batch and advanced in the same
//! transaction as the read models, so a crash anywhere leaves both in step.
//! All statements run with `search_path` on the projector's schema.

use crate::partition::Partition;
use sqlx::PgConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Last position applied (0: nothing yet).
    pub position: u64,
    /// The projector version that built the tables.
    pub version: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "partition {wanted} has no checkpoint and the existing partitions ({existing}) are at \
         different positions; stop ingest until they catch up, or replay, before changing the \
         partition count"
    )]
    PartitionChange { wanted: Partition, existing: String },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Locks and reads this partition's checkpoint; `None` if it has none.
pub async fn lock(
    conn: &mut PgConnection,
    partition: Partition,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(i64, i32)> = sqlx::query_as(
        "SELECT position, version FROM checkpoint \
         WHERE partition_count = $1 AND partition_index = $2 FOR UPDATE",
    )
    .bind(partition.count as i32)
    .bind(partition.index as i32)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(position, version)| Checkpoint {
        position: position.max(0) as u64,
        version: version.max(0) as u32,
    }))
}

/// This partition's checkpoint, creating it if it has none. A new partition
/// starts where the others all are (nothing at all: the start of the log);
/// if they disagree, no start would be exactly-once, so it refuses. The
/// first partition of a new layout claims the whole layout (every index of
/// its count, at the same start), so its siblings, starting a moment later
/// in this process or another, find their own rows rather than a sibling
/// that has already moved on; the rows of the layout before it are removed.
pub async fn claim(
    conn: &mut PgConnection,
    partition: Partition,
    version: u32,
) -> Result<Checkpoint, CheckpointError> {
    if let Some(found) = lock(conn, partition).await? {
        return Ok(found);
    }
    let rows: Vec<(i32, i32, i64, i32)> = sqlx::query_as(
        "SELECT partition_count, partition_index, position, version FROM checkpoint FOR UPDATE",
    )
    .fetch_all(&mut *conn)
    .await?;
    let start = match rows.first() {
        None => Checkpoint {
            position: 0,
            version,
        },
        Some(first) if rows.iter().all(|r| r.2 == first.2) => Checkpoint {
            position: first.2.max(0) as u64,
            version: first.3.max(0) as u32,
        },
        Some(_) => {
            let existing = rows
                .iter()
                .map(|(n, i, p, _)| format!("{i}/{n} at {p}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CheckpointError::PartitionChange {
                wanted: partition,
                existing,
            });
        }
    };
    // The old layout's rows go: they no longer advance, and readers that
    // take the slowest row (lag, catch-up waits) would wait on them forever.
    // A process still running the old layout finds its row gone and stops
    // at its next claim (the new layout's rows move apart).
    sqlx::query("DELETE FROM checkpoint WHERE partition_count <> $1")
        .bind(partition.count as i32)
        .execute(&mut *conn)
        .await?;
    write_layout(conn, partition.count, start).await?;
    Ok(start)
}

/// Gives every partition of a layout of `count` that has no checkpoint yet
/// this one (a layout's partitions start together).
pub async fn write_layout(
    conn: &mut PgConnection,
    count: u32,
    checkpoint: Checkpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkpoint (partition_count, partition_index, position, version) \
         SELECT $1, i, $2, $3 FROM generate_series(0, $1 - 1) AS i \
         ON CONFLICT (partition_count, partition_index) DO NOTHING",
    )
    .bind(count as i32)
    .bind(checkpoint.position as i64)
    .bind(checkpoint.version as i32)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets this partition's checkpoint (inserting it if new).
pub async fn write(
    conn: &mut PgConnection,
    partition: Partition,
    checkpoint: Checkpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkpoint (partition_count, partition_index, position, version) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (partition_count, partition_index) \
         DO UPDATE SET position = EXCLUDED.position, version = EXCLUDED.version, updated_at = now()",
    )
    .bind(partition.count as i32)
    .bind(partition.index as i32)
    .bind(checkpoint.position as i64)
    .bind(checkpoint.version as i32)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every partition's row, for a swap to carry over.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<(Partition, u64)>, sqlx::Error> {
    let rows: Vec<(i32, i32, i64)> =
        sqlx::query_as("SELECT partition_count, partition_index, position FROM checkpoint")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(n, i, p)| {
            Partition::new(i.max(0) as u32, n.max(0) as u32)
                .ok()
                .map(|part| (part, p.max(0) as u64))
        })
        .collect())
}
