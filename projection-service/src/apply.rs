//! One batch, shared by live projection and rebuilds: decode the events this
//! partition owns, dead-letter the ones that cannot be decoded, hand the rest
//! to the projector. Runs inside the caller's transaction, with the search
//! path already on the projector's schema.

use crate::fold::Fold;
use crate::partition::Partition;
use crate::projector::{ProjectedEvent, Projector};
use domain::DomainEvent;
use event_store::RecordedEvent;
use sqlx::PgConnection;
use std::fmt;
use std::str::FromStr;

/// What to do with an event the projector cannot handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterPolicy {
    /// Record it and stop the projector until someone looks.
    Stop,
    /// Record it and go on with the next event.
    Skip,
}

impl FromStr for DeadLetterPolicy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "stop" => Ok(DeadLetterPolicy::Stop),
            "skip" => Ok(DeadLetterPolicy::Skip),
            other => Err(format!(
                "dead-letter policy {other:?}: expected stop or skip"
            )),
        }
    }
}

impl fmt::Display for DeadLetterPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadLetterPolicy::Stop => "stop",
            DeadLetterPolicy::Skip => "skip",
        })
    }
}

/// An event that could not be decoded.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub position: u64,
    pub event_id: uuid::Uuid,
    pub stream_id: String,
    pub event_type: String,
    pub schema_version: u32,
    pub error: String,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct BatchOutcome {
    /// Events handed to the projector.
    pub applied: usize,
    /// Events recorded as dead letters and skipped.
    pub dead_lettered: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("event at position {} ({}) cannot be projected: {}", .0.position, .0.event_type, .0.error)]
    Stopped(DeadLetter),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Decodes a stored event into today's types.
pub fn decode(event: &RecordedEvent) -> Result<ProjectedEvent, DeadLetter> {
    let failed = |error: String| DeadLetter {
        position: event.position.0,
        event_id: event.event_id,
        stream_id: event.stream_id.clone(),
        event_type: event.event_type.clone(),
        schema_version: event.stored_schema_version,
        error,
    };
    if let Some(error) = &event.upcast_error {
        return Err(failed(format!("upcast failed: {error}")));
    }
    let decoded = DomainEvent::from_json(
        &event.event_type,
        event.schema_version,
        event.payload.as_str(),
    )
    .map_err(|e| failed(e.to_string()))?;
    Ok(ProjectedEvent {
        position: event.position,
        event_id: event.event_id,
        stream_id: event.stream_id.clone(),
        stream_version: event.stream_version,
        event_time: event.event_time,
        recorded_time: event.recorded_time,
        event: decoded,
    })
}

/// A batch decoded once, to be applied by any number of projectors: the
/// events in log order, and those that could not be decoded.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<ProjectedEvent>,
    pub dead: Vec<DeadLetter>,
}

impl Decoded {
    /// Decodes the events of `batch` that `partition` owns.
    pub fn of(batch: &[RecordedEvent], partition: Partition) -> Decoded {
        let mut out = Decoded {
            events: Vec::with_capacity(batch.len()),
            dead: Vec::new(),
        };
        for event in batch.iter().filter(|e| partition.owns(&e.stream_id)) {
            match decode(event) {
                Ok(ok) => out.events.push(ok),
                Err(dead) => out.dead.push(dead),
            }
        }
        out
    }
}

/// Applies the events of `batch` that `partition` owns.
pub async fn apply_batch(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    partition: Partition,
    policy: DeadLetterPolicy,
    batch: &[RecordedEvent],
) -> Result<BatchOutcome, BatchError> {
    apply_decoded(conn, projector, policy, &Decoded::of(batch, partition)).await
}

/// Applies an already decoded batch: dead letters first (recorded, or the
/// end of the road under `stop`), then the events.
pub async fn apply_decoded(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    decoded: &Decoded,
) -> Result<BatchOutcome, BatchError> {
    let outcome = dead_letters(conn, projector, policy, decoded).await?;
    if !decoded.events.is_empty() {
        projector.apply(conn, &decoded.events).await?;
    }
    Ok(outcome)
}

/// Like [`apply_decoded`], into a fold that holds its rows in memory (a
/// rebuild's): nothing is written but the dead letters until it flushes.
pub async fn fold_decoded(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    fold: &mut dyn Fold,
    policy: DeadLetterPolicy,
    decoded: &Decoded,
) -> Result<BatchOutcome, BatchError> {
    let outcome = dead_letters(conn, projector, policy, decoded).await?;
    if !decoded.events.is_empty() {
        fold.apply(conn, &decoded.events).await?;
    }
    Ok(outcome)
}

/// Records the batch's dead letters, or ends the road under `stop`.
async fn dead_letters(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    policy: DeadLetterPolicy,
    decoded: &Decoded,
) -> Result<BatchOutcome, BatchError> {
    if let (DeadLetterPolicy::Stop, Some(first)) = (policy, decoded.dead.first()) {
        return Err(BatchError::Stopped(first.clone()));
    }
    for dead in &decoded.dead {
        record_dead_letter(conn, projector, dead).await?;
    }
    Ok(BatchOutcome {
        applied: decoded.events.len(),
        dead_lettered: decoded.dead.len(),
    })
}

/// Records a dead letter (once per projector version and position).
pub async fn record_dead_letter(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    dead: &DeadLetter,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO public.projection_dead_letters \
           (projection, version, position, event_id, stream_id, event_type, schema_version, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (projection, version, position) DO NOTHING",
    )
    .bind(projector.name())
    .bind(projector.version() as i32)
    .bind(dead.position as i64)
    .bind(dead.event_id)
    .bind(&dead.stream_id)
    .bind(&dead.event_type)
    .bind(dead.schema_version as i32)
    .bind(&dead.error)
    .execute(conn)
    .await?;
    Ok(())
}
