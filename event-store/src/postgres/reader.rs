//! Reads of the PostgreSQL event log: by stream, many streams at once, the
//! global log, the head.
//! Every event read passes through the upcasters.

use crate::error::StoreError;
use crate::model::{EventMetadata, Position, RecordedEvent, StreamVersion};
use crate::payload::Payload;
use crate::upcast::Upcasters;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use std::sync::Arc;

/// `SELECT <columns> FROM events`, as a literal (sqlx only takes literal SQL).
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "SELECT position, event_id, stream_id, stream_version, event_type, schema_version, ",
            "event_time, recorded_time, correlation_id, causation_id, traceparent, payload::text FROM events ",
            $rest
        )
    };
}

// PLANNING: the lookups of the log run as unnamed statements
// (`persistent(false)`), planned afresh with their real parameters. A cached
// generic plan is made once, early, when autovacuum may have seen a nearly
// empty table; it then keeps seq-scanning a table of millions of rows (seen
// in `fraudctl bench append`: 0.3-3 s per 1,000-id lookup). Planning costs
// well under a millisecond; a wrong plan costs seconds.

/// The read half of the store; cheap to clone.
#[derive(Clone)]
pub struct PgReader {
    pool: PgPool,
    upcasters: Arc<Upcasters>,
}

impl PgReader {
    pub fn new(pool: PgPool, upcasters: Arc<Upcasters>) -> Self {
        PgReader { pool, upcasters }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn read_stream(
        &self,
        stream_id: &str,
        from_version: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = select_events!(
            "WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3"
        );
        let rows = sqlx::query(sql)
            .persistent(false)
            .bind(stream_id)
            .bind(to_i64(from_version))
            .bind(to_i64(limit as u64))
            .fetch_all(&self.pool)
            .await?;
        self.decode_all(rows)
    }

    /// Many streams in one statement: one index range scan per stream (a
    /// LATERAL join keeps each stream's own `from_version` and limit), so a
    /// batch of customers costs one round trip and one plan instead of one
    /// of each per customer.
    pub async fn read_streams(
        &self,
        streams: &[(&str, StreamVersion)],
        limit_per_stream: usize,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        let mut answers: Vec<Vec<RecordedEvent>> = vec![Vec::new(); streams.len()];
        if streams.is_empty() || limit_per_stream == 0 {
            return Ok(answers);
        }
        let ids: Vec<&str> = streams.iter().map(|(s, _)| *s).collect();
        let from: Vec<i64> = streams.iter().map(|(_, v)| to_i64(*v)).collect();
        let sql = concat!(
            "SELECT e.position, e.event_id, e.stream_id, e.stream_version, e.event_type, ",
            "e.schema_version, e.event_time, e.recorded_time, e.correlation_id, e.causation_id, ",
            "e.traceparent, e.payload::text, q.ord ",
            "FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS q(id, from_v, ord) ",
            "CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.stream_id = q.id ",
            "AND e.stream_version >= q.from_v ORDER BY e.stream_version LIMIT $3) e ",
            "ORDER BY q.ord, e.stream_version"
        );
        let rows = sqlx::query(sql)
            .persistent(false)
            .bind(&ids)
            .bind(&from)
            .bind(to_i64(limit_per_stream as u64))
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let ord: i64 = row.try_get(12)?;
            let event = self.upcasters.apply(decode(row)?);
            // `ord` counts from 1 over `streams`, so it always has a slot.
            if let Some(slot) = usize::try_from(ord - 1)
                .ok()
                .and_then(|i| answers.get_mut(i))
            {
                slot.push(event);
            }
        }
        Ok(answers)
    }

    pub async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Plain position order is gap-safe here because positions are drawn
        // under the writer lock, in commit order (docs/adr/0001).
        let sql = select_events!("WHERE position > $1 ORDER BY position LIMIT $2");
        let rows = sqlx::query(sql)
            .persistent(false)
            .bind(to_i64(after.0))
            .bind(to_i64(limit as u64))
            .fetch_all(&self.pool)
            .await?;
        self.decode_all(rows)
    }

    pub async fn head_position(&self) -> Result<Position, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(Position(head.unwrap_or(0) as u64))
    }

    fn decode_all(&self, rows: Vec<PgRow>) -> Result<Vec<RecordedEvent>, StoreError> {
        rows.iter()
            .map(|row| decode(row).map(|e| self.upcasters.apply(e)))
            .collect()
    }
}

/// Values above i64::MAX cannot be stored; they saturate (a limit or version
/// that large means "all").
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Decodes a row of `select_events!` by column index (the order there).
fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get(0)?;
    let fail = |e: sqlx::Error| StoreError::Decode {
        position: position as u64,
        message: e.to_string(),
    };
    let stream_version: i64 = row.try_get(3).map_err(fail)?;
    let schema_version: i32 = row.try_get(5).map_err(fail)?;
    let payload: String = row.try_get(11).map_err(fail)?;
    Ok(RecordedEvent {
        event_id: row.try_get(1).map_err(fail)?,
        stream_id: row.try_get(2).map_err(fail)?,
        stream_version: stream_version as u64,
        position: Position(position as u64),
        event_type: row.try_get(4).map_err(fail)?,
        schema_version: schema_version as u32,
        stored_schema_version: schema_version as u32,
        event_time: row.try_get(6).map_err(fail)?,
        recorded_time: row.try_get(7).map_err(fail)?,
        // A `json` column only ever holds valid JSON.
        payload: Payload::trusted(payload),
        metadata: EventMetadata {
            correlation_id: row.try_get(8).map_err(fail)?,
            causation_id: row.try_get(9).map_err(fail)?,
            traceparent: row.try_get(10).map_err(fail)?,
        },
        upcast_error: None,
    })
}
