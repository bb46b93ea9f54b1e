//! The group-commit writer: one task per process owns every append. It takes
//! whatever append calls are queued (up to `max_batch_events`), checks them
//! all against the log in one transaction under the writer lock, writes the
//! new events with one INSERT, and commits once. A caller hears back only
//! after that commit, so an answer means the events are durable.
//!
//! Why a lock at all: positions are drawn from a sequence, and a sequence
//! hands out numbers in call order, not commit order. Holding
//! `pg_advisory_xact_lock(WRITER_LOCK_KEY)` from before the draw until commit
//! makes the two orders the same across every process writing to the
//! database, which is what a subscriber needs (docs/adr/0001).

use super::PgStoreOptions;
use crate::error::{AppendError, StoreError};
use crate::model::{
    AppendOutcome, AppendRequest, ExpectedVersion, NewEvent, Position, StoredIdentity,
    StreamVersion,
};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The advisory lock key every append transaction takes ("SNTLWRTR").
pub(crate) const WRITER_LOCK_KEY: i64 = 0x534E_544C_5752_5452;

pub(crate) type BatchReply = Result<Vec<Result<AppendOutcome, AppendError>>, StoreError>;

/// One caller's append_batch, waiting for the writer.
pub(crate) struct WriteJob {
    pub requests: Vec<AppendRequest>,
    pub reply: oneshot::Sender<BatchReply>,
}

