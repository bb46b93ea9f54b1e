//! `subscribe_all` on PostgreSQL: catch up with `read_all`, then sleep until
//! the writer's NOTIFY says something committed.
//!
//! One LISTEN connection per store (the [`Notifier`]), however many
//! subscriptions: each commit notification bumps a counter that every
//! subscription watches. A subscription marks the counter seen before each
//! read, so a commit that lands between "read found nothing" and "wait"
//! still wakes it. While catching up (full pages), the next page is fetched
//! while the consumer works through the current one.
//!
//! The subscriptions of one store that wake on the same commit would each
//! read the same new events. The [`Tail`] keeps the newest events any of
//! them read: the first to ask reads the log (the others wait for it), the
//! rest are served from memory. It only ever holds what a read returned, and
//! a read of the log after position P returns every event after P up to its
//! last one (gap-safe order, ADR 0001), so serving from it is as good as
//! reading.

use super::{NOTIFY_CHANNEL, PgReader, PgStoreOptions};
use crate::error::StoreError;
use crate::model::{Position, RecordedEvent};
use crate::store::EventSubscription;
use futures_util::StreamExt;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};

type Page = Result<Vec<RecordedEvent>, StoreError>;

/// The store's one LISTEN connection, shared by its subscriptions. Started
/// on the first subscription; ends when the store is dropped.
pub(super) struct Notifier {
    commits: watch::Sender<u64>,
    tail: Arc<Mutex<Tail>>,
}

impl Notifier {
    pub(super) fn start(pool: PgPool) -> Notifier {
        let (commits, _) = watch::channel(0u64);
        tokio::spawn(listen(pool, commits.clone()));
        Notifier {
            commits,
            tail: Arc::default(),
        }
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

/// Most events the [`Tail`] keeps (the oldest go first).
const TAIL_EVENTS: usize = 10_000;

/// The newest events read by a store's subscriptions: every event with a
/// position in `(from, to]`, in order.
#[derive(Default)]
struct Tail {
    events: VecDeque<RecordedEvent>,
    from: u64,
    to: u64,
}

impl Tail {
    /// Up to `limit` events after `after`, if the tail covers `after`.
    fn serve(&self, after: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        if after < self.from || after >= self.to {
            return None;
        }
        let start = self.events.partition_point(|e| e.position.0 <= after);
        Some(self.events.range(start..).take(limit).cloned().collect())
    }

    /// Takes in `page`, just read after `after`.
    fn extend(&mut self, after: u64, page: &[RecordedEvent]) {
        let Some(last) = page.last().map(|e| e.position.0) else {
            return;
        };
        if after != self.to || self.events.is_empty() {
            // Not contiguous with what is held: start again from this read.
            self.events.clear();
            self.from = after;
        }
        self.events.extend(page.iter().cloned());
        self.to = last;
        while self.events.len() > TAIL_EVENTS {
            if let Some(old) = self.events.pop_front() {
                self.from = old.position.0;
            }
        }
    }
}

/// Reads up to `limit` events after `after`: from the tail when it holds
/// them; else from the log, one subscription at a time at the head of the
/// log (the others then find the events in the tail). A subscription
/// further behind reads on its own and leaves the tail alone.
async fn read_through(
    tail: &Mutex<Tail>,
    reader: &PgReader,
    after: Position,
    limit: usize,
) -> Page {
    let mut held = tail.lock().await;
    if let Some(events) = held.serve(after.0, limit) {
        return Ok(events);
    }
    if after.0 < held.from {
        drop(held);
        return reader.read_all(after, limit).await;
    }
    let page = reader.read_all(after, limit).await?;
    held.extend(after.0, &page);
    Ok(page)
}

struct State {
    reader: PgReader,
    tail: Arc<Mutex<Tail>>,
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
        tail: notifier.tail.clone(),
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
            None => read_through(&s.tail, &s.reader, s.after, s.batch).await,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventMetadata;
    use crate::payload::Payload;

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::nil(),
            stream_id: "customer-1".into(),
            stream_version: position,
            position: Position(position),
            event_type: "TransactionRecorded".into(),
            schema_version: 2,
            stored_schema_version: 2,
            event_time: chrono::DateTime::UNIX_EPOCH,
            recorded_time: chrono::DateTime::UNIX_EPOCH,
            payload: Payload::from_value(&serde_json::json!({})),
            metadata: EventMetadata::default(),
            upcast_error: None,
        }
    }

    fn positions(events: &[RecordedEvent]) -> Vec<u64> {
        events.iter().map(|e| e.position.0).collect()
    }

    #[test]
    fn serves_only_the_range_its_reads_covered() {
        let mut tail = Tail::default();
        assert!(tail.serve(0, 10).is_none(), "an empty tail serves nothing");
        // A read after 0 returned 1, 2 and 4 (3 was never committed).
        tail.extend(0, &[event(1), event(2), event(4)]);
        assert_eq!(
            tail.serve(0, 10).map(|e| positions(&e)),
            Some(vec![1, 2, 4])
        );
        assert_eq!(tail.serve(2, 10).map(|e| positions(&e)), Some(vec![4]));
        assert_eq!(tail.serve(3, 1).map(|e| positions(&e)), Some(vec![4]));
        assert_eq!(tail.serve(1, 1).map(|e| positions(&e)), Some(vec![2]));
        // Past the last read: only the log knows.
        assert!(tail.serve(4, 10).is_none());
        // The next read carries on from 4.
        tail.extend(4, &[event(5)]);
        assert_eq!(tail.serve(2, 10).map(|e| positions(&e)), Some(vec![4, 5]));
    }

    #[test]
    fn a_read_that_does_not_join_up_starts_the_tail_again() {
        let mut tail = Tail::default();
        tail.extend(10, &[event(11), event(12)]);
        assert!(tail.serve(9, 10).is_none(), "before the first read");
        tail.extend(20, &[event(21)]);
        assert!(tail.serve(11, 10).is_none(), "11..20 was never read");
        assert_eq!(tail.serve(20, 10).map(|e| positions(&e)), Some(vec![21]));
        tail.extend(21, &[]);
        assert_eq!(tail.to, 21, "an empty read proves nothing about the head");
    }

    #[test]
    fn keeps_a_bounded_number_of_events() {
        let mut tail = Tail::default();
        let page: Vec<_> = (1..=TAIL_EVENTS as u64 + 5).map(event).collect();
        tail.extend(0, &page);
        assert_eq!(tail.events.len(), TAIL_EVENTS);
        assert!(tail.serve(4, 1).is_none(), "the oldest have gone");
        assert_eq!(tail.serve(5, 1).map(|e| positions(&e)), Some(vec![6]));
    }
}
