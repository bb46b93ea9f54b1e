//! The PostgreSQL backend of the event log (the default).
//!
//! Writes go through one group-commit writer task per process
//! ([`writer`]); reads and subscriptions go straight to the pool
//! ([`reader`], [`subscription`]). Gap-safety comes from the writer lock the
//! writer takes in every append transaction: see `docs/adr/0001-gap-safe-global-order.md`.

pub mod keys;
mod reader;
mod subscription;
pub mod verify;
mod writer;

use crate::AppendError;
use crate::error::StoreError;
use crate::model::{AppendOutcome, AppendRequest, Position, RecordedEvent, StreamVersion};
use crate::store::{EventStore, EventSubscription};
use crate::trust::CheckpointPolicy;
use crate::trust::chain::EventContent;
use crate::trust::shred::MasterKey;
use crate::upcast::Upcasters;
use keys::{KeyRing, KeyRingOptions};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use reader::PgReader;

/// Every migration of the product (event log and read models), embedded.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The channel on which every append transaction notifies its commit (the
/// literal is repeated in the writer's SQL, which must be a literal); the
/// payload is the highest position it wrote.
pub const NOTIFY_CHANNEL: &str = "sentinel_events";

/// How long a request waits for a pooled connection before it is told the
/// database is unavailable. sqlx's default (30 s) keeps retrying a refused
/// connection for that long, so an ingest would hang for 30 s while the
/// database restarts instead of answering 503 with `Retry-After`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Pool options every service uses for the log: at most `max_connections`,
/// fail fast ([`ACQUIRE_TIMEOUT`]) when the database is away, and check an
/// idle connection before handing it out, so connections that died with a
/// database restart are dropped rather than failing the next request.
/// Sessions run with JIT off ([`with_jit_off`]).
pub fn pool_options(max_connections: u32) -> sqlx::postgres::PgPoolOptions {
    with_jit_off(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true),
    )
}

/// Turns PostgreSQL's JIT compilation off in every session of the pool.
/// The planner's cost estimate of a many-stream read (`read_streams` for a
/// batch's customers) or of a large multi-row write passes `jit_above_cost`,
/// and compiling such a statement with LLVM costs more than running it: under
/// batch ingest, LLVM took about 17% of PostgreSQL's CPU. The log's statements
/// are all short index work; none gains from JIT.
pub fn with_jit_off(options: sqlx::postgres::PgPoolOptions) -> sqlx::postgres::PgPoolOptions {
    options.after_connect(|conn, _| {
        Box::pin(async move {
            sqlx::Executor::execute(conn, "SET jit = off").await?;
            Ok(())
        })
    })
}

/// A hook run inside every append transaction after its events are written
/// and before it commits; it returns how long to stay in the open
/// transaction. For fault-injection tests only.
pub type BeforeCommitHook = Arc<dyn Fn() -> Duration + Send + Sync>;

/// Tuning and test knobs of [`PgEventStore`].
#[derive(Clone)]
pub struct PgStoreOptions {
    /// Most events one group commit writes in one transaction.
    pub max_batch_events: usize,
    /// Append calls that may wait for the writer; past it callers wait too
    /// (back-pressure), and the command side answers 503.
    pub queue_capacity: usize,
    /// Take the cross-process writer lock in each append transaction. This
    /// is what makes the global order gap-safe; `false` exists only so a test
    /// can show the anomaly it prevents. Never turn it off in production.
    pub writer_lock: bool,
    /// See [`BeforeCommitHook`].
    pub before_commit: Option<BeforeCommitHook>,
    /// Stream heads the writer remembers, so a hot stream's version needs
    /// no look-up. The cache only ever lags the log (it learns after
    /// commit), and a lagging head is caught by the `(stream_id,
    /// stream_version)` index or a refused version, both of which send the
    /// batch down the fully checked path: other processes writing the same
    /// streams stay correct.
    pub stream_head_cache: usize,
    /// Most events one subscription read fetches.
    pub subscription_batch: usize,
    /// A subscription re-reads the log this long after the last wake-up even
    /// without a notification: a safety net for a notification lost with a
    /// dropped connection, not the way new events are found.
    pub subscription_safety_net: Duration,
    /// Signed checkpoints of the hash chain (docs/trust.md). `None` (the
    /// default, for tests and tools) still chains every event, and signs
    /// nothing; services run with [`CheckpointPolicy::from_env`].
    pub checkpoints: Option<CheckpointPolicy>,
    /// The master key of crypto-shredding's key ring ([`keys`]). `None`
    /// (the default) loads it on first use the way services do
    /// (`SENTINEL_MASTER_KEY`, `..._FILE`, else a development key generated
    /// into `.sentinel/keys`, with a warning); tests may give one.
    pub master_key: Option<Arc<MasterKey>>,
    /// The key ring's cache.
    pub key_ring: KeyRingOptions,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        PgStoreOptions {
            max_batch_events: 4096,
            queue_capacity: 4096,
            writer_lock: true,
            before_commit: None,
            stream_head_cache: 100_000,
            subscription_batch: 2048,
            subscription_safety_net: Duration::from_secs(5),
            checkpoints: None,
            master_key: None,
            key_ring: KeyRingOptions::default(),
        }
    }
}

