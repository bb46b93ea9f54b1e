//! A projector following the log: make sure its tables exist at its version
//! (rebuilding them if the version changed), then apply each batch the
//! subscription delivers, checkpoint in the same transaction.
//!
//! The checkpoint read at the start of each batch, under `FOR UPDATE`, is the
//! truth, not the runner's memory: if a rebuild swapped in tables that are
//! ahead, the events they already hold are skipped; if they are behind, the
//! runner resubscribes from their checkpoint.

use crate::apply::{self, BatchError, DeadLetterPolicy};
use crate::checkpoint::{self, Checkpoint};
use crate::partition::Partition;
use crate::projector::Projector;
use crate::rebuild::{self, RebuildError};
use crate::schema;
use crate::status::{ProjectorStatus, Role, State, StatusBoard};
use event_store::{EventStore, Position, RecordedEvent};
use futures_util::StreamExt;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long to wait before retrying after the database or the log failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct LiveProjector {
    pub projector: Arc<dyn Projector>,
    pub pool: PgPool,
    pub store: Arc<dyn EventStore>,
    pub partition: Partition,
    pub policy: DeadLetterPolicy,
    pub batch_size: usize,
    pub board: StatusBoard,
    /// Rebuild the tables (without downtime) before following the log,
    /// even if their version matches (`SENTINEL_REBUILD_ON_START`).
    pub rebuild_first: bool,
}

/// What a batch did to the runner's position.
enum Step {
    Advanced(u64),
    /// The tables are behind what we read: read again from here.
    Rewind(u64),
    /// The tables lost this partition's checkpoint (a swap from another
    /// partition layout): claim one again.
    Reclaim,
    /// The tables now belong to another version of the projector.
    VersionChanged(u32),
}

