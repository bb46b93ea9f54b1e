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
//! The writer also keeps the log's hash chain (`crate::trust`, docs/trust.md):
//! under the same lock that orders positions it chains each new event onto
//! the one before it in the global order, whichever process wrote that, and
//! signs a checkpoint every N events or T seconds in the same transaction.
//! It remembers the head it left and lets the INSERT check it, so a lone
//! writer pays no extra round trip for the chain.
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
use crate::trust::chain::{self, GENESIS, Hash, Link};
use crate::trust::{Checkpoint, CheckpointPolicy};
use chrono::{DateTime, Utc};
use lru::LruCache;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// Each event's content digest (`trust::chain`), computed by the caller
    /// before queueing, in the shape of `requests`.
    pub digests: Vec<Vec<Hash>>,
    pub reply: oneshot::Sender<BatchReply>,
}

pub(crate) async fn run(
    pool: PgPool,
    mut jobs: mpsc::Receiver<WriteJob>,
    options: Arc<PgStoreOptions>,
) {
    let capacity = NonZeroUsize::new(options.stream_head_cache).unwrap_or(NonZeroUsize::MIN);
    let mut heads = LruCache::new(capacity);
    let mut chain = ChainState::default();
    metrics::gauge!("sentinel_append_queue_capacity").set(jobs.max_capacity() as f64);
    loop {
        // Events this writer committed and no checkpoint covers yet are
        // sealed when the log stays quiet for the checkpoint interval.
        let seal_at = match (&options.checkpoints, chain.unsealed_since) {
            (Some(policy), Some(since)) => Some(since + policy.every),
            _ => None,
        };
        let first = match seal_at {
            Some(at) => match tokio::time::timeout_at(at.into(), jobs.recv()).await {
                Ok(job) => job,
                Err(_) => {
                    seal(&pool, &options, &mut chain).await;
                    continue;
                }
            },
            None => jobs.recv().await,
        };
        let Some(first) = first else {
            // Every handle to the store is gone: seal what is unsealed,
            // unless the service already closed the pool on its way out
            // (then the next writer's first checkpoint covers the tail: a
            // checkpoint signs the chain up to its position).
            if chain.unsealed_since.is_some() {
                if pool.is_closed() {
                    tracing::info!("the log's tail is left unsealed: the pool closed first");
                } else {
                    seal(&pool, &options, &mut chain).await;
                }
            }
            break;
        };
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
        let unavailable = write_batch(&pool, batch, &options, &mut heads, &mut chain).await;
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
    chain: &mut ChainState,
) -> Option<StoreError> {
    let requests: Vec<&AppendRequest> = batch.iter().flat_map(|j| j.requests.iter()).collect();
    let digests: Vec<&[Hash]> = batch
        .iter()
        .flat_map(|j| j.digests.iter().map(Vec::as_slice))
        .collect();
    match commit(pool, &requests, &digests, options, heads, chain).await {
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
                let digests: Vec<&[Hash]> = job.digests.iter().map(Vec::as_slice).collect();
                let _ = job
                    .reply
                    .send(commit(pool, &requests, &digests, options, heads, chain).await);
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
    /// Its content digest (`trust::chain::EventContent`).
    digest: &'a Hash,
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
/// up, again (in a new transaction) with every id looked up. If another
/// process moved the log since this writer last saw its head, the attempt
/// is redone with the head read afresh.
async fn commit(
    pool: &PgPool,
    requests: &[&AppendRequest],
    digests: &[&[Hash]],
    options: &PgStoreOptions,
    heads: &mut Heads,
    chain: &mut ChainState,
) -> Result<Vec<Result<AppendOutcome, AppendError>>, StoreError> {
    let mut ids = IdCheck::Optimistic;
    let mut moved = 0;
    let outcome = loop {
        match attempt(pool, requests, digests, options, ids, heads, chain).await {
            Ok(Attempt::Committed(results)) => break Ok(results),
            Ok(Attempt::RedoChecked) if ids == IdCheck::Optimistic => {
                // The rolled-back attempt may have drawn positions.
                chain.head = None;
                ids = IdCheck::Checked;
            }
            Ok(Attempt::RedoChecked) => {
                break Err(StoreError::Database(
                    "the log changed under the writer lock".into(),
                ));
            }
            Ok(Attempt::ChainMoved) if moved < 2 => {
                moved += 1;
                chain.moved();
            }
            Ok(Attempt::ChainMoved) => {
                break Err(StoreError::Database(
                    "the log's head kept moving under the writer lock (a writer without the lock?)"
                        .into(),
                ));
            }
            Err(e) => break Err(e),
        }
    };
    if outcome.is_err() {
        // Whatever happened, forget: a forgotten head costs one look-up.
        heads.clear();
        chain.head = None;
    }
    outcome
}

/// How one attempt ended.
enum Attempt {
    Committed(Vec<Result<AppendOutcome, AppendError>>),
    /// Rolled back: an event id was stored already, or a version was
    /// refused; redo with every id looked up.
    RedoChecked,
    /// Rolled back: the log's head was not where this writer thought.
    ChainMoved,
}

/// One append transaction in four round trips: begin (+ lock), look up,
/// write, commit (the chain adds none while this writer's remembered head
/// holds). Round trips are what an append costs on a fast disk.
async fn attempt(
    pool: &PgPool,
    requests: &[&AppendRequest],
    digests: &[&[Hash]],
    options: &PgStoreOptions,
    ids: IdCheck,
    heads: &mut Heads,
    chain: &mut ChainState,
) -> Result<Attempt, StoreError> {
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
    let (plans, rows) = plan(requests, digests, &mut versions, stored);
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
        return Ok(Attempt::RedoChecked);
    }
    let mut sealed = None;
    let mut new_head = None;
    let positions = if rows.is_empty() {
        Vec::new()
    } else {
        // Under the lock: the head this batch chains onto (remembered from
        // this writer's last commit, or read; the INSERT checks it).
        let head = match chain.remembered() {
            Some(head) => head,
            None => read_head(&mut tx).await?,
        };
        let links = link(&rows, &head, options.checkpoints.as_ref());
        match write(&mut tx, &rows, &head, &links, options.writer_lock).await? {
            Written::Positions(positions) => {
                sealed = links.checkpoint.as_ref().map(|c| (c.position, c.signed_at));
                new_head = Some(ChainHead {
                    last_position: links.last_position,
                    last_hash: Some(links.last_hash),
                    next_position: links.last_position + 1,
                    checkpoint: sealed.or(head.checkpoint),
                });
                positions
            }
            // Dropping `tx` rolls it back.
            Written::Duplicate => return Ok(Attempt::RedoChecked),
            Written::ChainMoved => return Ok(Attempt::ChainMoved),
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
    if let Some(head) = new_head {
        chain.committed(head, sealed.is_some());
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

    Ok(Attempt::Committed(
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
    digests: &[&'a [Hash]],
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
        .zip(digests)
        .map(|(request, digests)| {
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
            for (event, digest) in request.events.iter().zip(digests.iter()) {
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
                    digest,
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

/// What the INSERT did.
enum Written {
    /// The positions drawn, in the order of the rows.
    Positions(Vec<Position>),
    /// An event id (or stream version) was stored already.
    Duplicate,
    /// The log's head was not the one the chain was computed from.
    ChainMoved,
}

/// Writes the new events (and the checkpoint, when one is due) and notifies
/// subscribers, in one statement; returns the positions drawn, in the order
/// of `rows`.
///
/// Positions come from the sequence row by row in `ord` order (the sorted
/// subquery feeds nextval in that order), so within an append they grow with
/// the stream version. Under the writer lock nobody else draws in between, so
/// they are also consecutive and above every committed position: exactly the
/// ones `link` predicted and hashed. The statement checks that (the head it
/// chained onto is the log's newest event, each drawn position is the
/// predicted one) and raises `event_chain_moved()` (SQLSTATE SNCH1) if not,
/// which costs nothing when it holds. With the writer lock off (a test
/// showing what the lock prevents) there is no order to chain along, and
/// nothing is checked.
async fn write(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[NewRow<'_>],
    head: &ChainHead,
    links: &Links,
    enforce: bool,
) -> Result<Written, StoreError> {
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
        // Whole microseconds, as hashed (PostgreSQL keeps no more).
        event_time.push(chain::to_micros(row.event.event_time));
        correlation_id.push(row.event.metadata.correlation_id);
        causation_id.push(row.event.metadata.causation_id);
        traceparent.push(row.event.metadata.traceparent.as_deref());
        // Sent as text; the `json` column keeps these exact bytes.
        payload.push(row.event.payload.as_str());
    }
    let prev_hash: Vec<&[u8]> = links.prev.iter().map(|h| h.as_slice()).collect();
    let hash: Vec<&[u8]> = links.hash.iter().map(|h| h.as_slice()).collect();
    let cp = links.checkpoint.as_ref();
    let drawn: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(
        "WITH head AS MATERIALIZED ( \
             SELECT coalesce(h.position, 0) AS position, h.hash FROM (SELECT 1) one \
             LEFT JOIN LATERAL (SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) h ON true), \
         new AS MATERIALIZED ( \
             SELECT nextval('event_position_seq') AS position, u.* FROM ( \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], \
                                      $6::timestamptz[], $7::uuid[], $8::uuid[], $9::text[], $10::text[], \
                                      $11::bytea[], $12::bytea[]) \
                     WITH ORDINALITY AS r(id, s, v, t, sv, et, c, ca, tp, pl, ph, h, ord) \
                 ORDER BY ord) u), \
         inserted AS ( \
             INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, \
                                 event_time, recorded_time, correlation_id, causation_id, traceparent, payload, \
                                 prev_hash, hash) \
             SELECT CASE WHEN NOT $13 OR (head.position = $14 AND head.hash IS NOT DISTINCT FROM $15 \
                                          AND new.position = $16 + new.ord - 1) \
                         THEN new.position ELSE event_chain_moved() END, \
                    id, s, v, t, sv, et, $17, c, ca, tp, pl::json, ph, h FROM new, head), \
         sealed AS ( \
             INSERT INTO event_checkpoints (position, chain_hash, signed_at, key_id, public_key, signature) \
             SELECT $18, $19, $20, $21, $22, $23 WHERE $18::bigint IS NOT NULL), \
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
    .bind(&prev_hash)
    .bind(&hash)
    .bind(enforce)
    .bind(head.last_position as i64)
    .bind(head.last_hash.as_ref().map(|h| h.as_slice()))
    .bind(head.next_position as i64)
    .bind(links.recorded_time)
    .bind(cp.map(|c| c.position as i64))
    .bind(cp.map(|c| c.chain_hash.as_slice()))
    .bind(cp.map(|c| c.signed_at))
    .bind(cp.map(|c| c.key_id.as_str()))
    .bind(cp.map(|c| c.public_key.as_slice()))
    .bind(cp.map(|c| c.signature.as_slice()))
    .fetch_all(&mut **tx)
    .await;
    match drawn {
        Ok(drawn) => Ok(Written::Positions(
            drawn.into_iter().map(|p| Position(p as u64)).collect(),
        )),
        // A plain INSERT is cheaper than ON CONFLICT's speculative insertion
        // (measured); a stored id is rare, and this error is its signal.
        Err(sqlx::Error::Database(e))
            if matches!(e.constraint(), Some(EVENT_ID_KEY | STREAM_VERSION_KEY)) =>
        {
            Ok(Written::Duplicate)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(CHAIN_MOVED) => {
            Ok(Written::ChainMoved)
        }
        Err(e) => Err(e.into()),
    }
}

/// The SQLSTATE of `event_chain_moved()` (migration 20261207000001).
const CHAIN_MOVED: &str = "SNCH1";

/// The log's head as the writer needs it, read under the writer lock.
#[derive(Debug, Clone, Copy)]
struct ChainHead {
    /// The newest event's position (0: the log is empty).
    last_position: u64,
    /// Its hash; `None` when it predates the chain (or the log is empty).
    last_hash: Option<Hash>,
    /// The position the sequence hands out next.
    next_position: u64,
    /// The newest checkpoint: its position and when it was signed.
    checkpoint: Option<(u64, DateTime<Utc>)>,
}

/// What the writer remembers of the chain between its commits.
#[derive(Default)]
struct ChainState {
    /// The head as this writer's last commit left it. Only this writer's
    /// own commits update it: another process writing is caught by the
    /// INSERT's check, and the head is then read afresh.
    head: Option<ChainHead>,
    /// After the log moved under it (another process writes too), the
    /// writer reads the head in every transaction for a while rather than
    /// failing a whole INSERT each time.
    read_until: Option<Instant>,
    /// Since when events this writer committed are not covered by a
    /// checkpoint (sealed by the timer if the log goes quiet).
    unsealed_since: Option<Instant>,
}

/// How long after the log moved under it a writer reads the head each time.
const READ_HEAD_FOR: Duration = Duration::from_secs(1);

impl ChainState {
    fn remembered(&self) -> Option<ChainHead> {
        match self.read_until {
            Some(until) if Instant::now() < until => None,
            _ => self.head,
        }
    }

    fn moved(&mut self) {
        self.head = None;
        self.read_until = Some(Instant::now() + READ_HEAD_FOR);
    }

    fn committed(&mut self, head: ChainHead, sealed: bool) {
        self.head = Some(head);
        if sealed {
            self.unsealed_since = None;
        } else if self.unsealed_since.is_none() {
            self.unsealed_since = Some(Instant::now());
        }
    }
}

/// Reads the head under the writer lock: the newest event, the sequence's
/// next position, the newest checkpoint. One round trip, three index probes.
async fn read_head(tx: &mut Transaction<'_, Postgres>) -> Result<ChainHead, StoreError> {
    let row = sqlx::query(
        "SELECT s.last_value, s.is_called, coalesce(h.position, 0) AS position, h.hash, \
                c.position AS cp_position, c.signed_at \
         FROM event_position_seq s \
         LEFT JOIN LATERAL (SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) h ON true \
         LEFT JOIN LATERAL (SELECT position, signed_at FROM event_checkpoints \
                            ORDER BY position DESC LIMIT 1) c ON true",
    )
    .fetch_one(&mut **tx)
    .await?;
    let last_value: i64 = row.try_get("last_value")?;
    let is_called: bool = row.try_get("is_called")?;
    let last_position: i64 = row.try_get("position")?;
    let hash: Option<Vec<u8>> = row.try_get("hash")?;
    let cp_position: Option<i64> = row.try_get("cp_position")?;
    let signed_at: Option<DateTime<Utc>> = row.try_get("signed_at")?;
    Ok(ChainHead {
        last_position: last_position as u64,
        last_hash: hash.as_deref().and_then(chain::hash_from_slice),
        next_position: if is_called {
            last_value as u64 + 1
        } else {
            last_value as u64
        },
        checkpoint: cp_position.zip(signed_at).map(|(p, t)| (p as u64, t)),
    })
}

/// The chain links of a batch about to be written, and its checkpoint.
struct Links {
    prev: Vec<Hash>,
    hash: Vec<Hash>,
    recorded_time: DateTime<Utc>,
    last_position: u64,
    last_hash: Hash,
    checkpoint: Option<Checkpoint>,
}

/// Chains `rows` onto `head`: the positions they will get (the sequence's
/// next ones, under the lock), one recorded time for the batch, each
/// event's hash over its predecessor's; and signs the new head when a
/// checkpoint is due. One 128-byte SHA-256 per event (the content digests
/// were computed by the callers).
fn link(rows: &[NewRow<'_>], head: &ChainHead, policy: Option<&CheckpointPolicy>) -> Links {
    let now = Utc::now();
    let recorded_time = chain::to_micros(now);
    let mut prev = head.last_hash.unwrap_or(GENESIS);
    let mut links = Links {
        prev: Vec::with_capacity(rows.len()),
        hash: Vec::with_capacity(rows.len()),
        recorded_time,
        last_position: head.last_position,
        last_hash: prev,
        checkpoint: None,
    };
    for (i, row) in rows.iter().enumerate() {
        let position = head.next_position + i as u64;
        let hash = Link {
            prev_hash: prev,
            position,
            stream_version: row.stream_version,
            recorded_time_micros: recorded_time.timestamp_micros(),
        }
        .hash(row.digest);
        links.prev.push(prev);
        links.hash.push(hash);
        links.last_position = position;
        prev = hash;
    }
    links.last_hash = prev;
    if let Some(policy) = policy
        && policy.due(links.last_position, head.checkpoint, now)
    {
        links.checkpoint = Some(policy.signer.sign(links.last_position, prev, now));
    }
    links
}

/// Seals the log's head with a checkpoint in a transaction of its own,
/// when the log went quiet with events this writer wrote unsealed (another
/// writer may have sealed them meanwhile: then nothing is written).
async fn seal(pool: &PgPool, options: &PgStoreOptions, chain: &mut ChainState) {
    let Some(policy) = &options.checkpoints else {
        return;
    };
    let result: Result<(), StoreError> = async {
        let mut tx = pool.begin_with(BEGIN_LOCKED).await?;
        let head = read_head(&mut tx).await?;
        let Some(hash) = head.last_hash else {
            return Ok(());
        };
        if head.checkpoint.is_some_and(|(p, _)| p >= head.last_position) {
            return Ok(());
        }
        let cp = policy.signer.sign(head.last_position, hash, Utc::now());
        sqlx::query(
            "INSERT INTO event_checkpoints (position, chain_hash, signed_at, key_id, public_key, signature) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (position) DO NOTHING",
        )
        .bind(cp.position as i64)
        .bind(cp.chain_hash.as_slice())
        .bind(cp.signed_at)
        .bind(&cp.key_id)
        .bind(cp.public_key.as_slice())
        .bind(cp.signature.as_slice())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            chain.unsealed_since = None;
            // The checkpoint table moved; the remembered head would let the
            // next batch sign again too early, which is harmless, but read it.
            chain.head = None;
        }
        Err(error) => {
            tracing::warn!(%error, "sealing the log with a checkpoint failed; will retry");
            chain.unsealed_since = Some(Instant::now());
        }
    }
}