impl std::fmt::Debug for PgStoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStoreOptions")
            .field("max_batch_events", &self.max_batch_events)
            .field("queue_capacity", &self.queue_capacity)
            .field("writer_lock", &self.writer_lock)
            .field("before_commit", &self.before_commit.is_some())
            .field("stream_head_cache", &self.stream_head_cache)
            .field("subscription_batch", &self.subscription_batch)
            .field("subscription_safety_net", &self.subscription_safety_net)
            .field("checkpoints", &self.checkpoints)
            .field("master_key", &self.master_key)
            .field("key_ring", &self.key_ring)
            .finish()
    }
}

/// The event log in PostgreSQL. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct PgEventStore {
    reader: PgReader,
    writer: mpsc::Sender<writer::WriteJob>,
    options: Arc<PgStoreOptions>,
    /// The LISTEN connection every subscription shares, started on first use.
    notifier: Arc<std::sync::OnceLock<subscription::Notifier>>,
    /// Crypto-shredding's data keys, set up on first use.
    keys: Arc<std::sync::OnceLock<Arc<KeyRing>>>,
}

impl PgEventStore {
    /// A store over `pool` with default options and no upcasters. The pool
    /// must point at a database migrated with [`MIGRATOR`].
    pub fn new(pool: PgPool) -> Self {
        Self::with_options(pool, Upcasters::default(), PgStoreOptions::default())
    }

    /// A store that signs checkpoints with `policy` (what services run).
    pub fn signing(pool: PgPool, policy: CheckpointPolicy) -> Self {
        Self::with_options(
            pool,
            Upcasters::default(),
            PgStoreOptions {
                checkpoints: Some(policy),
                ..PgStoreOptions::default()
            },
        )
    }

    /// Starts the group-commit writer task; needs a tokio runtime.
    pub fn with_options(pool: PgPool, upcasters: Upcasters, options: PgStoreOptions) -> Self {
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let options = Arc::new(options);
        tokio::spawn(writer::run(pool.clone(), rx, options.clone()));
        PgEventStore {
            reader: PgReader::new(pool, Arc::new(upcasters)),
            writer: tx,
            options,
            notifier: Arc::new(std::sync::OnceLock::new()),
            keys: Arc::new(std::sync::OnceLock::new()),
        }
    }

    pub fn pool(&self) -> &PgPool {
        self.reader.pool()
    }

    /// The key ring of crypto-shredding over this store's database: the
    /// configured master key (or the one in the options), loaded once.
    pub fn keys(&self) -> Result<Arc<KeyRing>, StoreError> {
        if let Some(ring) = self.keys.get() {
            return Ok(ring.clone());
        }
        let (master, previous) = match &self.options.master_key {
            Some(master) => (master.clone(), None),
            None => (
                keys::configured_master()?,
                keys::configured_previous_master()?,
            ),
        };
        let ring = Arc::new(
            KeyRing::new(self.pool().clone(), master, self.options.key_ring.clone())
                .with_previous(previous),
        );
        Ok(self.keys.get_or_init(|| ring).clone())
    }

    /// Append calls waiting for the writer right now.
    pub fn queue_depth(&self) -> usize {
        self.writer.max_capacity() - self.writer.capacity()
    }
}

#[async_trait::async_trait]
impl EventStore for PgEventStore {
    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Result<AppendOutcome, AppendError>>, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        // The chain's content digests, here on the caller's task (callers
        // run in parallel; the writer under its lock only links them).
        let digests = requests.iter().map(content_digests).collect();
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::WriteJob {
                requests,
                digests,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.reader
            .read_stream(stream_id, from_version, limit)
            .await
    }

    async fn read_streams(
        &self,
        streams: &[(&str, StreamVersion)],
        limit_per_stream: usize,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        self.reader.read_streams(streams, limit_per_stream).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.reader.read_all(after, limit).await
    }

    async fn head_position(&self) -> Result<Position, StoreError> {
        self.reader.head_position().await
    }

    async fn subscribe_all(&self, after: Position) -> Result<EventSubscription, StoreError> {
        let notifier = self
            .notifier
            .get_or_init(|| subscription::Notifier::start(self.reader.pool().clone()));
        subscription::subscribe(self.reader.clone(), notifier, after, &self.options).await
    }

    fn key_ring(&self) -> Result<Arc<KeyRing>, StoreError> {
        self.keys()
    }
}

/// The content digest of each event of `request` (`trust::chain`).
fn content_digests(request: &AppendRequest) -> Vec<crate::trust::Hash> {
    request
        .events
        .iter()
        .map(|e| {
            EventContent {
                event_id: e.event_id,
                stream_id: &request.stream_id,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                event_time_micros: e.event_time.timestamp_micros(),
                correlation_id: e.metadata.correlation_id,
                causation_id: e.metadata.causation_id,
                traceparent: e.metadata.traceparent.as_deref(),
                payload: e.payload.as_str().as_bytes(),
            }
            .digest()
        })
        .collect()
}