pub(crate) async fn run(
    pool: PgPool,
    mut jobs: mpsc::Receiver<WriteJob>,
    options: Arc<PgStoreOptions>,
) {
    while let Some(first) = jobs.recv().await {
        let mut events = count_events(&first);
        let mut batch = vec![first];
        while events < options.max_batch_events {
            match jobs.try_recv() {
                Ok(job) => {
                    events += count_events(&job);
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        write_batch(&pool, batch, &options).await;
    }
}

fn count_events(job: &WriteJob) -> usize {
    job.requests.iter().map(|r| r.events.len()).sum()
}

/// Commits `batch` as one transaction. If that fails and more than one job
/// shared it, each job is tried alone, so one poisoned append (say a payload
/// PostgreSQL refuses) fails only its own caller.
async fn write_batch(pool: &PgPool, batch: Vec<WriteJob>, options: &PgStoreOptions) {
    let requests: Vec<&AppendRequest> = batch.iter().flat_map(|j| j.requests.iter()).collect();
    match commit(pool, &requests, options).await {
        Ok(mut results) => {
            // Hand each job back its own slice of the results, in order.
            let mut rest = results.drain(..);
            for job in batch {
                let mine: Vec<_> = rest.by_ref().take(job.requests.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(error) if batch.len() == 1 => {
            for job in batch {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, jobs = batch.len(), "group commit failed; retrying its appends one by one");
            for job in batch {
                let requests: Vec<&AppendRequest> = job.requests.iter().collect();
                let _ = job.reply.send(commit(pool, &requests, options).await);
            }
        }
    }
}

/// Where an event of an accepted append ends up.
#[derive(Clone, Copy)]
enum Slot {
    /// Already in the log at this position.
    Stored(Position),
    /// Written by this transaction as its n-th new event.
    New(usize),
}

/// The plan for one request, before positions are drawn.
enum Planned {
    Accepted {
        slots: Vec<Slot>,
        last_version: StreamVersion,
        duplicate: bool,
    },
    Refused(AppendError),
}

/// One new row of `events`.
struct NewRow<'a> {
    stream_id: &'a str,
    stream_version: StreamVersion,
    event: &'a NewEvent,
}

async fn commit(
    pool: &PgPool,
    requests: &[&AppendRequest],
    options: &PgStoreOptions,
) -> Result<Vec<Result<AppendOutcome, AppendError>>, StoreError> {
    let mut tx = pool.begin().await?;
    // A process that freezes inside this transaction (SIGSTOP, a lost
    // network) would hold the writer lock and stall every other writer; the
    // server ends such a session after 10 s idle, which frees the lock.
    sqlx::query("SELECT set_config('idle_in_transaction_session_timeout', '10s', true)")
        .execute(&mut *tx)
        .await?;
    if options.writer_lock {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITER_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
    }

    let versions = load_stream_versions(&mut tx, requests).await?;
    let stored = load_stored_events(&mut tx, requests).await?;
    let (plans, rows, stream_heads) = plan(requests, versions, stored);

    let positions = if rows.is_empty() {
        Vec::new()
    } else {
        let positions = draw_positions(&mut tx, rows.len()).await?;
        insert_events(&mut tx, &rows, &positions).await?;
        upsert_stream_heads(&mut tx, &stream_heads).await?;
        if let Some(head) = positions.last() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::NOTIFY_CHANNEL)
                .bind(head.0.to_string())
                .execute(&mut *tx)
                .await?;
        }
        positions
    };

    if let Some(hook) = &options.before_commit {
        tokio::time::sleep(hook()).await;
    }
    tx.commit().await?;

    Ok(plans
        .into_iter()
        .map(|plan| match plan {
            Planned::Refused(e) => Err(e),
            Planned::Accepted {
                slots,
                last_version,
                duplicate,
            } => Ok(AppendOutcome {
                positions: slots
                    .into_iter()
                    .map(|slot| match slot {
                        Slot::Stored(p) => p,
                        Slot::New(n) => positions[n],
                    })
                    .collect(),
                last_version,
                duplicate,
            }),
        })
        .collect())
}

/// Checks every request in order against the log as it stands (under the
/// lock) plus the requests before it in this batch. Pure: no I/O.
fn plan<'a>(
    requests: &[&'a AppendRequest],
    mut versions: HashMap<String, StreamVersion>,
    mut stored: HashMap<Uuid, StoredIdentity>,
) -> (
    Vec<Planned>,
    Vec<NewRow<'a>>,
    HashMap<&'a str, StreamVersion>,
) {
    let mut rows: Vec<NewRow<'a>> = Vec::new();
    let mut heads: HashMap<&'a str, StreamVersion> = HashMap::new();
    // Event ids written earlier in this batch -> their slot.
    let mut new_slots: HashMap<Uuid, Slot> = HashMap::new();

    let plans = requests
        .iter()
        .map(|request| {
            let stream = request.stream_id.as_str();
            if let Err(e) = validate(request) {
                return Planned::Refused(e);
            }
            // Idempotency: are these events in the log (or this batch) already?
            let mut seen: Vec<Option<(Slot, StreamVersion)>> =
                Vec::with_capacity(request.events.len());
            for event in &request.events {
                match stored.get(&event.event_id) {
                    Some(s) if event.same_content_as(stream, s) => {
                        let slot = new_slots
                            .get(&event.event_id)
                            .copied()
                            .unwrap_or(Slot::Stored(s.position));
                        seen.push(Some((slot, s.stream_version)));
                    }
                    Some(_) => {
                        return Planned::Refused(AppendError::EventIdConflict {
                            event_id: event.event_id,
                        });
                    }
                    None => seen.push(None),
                }
            }
            if seen.iter().all(Option::is_some) {
                let found: Vec<(Slot, StreamVersion)> = seen.into_iter().flatten().collect();
                let last_version = found.iter().map(|(_, v)| *v).max().unwrap_or(0);
                let slots = found.into_iter().map(|(slot, _)| slot).collect();
                return Planned::Accepted {
                    slots,
                    last_version,
                    duplicate: true,
                };
            }
            if seen.iter().any(Option::is_some) {
                return Planned::Refused(AppendError::PartialDuplicate {
                    stream_id: stream.to_owned(),
                });
            }

            // Optimistic concurrency.
            let current = versions.get(stream).copied();
            let ok = match request.expected {
                ExpectedVersion::Any => true,
                ExpectedVersion::NoStream => current.is_none(),
                ExpectedVersion::Exact(v) => current == Some(v),
            };
            if !ok {
                return Planned::Refused(AppendError::WrongExpectedVersion {
                    stream_id: stream.to_owned(),
                    expected: request.expected,
                    actual: current,
                });
            }

            let mut version = current.map_or(0, |v| v + 1);
            let mut slots = Vec::with_capacity(request.events.len());
            for event in &request.events {
                let slot = Slot::New(rows.len());
                slots.push(slot);
                new_slots.insert(event.event_id, slot);
                stored.insert(
                    event.event_id,
                    StoredIdentity {
                        stream_id: stream.to_owned(),
                        stream_version: version,
                        position: Position(0), // resolved through new_slots
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        payload: event.payload.clone(),
                    },
                );
                rows.push(NewRow {
                    stream_id: stream,
                    stream_version: version,
                    event,
                });
                version += 1;
            }
            let last_version = version - 1;
            versions.insert(stream.to_owned(), last_version);
            heads.insert(stream, last_version);
            Planned::Accepted {
                slots,
                last_version,
                duplicate: false,
            }
        })
        .collect();
    (plans, rows, heads)
}

fn validate(request: &AppendRequest) -> Result<(), AppendError> {
    if request.stream_id.is_empty() {
        return Err(AppendError::Invalid("stream id is empty".into()));
    }
    if request.events.is_empty() {
        return Err(AppendError::Invalid(format!(
            "append to {} carries no events",
            request.stream_id
        )));
    }
    let mut ids = HashSet::with_capacity(request.events.len());
    for event in &request.events {
        if !ids.insert(event.event_id) {
            return Err(AppendError::Invalid(format!(
                "event id {} appears twice in one append",
                event.event_id
            )));
        }
        if event.schema_version == 0 || event.event_type.is_empty() {
            return Err(AppendError::Invalid(format!(
                "event {} needs a type and a schema version >= 1",
                event.event_id
            )));
        }
    }
    Ok(())
}

async fn load_stream_versions(
    tx: &mut Transaction<'_, Postgres>,
    requests: &[&AppendRequest],
) -> Result<HashMap<String, StreamVersion>, StoreError> {
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.stream_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let rows =
        sqlx::query("SELECT stream_id, version FROM event_streams WHERE stream_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("stream_id")?;
            let version: i64 = row.try_get("version")?;
            Ok((id, version as u64))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

async fn load_stored_events(
    tx: &mut Transaction<'_, Postgres>,
    requests: &[&AppendRequest],
) -> Result<HashMap<Uuid, StoredIdentity>, StoreError> {
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
    let rows = sqlx::query(
        "SELECT event_id, stream_id, stream_version, position, event_type, schema_version, payload \
         FROM events WHERE event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            let version: i64 = row.try_get("stream_version")?;
            let position: i64 = row.try_get("position")?;
            let schema_version: i32 = row.try_get("schema_version")?;
            Ok((
                row.try_get("event_id")?,
                StoredIdentity {
                    stream_id: row.try_get("stream_id")?,
                    stream_version: version as u64,
                    position: Position(position as u64),
                    event_type: row.try_get("event_type")?,
                    schema_version: schema_version as u32,
                    payload: row.try_get("payload")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Draws `n` positions from the sequence. Under the writer lock nobody else
/// draws in between, so they are consecutive and above every committed one.
async fn draw_positions(
    tx: &mut Transaction<'_, Postgres>,
    n: usize,
) -> Result<Vec<Position>, StoreError> {
    let mut drawn: Vec<i64> =
        sqlx::query_scalar("SELECT nextval('event_position_seq') FROM generate_series(1, $1)")
            .bind(n as i64)
            .fetch_all(&mut **tx)
            .await?;
    drawn.sort_unstable();
    Ok(drawn.into_iter().map(|p| Position(p as u64)).collect())
}

async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[NewRow<'_>],
    positions: &[Position],
) -> Result<(), StoreError> {
    let n = rows.len();
    let mut position = Vec::with_capacity(n);
    let mut event_id = Vec::with_capacity(n);
    let mut stream_id = Vec::with_capacity(n);
    let mut stream_version = Vec::with_capacity(n);
    let mut event_type = Vec::with_capacity(n);
    let mut schema_version = Vec::with_capacity(n);
    let mut event_time = Vec::with_capacity(n);
    let mut correlation_id = Vec::with_capacity(n);
    let mut causation_id = Vec::with_capacity(n);
    let mut traceparent = Vec::with_capacity(n);
    let mut payload = Vec::with_capacity(n);
    for (row, pos) in rows.iter().zip(positions) {
        position.push(pos.0 as i64);
        event_id.push(row.event.event_id);
        stream_id.push(row.stream_id);
        stream_version.push(row.stream_version as i64);
        event_type.push(row.event.event_type.as_str());
        schema_version.push(row.event.schema_version as i32);
        event_time.push(row.event.event_time);
        correlation_id.push(row.event.metadata.correlation_id);
        causation_id.push(row.event.metadata.causation_id);
        traceparent.push(row.event.metadata.traceparent.as_deref());
        // Sent as text and parsed by PostgreSQL once, into jsonb.
        payload.push(row.event.payload.to_string());
    }
    sqlx::query(
        "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, \
                             event_time, correlation_id, causation_id, traceparent, payload) \
         SELECT p, id, s, v, t, sv, et, c, ca, tp, pl::jsonb \
         FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::int[], \
                     $7::timestamptz[], $8::uuid[], $9::uuid[], $10::text[], $11::text[]) \
              AS u(p, id, s, v, t, sv, et, c, ca, tp, pl)",
    )
    .bind(&position)
    .bind(&event_id)
    .bind(&stream_id)
    .bind(&stream_version)
    .bind(&event_type)
    .bind(&schema_version)
    .bind(&event_time)
    .bind(&correlation_id)
    .bind(&causation_id)
    .bind(&traceparent)
    .bind(&payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_stream_heads(
    tx: &mut Transaction<'_, Postgres>,
    heads: &HashMap<&str, StreamVersion>,
) -> Result<(), StoreError> {
    let (ids, versions): (Vec<&str>, Vec<i64>) = heads.iter().map(|(s, v)| (*s, *v as i64)).unzip();
    sqlx::query(
        "INSERT INTO event_streams (stream_id, version) SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
         ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
    )
    .bind(&ids)
    .bind(&versions)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