impl LiveProjector {
    fn name(&self) -> &'static str {
        self.projector.name()
    }

    fn set_state(&self, state: State, error: Option<String>) {
        self.board
            .update(self.name(), Role::Live, self.partition, |s| {
                s.state = state;
                s.last_error = error;
            });
    }

    /// Runs until `stop` fires (or the projector has to stop: a dead letter
    /// under the `stop` policy, its tables taken over by another version).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        self.board.set(ProjectorStatus {
            projection: self.name(),
            role: Role::Live,
            partition: self.partition,
            version: self.projector.version(),
            state: State::Live,
            checkpoint: 0,
            policy: self.policy,
            dead_letters: 0,
            last_error: None,
        });
        let mut cursor = loop {
            if *stop.borrow() {
                self.set_state(State::Stopped, None);
                return;
            }
            match self.prepare(&mut stop).await {
                Ok(Some(position)) => break position,
                Ok(None) => {
                    self.set_state(State::Stopped, None);
                    return;
                }
                Err(e) => {
                    tracing::warn!(projection = self.name(), error = %e, "projector cannot start yet");
                    self.set_state(State::Failed, Some(e.to_string()));
                    if wait_or_stop(&mut stop, RETRY_AFTER).await {
                        self.set_state(State::Stopped, None);
                        return;
                    }
                }
            }
        };
        self.board
            .update(self.name(), Role::Live, self.partition, |s| {
                s.checkpoint = cursor;
                s.state = State::Live;
            });
        tracing::info!(projection = self.name(), partition = %self.partition, checkpoint = cursor, "projector live");

        'subscribe: loop {
            if *stop.borrow() {
                break;
            }
            let subscription = match self.store.subscribe_all(Position(cursor)).await {
                Ok(s) => s,
                Err(e) => {
                    self.fail_and_wait(&e.to_string());
                    if wait_or_stop(&mut stop, RETRY_AFTER).await {
                        break;
                    }
                    continue;
                }
            };
            let mut batches = subscription.ready_chunks(self.batch_size.max(1));
            loop {
                let next = tokio::select! {
                    _ = stop.changed() => break 'subscribe,
                    next = batches.next() => next,
                };
                let Some(items) = next else {
                    continue 'subscribe;
                };
                let mut events: Vec<RecordedEvent> = Vec::with_capacity(items.len());
                let mut read_error = None;
                for item in items {
                    match item {
                        Ok(event) => events.push(event),
                        Err(e) => {
                            read_error = Some(e);
                            break;
                        }
                    }
                }
                if !events.is_empty() {
                    match crate::tracing_context::project(
                        self.name(),
                        &events,
                        self.apply(&events, cursor),
                    )
                    .await
                    {
                        Ok(Step::Advanced(position)) => cursor = position,
                        Ok(Step::Rewind(position)) => {
                            tracing::info!(
                                projection = self.name(),
                                from = cursor,
                                to = position,
                                "tables behind the runner: reading again"
                            );
                            cursor = position;
                            continue 'subscribe;
                        }
                        Ok(Step::Reclaim) => match self.claim().await {
                            Ok(c) => {
                                cursor = c.position;
                                continue 'subscribe;
                            }
                            Err(e) => {
                                self.fail_and_wait(&e.to_string());
                                break 'subscribe;
                            }
                        },
                        Ok(Step::VersionChanged(version)) => {
                            let why = format!(
                                "the tables now hold version {version} of {}; this process runs version {}: restart it with the new code",
                                self.name(),
                                self.projector.version()
                            );
                            tracing::warn!(projection = self.name(), "{why}");
                            self.set_state(State::Stopped, Some(why));
                            return;
                        }
                        Err(BatchError::Stopped(dead)) => {
                            let why = format!(
                                "stopped at position {} ({}): {}",
                                dead.position, dead.event_type, dead.error
                            );
                            tracing::error!(projection = self.name(), position = dead.position, error = %dead.error, "dead letter: projector stopped (policy stop)");
                            if let Err(e) = self.record_stop(&dead).await {
                                tracing::error!(projection = self.name(), error = %e, "could not record the dead letter");
                            }
                            self.set_state(State::Failed, Some(why));
                            return;
                        }
                        Err(BatchError::Sql(e)) => {
                            self.fail_and_wait(&e.to_string());
                            if wait_or_stop(&mut stop, RETRY_AFTER).await {
                                break 'subscribe;
                            }
                            continue 'subscribe;
                        }
                    }
                }
                if let Some(e) = read_error {
                    self.fail_and_wait(&e.to_string());
                    if wait_or_stop(&mut stop, RETRY_AFTER).await {
                        break 'subscribe;
                    }
                    continue 'subscribe;
                }
            }
        }
        self.set_state(State::Stopped, None);
    }

    fn fail_and_wait(&self, error: &str) {
        tracing::warn!(projection = self.name(), error, "projector retrying");
        self.set_state(State::Failed, Some(error.to_owned()));
    }

    /// Makes sure the serving tables exist at this version (creating them,
    /// or rebuilding them if another version built them), then claims this
    /// partition's checkpoint. `None`: stopped while waiting.
    async fn prepare(&self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<Option<u64>> {
        let name = self.name();
        let serving = schema::serving(name);
        let mut rebuild_first = self.rebuild_first;
        loop {
            let mut tx = self.pool.begin().await?;
            // One instance at a time decides what the schema needs.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sentinel-projector:' || $1))")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            if !schema::exists(&mut tx, &serving).await? {
                schema::create(&mut tx, &serving, &*self.projector).await?;
                checkpoint::write_layout(
                    &mut tx,
                    self.partition.count,
                    Checkpoint {
                        position: 0,
                        version: self.projector.version(),
                    },
                )
                .await?;
                tx.commit().await?;
                tracing::info!(projection = name, schema = %serving, "created read model tables");
                continue;
            }
            schema::enter(&mut tx, &serving).await?;
            let built_by: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM checkpoint")
                .fetch_one(&mut *tx)
                .await?;
            let built_by = built_by.map_or(self.projector.version(), |v| v.max(0) as u32);
            if built_by == self.projector.version() && !rebuild_first {
                let claimed = checkpoint::claim(&mut tx, self.partition, built_by).await?;
                tx.commit().await?;
                return Ok(Some(claimed.position));
            }
            tx.rollback().await?;
            tracing::info!(
                projection = name,
                from = built_by,
                to = self.projector.version(),
                "version changed: rebuilding while the old tables keep serving"
            );
            self.set_state(State::Rebuilding, None);
            let progress = |_: &rebuild::Progress| {};
            match rebuild::rebuild(
                &self.pool,
                &*self.store,
                self.projector.clone(),
                self.policy,
                rebuild::Options::default(),
                &progress,
            )
            .await
            {
                Ok(done) => {
                    rebuild_first = false;
                    tracing::info!(
                        projection = name,
                        events = done.events,
                        position = done.position,
                        "rebuilt and swapped"
                    );
                }
                // Another instance is rebuilding: wait for it to swap.
                Err(RebuildError::AlreadyRunning) => {
                    if wait_or_stop(stop, RETRY_AFTER).await {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn claim(&self) -> anyhow::Result<Checkpoint> {
        let mut tx = self.pool.begin().await?;
        schema::enter(&mut tx, &schema::serving(self.name())).await?;
        let claimed = checkpoint::claim(&mut tx, self.partition, self.projector.version()).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Applies one batch read after `cursor`.
    async fn apply(&self, events: &[RecordedEvent], cursor: u64) -> Result<Step, BatchError> {
        let started = Instant::now();
        let version = self.projector.version();
        let mut tx = self.pool.begin().await?;
        schema::enter_for_apply(&mut tx, &schema::serving(self.name())).await?;
        let Some(found) = checkpoint::lock(&mut tx, self.partition).await? else {
            return Ok(Step::Reclaim);
        };
        if found.version != version {
            return Ok(Step::VersionChanged(found.version));
        }
        if found.position < cursor {
            return Ok(Step::Rewind(found.position));
        }
        let fresh: Vec<RecordedEvent> = events
            .iter()
            .filter(|e| e.position.0 > found.position)
            .cloned()
            .collect();
        let Some(last) = fresh.last() else {
            return Ok(Step::Advanced(found.position));
        };
        let last_position = last.position.0;
        let outcome = apply::apply_batch(
            &mut tx,
            &*self.projector,
            self.partition,
            self.policy,
            &fresh,
        )
        .await?;
        checkpoint::write(
            &mut tx,
            self.partition,
            Checkpoint {
                position: last_position,
                version,
            },
        )
        .await?;
        tx.commit().await?;

        let name = self.name();
        let now = chrono::Utc::now();
        metrics::counter!("sentinel_projector_events_total", "projection" => name)
            .increment(outcome.applied as u64);
        metrics::histogram!("sentinel_projector_batch_duration_seconds", "projection" => name)
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("sentinel_projector_batch_size", "projection" => name)
            .record(fresh.len() as f64);
        let end_to_end =
            metrics::histogram!("sentinel_projection_end_to_end_seconds", "projection" => name);
        for e in &fresh {
            end_to_end.record(
                (now - e.recorded_time)
                    .num_microseconds()
                    .unwrap_or(0)
                    .max(0) as f64
                    / 1e6,
            );
        }
        if outcome.dead_lettered > 0 {
            metrics::counter!("sentinel_projection_dead_letters_total", "projection" => name)
                .increment(outcome.dead_lettered as u64);
        }
        self.board.update(name, Role::Live, self.partition, |s| {
            s.checkpoint = last_position;
            s.dead_letters += outcome.dead_lettered as u64;
            s.state = State::Live;
            s.last_error = None;
        });
        Ok(Step::Advanced(last_position))
    }

    /// Records the dead letter that stopped the projector (its batch was
    /// rolled back, so this is a transaction of its own).
    async fn record_stop(&self, dead: &apply::DeadLetter) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        apply::record_dead_letter(&mut conn, &*self.projector, dead).await?;
        metrics::counter!("sentinel_projection_dead_letters_total", "projection" => self.name())
            .increment(1);
        self.board
            .update(self.name(), Role::Live, self.partition, |s| {
                s.dead_letters += 1
            });
        Ok(())
    }
}

/// Sleeps for `delay`; true if `stop` fired meanwhile.
pub(crate) async fn wait_or_stop(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}
