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
//!
//! Metrics, per group commit: `sentinel_append_batch_size` (events),
//! `sentinel_append_duration_seconds` (from taking the batch off the queue to
//! answering its callers) and `sentinel_append_queue_depth` (append calls
//! still waiting once the batch was taken, out of
//! `sentinel_append_queue_capacity`).

use super::PgStoreOptions;
use crate::error::{AppendError, StoreError};
use crate::model::{
    AppendOutcome, AppendRequest, ExpectedVersion, NewEvent, Position, StoredIdentity,
    StreamVersion,
};
use crate::payload::Payload;
use lru::LruCache;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The unique indexes on `events` (PostgreSQL's default names). Hitting
/// either in an optimistic attempt means a stored event id or a cached
/// stream head that lagged the log: the batch is redone fully checked.
const EVENT_ID_KEY: &str = "events_event_id_key";
const STREAM_VERSION_KEY: &str = "events_stream_id_stream_version_key";

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
    let capacity = NonZeroUsize::new(options.stream_head_cache).unwrap_or(NonZeroUsize::MIN);
    let mut heads = LruCache::new(capacity);
    metrics::gauge!("sentinel_append_queue_capacity").set(jobs.max_capacity() as f64);
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
        metrics::histogram!("sentinel_append_batch_size").record(events as f64);
        metrics::gauge!("sentinel_append_queue_depth").set(jobs.len() as f64);
        let started = std::time::Instant::now();
        let unavailable = write_batch(&pool, batch, &options, &mut heads).await;
        metrics::histogram!("sentinel_append_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        if let Some(error) = unavailable {
            // The appends queued meanwhile would wait out another acquire
            // timeout against the same outage: fail them now (nothing of
            // them was written; their callers answer 503 and are retried).
            while let Ok(job) = jobs.try_recv() {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
}

fn count_events(job: &WriteJob) -> usize {
    job.requests.iter().map(|r| r.events.len()).sum()
}

/// Commits `batch` as one transaction. If that fails and more than one job
/// shared it, each job is tried alone, so one poisoned append (say a payload
/// PostgreSQL refuses) fails only its own caller.
/// Stream id -> version of its last event, as of some commit.
type Heads = LruCache<String, StreamVersion>;

/// Returns the error when the database was unreachable.
async fn write_batch(
    pool: &PgPool,
    batch: Vec<WriteJob>,
    options: &PgStoreOptions,
    heads: &mut Heads,
) -> Option<StoreError> {
    let requests: Vec<&AppendRequest> = batch.iter().flat_map(|j| j.requests.iter()).collect();
    match commit(pool, &requests, options, heads).await {
        Ok(mut results) => {
            // Hand each job back its own slice of the results, in order.
            let mut rest = results.drain(..);
            for job in batch {
                let mine: Vec<_> = rest.by_ref().take(job.requests.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        // One job, or the database is away (every job would fail the same
        // way, each after the pool's acquire timeout): fail them all now.
        Err(error) if batch.len() == 1 || error.is_unavailable() => {
            for job in batch {
                let _ = job.reply.send(Err(error.clone()));
            }
            return error.is_unavailable().then_some(error);
        }
        Err(error) => {
            tracing::warn!(%error, jobs = batch.len(), "group commit failed; retrying its appends one by one");
            for job in batch {
                let requests: Vec<&AppendRequest> = job.requests.iter().collect();
                let _ = job
                    .reply
                    .send(commit(pool, &requests, options, heads).await);
            }
        }
    }
    None
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

/// Opens an append transaction in one round trip: BEGIN, the idle timeout,
/// and (normally) the writer lock. A process that freezes inside this
/// transaction (SIGSTOP, a lost network) would hold the lock and stall every
/// other writer; the server ends such a session after 10 s idle, which frees it.
macro_rules! begin_append {
    ($lock:literal) => {
        concat!(
            "BEGIN; SELECT set_config('idle_in_transaction_session_timeout', '10s', true);",
            $lock
        )
    };
}
const BEGIN_LOCKED: &str = begin_append!(" SELECT pg_advisory_xact_lock(6002828040190710866);");
const BEGIN_UNLOCKED: &str = begin_append!("");
const _: () = assert!(WRITER_LOCK_KEY == 6002828040190710866);

/// How an attempt learns which events are stored already.
#[derive(Clone, Copy, Debug, PartialEq)]
enum IdCheck {
    /// Assume none are (true except for retries): skip the look-up and let
    /// the unique index on `event_id` refuse the insert if that was wrong.
    Optimistic,
    /// Look every id up first (after an optimistic attempt met a stored id).
    Checked,
}

/// Commits the batch: optimistically first, and if a stored event id turns
/// up, again (in a new transaction) with every id looked up.
async fn commit(
    pool: &PgPool,
    requests: &[&AppendRequest],
    options: &PgStoreOptions,
    heads: &mut Heads,
) -> Result<Vec<Result<AppendOutcome, AppendError>>, StoreError> {
    let outcome = match attempt(pool, requests, options, IdCheck::Optimistic, heads).await {
        Ok(Some(results)) => Ok(results),
        Ok(None) => attempt(pool, requests, options, IdCheck::Checked, heads)
            .await
            .and_then(|r| {
                r.ok_or_else(|| {
                    StoreError::Database("the log changed under the writer lock".into())
                })
            }),
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        // Whatever happened, forget: a forgotten head costs one look-up.
        heads.clear();
    }
    outcome
}

/// One append transaction in four round trips: begin (+ lock), look up,
/// write, commit. Round trips are what an append costs on a fast disk.
/// `None` when an optimistic attempt met a stored event id (rolled back).
async fn attempt(
    pool: &PgPool,
    requests: &[&AppendRequest],
    options: &PgStoreOptions,
    ids: IdCheck,
    heads: &mut Heads,
) -> Result<Option<Vec<Result<AppendOutcome, AppendError>>>, StoreError> {
    let started = std::time::Instant::now();
    let begin = if options.writer_lock {
        BEGIN_LOCKED
    } else {
        BEGIN_UNLOCKED
    };
    let mut tx = pool.begin_with(begin).await?;
    let locked = started.elapsed();
    let (mut versions, stored) = look_up(&mut tx, requests, ids, heads).await?;
    let looked_up = started.elapsed();
    let (plans, rows) = plan(requests, &mut versions, stored);
    // A client's retry of an append that did commit meets the stream already
    // past its expected version: only the checked attempt can tell that
    // apart from a real conflict.
    if ids == IdCheck::Optimistic
        && plans.iter().any(|p| {
            matches!(
                p,
                Planned::Refused(AppendError::WrongExpectedVersion { .. })
            )
        })
    {
        return Ok(None);
    }
    let positions = if rows.is_empty() {
        Vec::new()
    } else {
        match write(&mut tx, &rows).await? {
            Some(positions) => positions,
            None => return Ok(None), // dropping `tx` rolls it back
        }
    };
    let written = started.elapsed();
    if let Some(hook) = &options.before_commit {
        tokio::time::sleep(hook()).await;
    }
    tx.commit().await?;
    for (stream, version) in versions {
        heads.put(stream, version);
    }
    tracing::debug!(
        requests = requests.len(),
        new_events = rows.len(),
        ?ids,
        ?locked,
        ?looked_up,
        ?written,
        committed = ?started.elapsed(),
        "group commit"
    );

    Ok(Some(
        plans
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
            .collect(),
    ))
}

/// An event id this batch has met: in the log already, or written by an
/// earlier request of the same batch.
enum Known<'a> {
    Stored(StoredIdentity),
    InBatch {
        slot: usize,
        stream_id: &'a str,
        version: StreamVersion,
        event: &'a NewEvent,
    },
}

impl Known<'_> {
    fn same_content_as(&self, stream_id: &str, event: &NewEvent) -> bool {
        match self {
            Known::Stored(s) => event.same_content_as(stream_id, s),
            Known::InBatch {
                stream_id: s,
                event: e,
                ..
            } => {
                *s == stream_id
                    && e.event_type == event.event_type
                    && e.schema_version == event.schema_version
                    && e.payload.same_json(&event.payload)
            }
        }
    }

    fn slot(&self) -> (Slot, StreamVersion) {
        match self {
            Known::Stored(s) => (Slot::Stored(s.position), s.stream_version),
            Known::InBatch { slot, version, .. } => (Slot::New(*slot), *version),
        }
    }
}

/// Checks every request in order against the log as it stands (under the
/// lock) plus the requests before it in this batch. Pure: no I/O.
fn plan<'a>(
    requests: &[&'a AppendRequest],
    versions: &mut HashMap<String, StreamVersion>,
    stored: HashMap<Uuid, StoredIdentity>,
) -> (Vec<Planned>, Vec<NewRow<'a>>) {
    let mut rows: Vec<NewRow<'a>> = Vec::new();
    let mut known: HashMap<Uuid, Known<'a>> = stored
        .into_iter()
        .map(|(id, s)| (id, Known::Stored(s)))
        .collect();

    let plans = requests
        .iter()
        .map(|request| {
            let stream = request.stream_id.as_str();
            if let Err(e) = request.validate() {
                return Planned::Refused(e);
            }
            // Idempotency: are these events in the log (or this batch) already?
            let mut seen: Vec<Option<(Slot, StreamVersion)>> =
                Vec::with_capacity(request.events.len());
            for event in &request.events {
                match known.get(&event.event_id) {
                    Some(k) if k.same_content_as(stream, event) => seen.push(Some(k.slot())),
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
                let slot = rows.len();
                slots.push(Slot::New(slot));
                known.insert(
                    event.event_id,
                    Known::InBatch {
                        slot,
                        stream_id: stream,
                        version,
                        event,
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
            Planned::Accepted {
                slots,
                last_version,
                duplicate: false,
            }
        })
        .collect();
    (plans, rows)
}

/// The current version of every stream the batch touches (the newest entry of
/// the `(stream_id, stream_version)` index: a stream's head is derived, not
/// stored twice), and every event of the batch that is stored already, in one
/// round trip. Rows with a NULL event id are stream heads. (Unnamed
/// statement: see PLANNING in reader.rs.)
async fn look_up(
    tx: &mut Transaction<'_, Postgres>,
    requests: &[&AppendRequest],
    check: IdCheck,
    heads: &mut Heads,
) -> Result<
    (
        HashMap<String, StreamVersion>,
        HashMap<Uuid, StoredIdentity>,
    ),
    StoreError,
> {
    let mut versions = HashMap::new();
    let mut unknown: HashSet<&str> = HashSet::new();
    for r in requests {
        let stream = r.stream_id.as_str();
        match (check, heads.get(stream)) {
            (IdCheck::Optimistic, Some(v)) => {
                versions.insert(stream.to_owned(), *v);
            }
            // A new stream's first append needs no head: version 0 is
            // refused by the index if the stream exists after all.
            (IdCheck::Optimistic, None) if r.expected == ExpectedVersion::NoStream => {}
            _ => {
                unknown.insert(stream);
            }
        }
    }
    // Only streams nobody asked to look up below were taken from the cache.
    for s in &unknown {
        versions.remove(*s);
    }
    if check == IdCheck::Optimistic && unknown.is_empty() {
        return Ok((versions, HashMap::new()));
    }
    let streams: Vec<&str> = unknown.into_iter().collect();
    let ids: Vec<Uuid> = match check {
        IdCheck::Optimistic => Vec::new(),
        IdCheck::Checked => requests
            .iter()
            .flat_map(|r| r.events.iter().map(|e| e.event_id))
            .collect(),
    };
    let rows = sqlx::query(
        "SELECT NULL::uuid AS event_id, s.id AS stream_id, \
                (SELECT max(e.stream_version) FROM events e WHERE e.stream_id = s.id) AS stream_version, \
                NULL::bigint AS position, NULL::text AS event_type, NULL::int AS schema_version, \
                NULL::text AS payload \
         FROM unnest($1::text[]) AS s(id) \
         UNION ALL \
         SELECT e.event_id, e.stream_id, e.stream_version, e.position, e.event_type, e.schema_version, e.payload::text \
         FROM unnest($2::uuid[]) AS q(id) JOIN events e ON e.event_id = q.id",
    )
    .persistent(false)
    .bind(&streams)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;

    let mut stored = HashMap::new();
    for row in &rows {
        let stream_id: String = row.try_get("stream_id")?;
        // NULL for a stream head of a stream that does not exist yet.
        let Some(stream_version) = row.try_get::<Option<i64>, _>("stream_version")? else {
            continue;
        };
        let stream_version = stream_version as u64;
        match row.try_get::<Option<Uuid>, _>("event_id")? {
            None => {
                versions.insert(stream_id, stream_version);
            }
            Some(event_id) => {
                let position: i64 = row.try_get("position")?;
                let schema_version: i32 = row.try_get("schema_version")?;
                stored.insert(
                    event_id,
                    StoredIdentity {
                        stream_id,
                        stream_version,
                        position: Position(position as u64),
                        event_type: row.try_get("event_type")?,
                        schema_version: schema_version as u32,
                        payload: Payload::trusted(row.try_get::<String, _>("payload")?),
                    },
                );
            }
        }
    }
    Ok((versions, stored))
}

/// Writes the new events and notifies subscribers, in one statement; returns
/// the positions drawn, in the order of `rows`, or `None` when an event id
/// was stored already (the caller then rolls back and checks every id).
///
/// Positions come from the sequence row by row in `ord` order (the sorted
/// subquery feeds nextval in that order), so within an append they grow with
/// the stream version. Under the writer lock nobody else draws in between, so
/// they are also consecutive and above every committed position.
async fn write(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[NewRow<'_>],
) -> Result<Option<Vec<Position>>, StoreError> {
    let n = rows.len();
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
    for row in rows {
        event_id.push(row.event.event_id);
        stream_id.push(row.stream_id);
        stream_version.push(row.stream_version as i64);
        event_type.push(row.event.event_type.as_str());
        schema_version.push(row.event.schema_version as i32);
        event_time.push(row.event.event_time);
        correlation_id.push(row.event.metadata.correlation_id);
        causation_id.push(row.event.metadata.causation_id);
        traceparent.push(row.event.metadata.traceparent.as_deref());
        // Sent as text; the `json` column keeps these exact bytes.
        payload.push(row.event.payload.as_str());
    }
    let drawn: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(
        "WITH new AS MATERIALIZED ( \
             SELECT nextval('event_position_seq') AS position, u.* FROM ( \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], \
                                      $6::timestamptz[], $7::uuid[], $8::uuid[], $9::text[], $10::text[]) \
                     WITH ORDINALITY AS r(id, s, v, t, sv, et, c, ca, tp, pl, ord) \
                 ORDER BY ord) u), \
         inserted AS ( \
             INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, \
                                 event_time, correlation_id, causation_id, traceparent, payload) \
             SELECT position, id, s, v, t, sv, et, c, ca, tp, pl::json FROM new), \
         notified AS (SELECT pg_notify('sentinel_events', max(position)::text) FROM new) \
         SELECT position FROM new, notified ORDER BY ord",
    )
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
    .fetch_all(&mut **tx)
    .await;
    match drawn {
        Ok(drawn) => Ok(Some(
            drawn.into_iter().map(|p| Position(p as u64)).collect(),
        )),
        // A plain INSERT is cheaper than ON CONFLICT's speculative insertion
        // (measured); a stored id is rare, and this error is its signal.
        Err(sqlx::Error::Database(e))
            if matches!(e.constraint(), Some(EVENT_ID_KEY | STREAM_VERSION_KEY)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
