//! `subscribe_all` on PostgreSQL: catch up with `read_all`, then sleep until
//! the writer's NOTIFY says something committed.
//!
//! One LISTEN connection per store (the [`Notifier`]), however many
//! subscriptions: each commit notification bumps a counter that every
//! subscription watches. A subscription marks the counter seen before each
//! read, so a commit that lands between "read found nothing" and "wait"
//! still wakes it. While catching up (full pages), the next page is fetched
//! while the consumer works through the current one.

use super::{NOTIFY_CHANNEL, PgReader, PgStoreOptions};
use crate::error::StoreError;
use crate::model::{Position, RecordedEvent};
use crate::store::EventSubscription;
use futures_util::StreamExt;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::watch;

type Page = Result<Vec<RecordedEvent>, StoreError>;

/// The store's one LISTEN connection, shared by its subscriptions. Started
/// on the first subscription; ends when the store is dropped.
pub(super) struct Notifier {
    commits: watch::Sender<u64>,
}

impl Notifier {
    pub(super) fn start(pool: PgPool) -> Notifier {
        let (commits, _) = watch::channel(0u64);
        tokio::spawn(listen(pool, commits.clone()));
        Notifier { commits }
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Wakes the listener task so it sees it is no longer wanted.
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Holds LISTEN and bumps `commits` on every notification (and after a lost
/// connection, since notifications may have been missed meanwhile).
async fn listen(pool: PgPool, commits: watch::Sender<u64>) {
    let bump = |commits: &watch::Sender<u64>| commits.send_modify(|n| *n = n.wrapping_add(1));
    // Only this task and the Notifier hold the sender; the Notifier's drop
    // leaves this one.
    while commits.sender_count() > 1 {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "event-store listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(error = %e, "event-store LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        bump(&commits);
        loop {
            // Checked every second so a dropped store lets go of its connection.
            match tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await {
                Ok(Ok(Some(_))) => bump(&commits),
                // Reconnected after a lost connection: anything may have committed.
                Ok(Ok(None)) => bump(&commits),
                Ok(Err(sqlx::Error::PoolClosed)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "event-store listener lost; reconnecting");
                    bump(&commits);
                    break;
                }
                Err(_) => {
                    if commits.sender_count() <= 1 {
                        return;
                    }
                }
            }
        }
    }
}

struct State {
    reader: PgReader,
    /// The read of the page after `buffer`, already under way.
    prefetch: Option<tokio::task::JoinHandle<Page>>,
    commits: watch::Receiver<u64>,
    after: Position,
    buffer: VecDeque<RecordedEvent>,
    batch: usize,
    safety_net: Duration,
}

pub(super) async fn subscribe(
    reader: PgReader,
    notifier: &Notifier,
    after: Position,
    options: &PgStoreOptions,
) -> Result<EventSubscription, StoreError> {
    let state = State {
        reader,
        prefetch: None,
        commits: notifier.watch(),
        after,
        buffer: VecDeque::new(),
        batch: options.subscription_batch.max(1),
        safety_net: options.subscription_safety_net,
    };
    Ok(futures_util::stream::unfold(state, next).boxed())
}

async fn next(mut s: State) -> Option<(Result<RecordedEvent, StoreError>, State)> {
    loop {
        if let Some(event) = s.buffer.pop_front() {
            s.after = event.position;
            return Some((Ok(event), s));
        }
        // Seen: a commit after this point wakes the wait below.
        s.commits.borrow_and_update();
        let page = match s.prefetch.take() {
            Some(handle) => handle
                .await
                .unwrap_or_else(|e| Err(StoreError::Backend(e.to_string()))),
            None => s.reader.read_all(s.after, s.batch).await,
        };
        match page {
            Ok(events) if !events.is_empty() => {
                if events.len() == s.batch
                    && let Some(last) = events.last().map(|e| e.position)
                {
                    let (reader, batch) = (s.reader.clone(), s.batch);
                    s.prefetch = Some(tokio::spawn(
                        async move { reader.read_all(last, batch).await },
                    ));
                }
                s.buffer.extend(events);
            }
            Ok(_) => {
                // Caught up: wait for a commit; the timer is only a safety
                // net for a notification that never came.
                if let Ok(Err(_)) = tokio::time::timeout(s.safety_net, s.commits.changed()).await {
                    // The store is gone: end the subscription.
                    return None;
                }
            }
            Err(e) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Some((Err(e), s));
            }
        }
    }
}
