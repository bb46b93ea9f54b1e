//! Live alerts: one background poller per process pushes every alert the
//! alerts projector has just projected to every `alertRaised` subscriber.
//!
//! It polls the alerts projector's checkpoint (`rm_alerts.checkpoint`, one
//! row, written in the same transaction as the alert rows) every
//! `SENTINEL_ALERT_POLL_MS` (200 ms). When the checkpoint moves from `c` to
//! `c'`, the `AlertRaised` events in `(c, c']` are read from the log (so no
//! index on the alerts table is needed) and their rows, all committed by
//! then, are read by id and broadcast. An alert therefore reaches its
//! subscribers within one poll interval of being projected. Without
//! subscribers it only follows the checkpoint (one single-row query per
//! tick); after a jump of more than `MAX_BACKLOG` events (a rebuild, an
//! outage) it skips ahead: subscribers want what is new, not a backlog.

use event_store::{EventStore, Position};
use read_models::alerts::{ALERTS_BY_ID, AlertRow};
use read_models::schema;
use serde::Deserialize;
use sqlx::{AssertSqlSafe, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// Most log events one catch-up reads.
const MAX_BACKLOG: u64 = 100_000;
/// Alerts waiting per subscriber before the slowest starts missing some.
const CAPACITY: usize = 4096;

/// The feed subscribers listen to; clones share it.
#[derive(Clone)]
pub struct AlertFeed {
    sender: broadcast::Sender<Arc<AlertRow>>,
    closed: watch::Receiver<bool>,
    close: Arc<watch::Sender<bool>>,
}

impl Default for AlertFeed {
    fn default() -> Self {
        AlertFeed::new()
    }
}

impl AlertFeed {
    pub fn new() -> AlertFeed {
        let (sender, _) = broadcast::channel(CAPACITY);
        let (close, closed) = watch::channel(false);
        AlertFeed {
            sender,
            closed,
            close: Arc::new(close),
        }
    }

    /// A new subscriber's receiver, and the signal that the feed closed.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<AlertRow>>, watch::Receiver<bool>) {
        (self.sender.subscribe(), self.closed.clone())
    }

    /// Ends every subscription (at shutdown).
    pub fn close(&self) {
        let _ = self.close.send(true);
    }

    /// Polls until `stop` fires.
    pub async fn run(
        self,
        pool: PgPool,
        store: Arc<dyn EventStore>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let sql = match checkpoint_sql() {
            Ok(sql) => sql,
            Err(e) => {
                tracing::error!(error = %e, "live alerts disabled");
                return;
            }
        };
        let mut cursor: Option<u64> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            match sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.clone()))
                .fetch_one(&pool)
                .await
            {
                Ok(checkpoint) => {
                    let checkpoint = u64::try_from(checkpoint).unwrap_or(0);
                    match cursor {
                        Some(c) if checkpoint > c && self.sender.receiver_count() > 0 => {
                            let from = c.max(checkpoint.saturating_sub(MAX_BACKLOG));
                            match self.push(&pool, &*store, from, checkpoint).await {
                                Ok(()) => cursor = Some(checkpoint),
                                Err(e) => tracing::warn!(error = %e, "live alerts: reading failed"),
                            }
                        }
                        Some(c) if checkpoint <= c => {}
                        _ => cursor = Some(checkpoint),
                    }
                }
                Err(e) => tracing::debug!(error = %e, "live alerts: no alerts checkpoint yet"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Broadcasts the alerts raised in `(after, upto]`.
    async fn push(
        &self,
        pool: &PgPool,
        store: &dyn EventStore,
        after: u64,
        upto: u64,
    ) -> anyhow::Result<()> {
        #[derive(Deserialize)]
        struct Raised {
            alert_id: Uuid,
        }
        const CHUNK: usize = 2048;
        let mut ids = Vec::new();
        let mut cursor = after;
        'read: while cursor < upto {
            let events = store.read_all(Position(cursor), CHUNK).await?;
            let full = events.len() == CHUNK;
            for e in events {
                if e.position.0 > upto {
                    break 'read;
                }
                cursor = e.position.0;
                if e.event_type == "AlertRaised"
                    && let Ok(raised) = e.payload.parse::<Raised>()
                {
                    ids.push(raised.alert_id);
                }
            }
            if !full {
                break;
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<AlertRow> = sqlx::query_as(ALERTS_BY_ID)
            .bind(&ids)
            .fetch_all(pool)
            .await?;
        rows.sort_by_key(|r| r.raised_position);
        for row in rows {
            // No receiver left is not an error.
            let _ = self.sender.send(Arc::new(row));
        }
        Ok(())
    }
}

/// `SELECT ... FROM rm_alerts.checkpoint`: the one schema-qualified name the
/// API uses (the rest go through `search_path`), built from the checked
/// projector name.
fn checkpoint_sql() -> anyhow::Result<String> {
    let name = read_models::alerts::MODEL.name;
    schema::check_name(name).map_err(anyhow::Error::msg)?;
    Ok(format!(
        "SELECT coalesce(min(position), 0)::bigint FROM {}.checkpoint",
        schema::serving(name)
    ))
}
