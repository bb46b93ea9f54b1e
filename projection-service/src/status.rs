//! What each projector instance reports: its state, checkpoint, the log's
//! head, lag in events and seconds, dead letters. Kept in memory by the
//! runners, published about once a second to `projection_status` (for the
//! query API) and to Prometheus gauges.

use crate::apply::DeadLetterPolicy;
use crate::partition::Partition;
use chrono::{DateTime, Utc};
use event_store::{EventStore, Position};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Following the log.
    Live,
    /// Building fresh tables from the start of the log.
    Rebuilding,
    /// Not running (shut down, or its tables now belong to another version).
    Stopped,
    /// Stopped on an error (a dead letter under the `stop` policy), or
    /// retrying after one (the database is away).
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Rebuilding => "rebuilding",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serving the queries, or building their replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Live,
    Rebuild,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Live => "live",
            Role::Rebuild => "rebuild",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProjectorStatus {
    pub projection: &'static str,
    pub role: Role,
    pub partition: Partition,
    pub version: u32,
    pub state: State,
    pub checkpoint: u64,
    pub policy: DeadLetterPolicy,
    pub dead_letters: u64,
    pub last_error: Option<String>,
}

/// The status of every projector of this process, shared by its runners.
#[derive(Clone, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<BTreeMap<Key, ProjectorStatus>>>,
}

/// A runner: one projector, in one role, over one partition (a process may
/// run several partitions of a projector, `SENTINEL_LOCAL_PARTITIONS`).
type Key = (&'static str, Role, Partition);

impl StatusBoard {
    pub fn set(&self, status: ProjectorStatus) {
        self.lock()
            .insert((status.projection, status.role, status.partition), status);
    }

    /// Changes one runner's entry, if it has one.
    pub fn update(
        &self,
        projection: &'static str,
        role: Role,
        partition: Partition,
        f: impl FnOnce(&mut ProjectorStatus),
    ) {
        if let Some(status) = self.lock().get_mut(&(projection, role, partition)) {
            f(status);
        }
    }

    pub fn remove(&self, projection: &'static str, role: Role, partition: Partition) {
        self.lock().remove(&(projection, role, partition));
    }

    pub fn snapshot(&self) -> Vec<ProjectorStatus> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, ProjectorStatus>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A status with the log's head and the lag it implies.
#[derive(Debug, Clone)]
pub struct Reported {
    pub status: ProjectorStatus,
    pub head: u64,
    pub lag_events: u64,
    pub lag_seconds: f64,
}

/// Adds head and lag to every status. Lag in seconds is how long the oldest
/// event not yet applied has been in the log (0 when caught up).
pub async fn measure(
    board: &StatusBoard,
    store: &dyn EventStore,
) -> Result<Vec<Reported>, event_store::StoreError> {
    let head = store.head_position().await?.0;
    let now = Utc::now();
    let mut out = Vec::new();
    for status in board.snapshot() {
        let lag_events = head.saturating_sub(status.checkpoint);
        let lag_seconds = if lag_events == 0 {
            0.0
        } else {
            let oldest: Option<DateTime<Utc>> = store
                .read_all(Position(status.checkpoint), 1)
                .await?
                .first()
                .map(|e| e.recorded_time);
            oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
        };
        out.push(Reported {
            status,
            head,
            lag_events,
            lag_seconds,
        });
    }
    Ok(out)
}

/// Writes the reports to `projection_status` and the Prometheus gauges.
pub async fn publish(pool: &PgPool, reports: &[Reported]) -> Result<(), sqlx::Error> {
    for r in reports {
        let s = &r.status;
        let labels = [
            ("projection", s.projection.to_owned()),
            ("role", s.role.as_str().to_owned()),
            ("partition", s.partition.to_string()),
        ];
        metrics::gauge!("sentinel_projection_lag_events", &labels).set(r.lag_events as f64);
        metrics::gauge!("sentinel_projection_lag_seconds", &labels).set(r.lag_seconds);
        metrics::gauge!("sentinel_projection_checkpoint", &labels).set(s.checkpoint as f64);
        metrics::gauge!("sentinel_projection_head").set(r.head as f64);
        for state in [
            State::Live,
            State::Rebuilding,
            State::Stopped,
            State::Failed,
        ] {
            let mut with_state = labels.to_vec();
            with_state.push(("state", state.as_str().to_owned()));
            metrics::gauge!("sentinel_projection_state", &with_state).set(if state == s.state {
                1.0
            } else {
                0.0
            });
        }
        sqlx::query(
            "INSERT INTO projection_status (projection, role, partition_index, partition_count, \
               version, state, checkpoint, head, lag_events, lag_seconds, dead_letter_policy, \
               dead_letters, last_error, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now()) \
             ON CONFLICT (projection, role, partition_count, partition_index) DO UPDATE SET \
               version = EXCLUDED.version, state = EXCLUDED.state, \
               checkpoint = EXCLUDED.checkpoint, head = EXCLUDED.head, \
               lag_events = EXCLUDED.lag_events, lag_seconds = EXCLUDED.lag_seconds, \
               dead_letter_policy = EXCLUDED.dead_letter_policy, \
               dead_letters = EXCLUDED.dead_letters, last_error = EXCLUDED.last_error, \
               updated_at = now()",
        )
        .bind(s.projection)
        .bind(s.role.as_str())
        .bind(s.partition.index as i32)
        .bind(s.partition.count as i32)
        .bind(s.version as i32)
        .bind(s.state.as_str())
        .bind(s.checkpoint as i64)
        .bind(r.head as i64)
        .bind(r.lag_events as i64)
        .bind(r.lag_seconds)
        .bind(s.policy.to_string())
        .bind(s.dead_letters as i64)
        .bind(&s.last_error)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Measures and publishes every `every` until `stop` fires; a final report
/// on the way out so the table shows the stopped states.
pub async fn report_until(
    board: StatusBoard,
    store: Arc<dyn EventStore>,
    pool: PgPool,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match measure(&board, &*store).await {
            Ok(reports) => {
                if let Err(e) = publish(&pool, &reports).await {
                    tracing::warn!(error = %e, "could not publish projection status");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not measure projection lag"),
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}
