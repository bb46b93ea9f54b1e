//! Gap-safe global order, proved under contention: eight writers (eight
//! stores, each its own group-commit writer and connections, as eight
//! processes would be) append concurrently and sleep a random while inside
//! every open transaction, while three subscriptions (sharing their store's
//! tail of recent events) and a `read_all` poller follow the log. Every committed event must reach both exactly once, in
//! increasing position order.
//!
//! The second test switches the writer lock off and shows the same readers
//! then miss events: the check above can fail, and the lock is what passes it.

use event_store::postgres::{PgEventStore, PgStoreOptions};
use event_store::{EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, Upcasters};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

const WRITERS: usize = 8;
const CLIENTS_PER_WRITER: usize = 3;
const APPENDS_PER_CLIENT: usize = 12;

fn writer(pool: &PgPool, writer_lock: bool) -> Arc<PgEventStore> {
    let options = PgStoreOptions {
        writer_lock,
        // Stay 0-25 ms in the open transaction after the rows are written.
        before_commit: Some(Arc::new(|| {
            Duration::from_millis(rand::rng().random_range(0..25))
        })),
        ..PgStoreOptions::default()
    };
    Arc::new(PgEventStore::with_options(
        pool.clone(),
        Upcasters::new(),
        options,
    ))
}

struct Outcome {
    committed: HashSet<Uuid>,
    by_subscription: Vec<SeenWithPos>,
    by_polling: SeenWithPos,
}

type SeenWithPos = (Vec<Uuid>, Vec<(Position, Position)>);

/// Runs the workload with `WRITERS` stores and returns what was committed
/// and what each reader delivered.
async fn run(pool: PgPool, writer_lock: bool, shared_streams: bool) -> Outcome {
    let reader = PgEventStore::new(pool.clone());
    let done = Arc::new(AtomicBool::new(false));

    // Readers 1-3: live subscriptions on one store, so they share its tail
    // of recent events; the last starts late and begins behind the others.
    let subscribers: Vec<_> = [0, 0, 40]
        .into_iter()
        .map(|delay_ms| spawn_subscriber(reader.clone(), done.clone(), delay_ms))
        .collect();

    // Reader 2: a tight read_all poller with a cursor, as a projector has.
    let poll_store = reader.clone();
    let poll_done = done.clone();
    let poller = tokio::spawn(async move {
        let mut seen = Tracker::default();
        let mut cursor = Position::START;
        let mut idle_after_done = 0;
        loop {
            let page = poll_store.read_all(cursor, 7).await.expect("read_all");
            for e in &page {
                seen.record(e);
            }
            if let Some(last) = page.last() {
                cursor = last.position;
            } else if poll_done.load(Ordering::SeqCst) {
                idle_after_done += 1;
                if idle_after_done > 3 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen.into_parts()
    });

    // The writers.
    let mut clients = Vec::new();
    for w in 0..WRITERS {
        let store = writer(&pool, writer_lock);
        for c in 0..CLIENTS_PER_WRITER {
            let store = store.clone();
            clients.push(tokio::spawn(async move {
                let mut committed = Vec::new();
                for i in 0..APPENDS_PER_CLIENT {
                    let stream = if shared_streams {
                        format!("customer-{}", (w + c + i) % 5)
                    } else {
                        format!("customer-w{w}-c{c}")
                    };
                    let n = 1 + i % 3;
                    let events: Vec<NewEvent> = (0..n)
                        .map(|k| {
                            NewEvent::new(
                                "TestHappened",
                                1,
                                chrono::Utc::now(),
                                json!({"w": w, "c": c, "i": i, "k": k}),
                            )
                        })
                        .collect();
                    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
                    store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("append");
                    committed.extend(ids);
                }
                committed
            }));
        }
    }
    let mut committed = HashSet::new();
    for c in clients {
        committed.extend(c.await.expect("client"));
    }
    done.store(true, Ordering::SeqCst);
    let mut by_subscription = Vec::new();
    for s in subscribers {
        by_subscription.push(s.await.expect("subscriber"));
    }
    Outcome {
        committed,
        by_subscription,
        by_polling: poller.await.expect("poller"),
    }
}

/// Follows the log with `subscribe_all` from the start, after `delay_ms`,
/// until `done` is set and nothing more arrives.
fn spawn_subscriber(
    store: PgEventStore,
    done: Arc<AtomicBool>,
    delay_ms: u64,
) -> tokio::task::JoinHandle<SeenWithPos> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let mut sub = store
            .subscribe_all(Position::START)
            .await
            .expect("subscribe");
        let mut seen = Tracker::default();
        loop {
            match tokio::time::timeout(Duration::from_millis(1500), sub.next()).await {
                Ok(Some(Ok(e))) => seen.record(&e),
                Ok(other) => panic!("subscription ended: {other:?}"),
                Err(_) if done.load(Ordering::SeqCst) => break,
                Err(_) => {}
            }
        }
        seen.into_parts()
    })
}

#[derive(Default)]
struct Tracker {
    ids: Vec<Uuid>,
    last: Option<Position>,
    out_of_order: Vec<(Position, Position)>,
}

impl Tracker {
    fn record(&mut self, e: &RecordedEvent) {
        if let Some(last) = self.last.filter(|&last| e.position <= last) {
            self.out_of_order.push((last, e.position));
        }
        self.last = Some(e.position);
        self.ids.push(e.event_id);
    }

    fn into_parts(self) -> SeenWithPos {
        (self.ids, self.out_of_order)
    }
}

fn missed(committed: &HashSet<Uuid>, delivered: &[Uuid]) -> usize {
    let delivered: HashSet<_> = delivered.iter().collect();
    committed
        .iter()
        .filter(|id| !delivered.contains(id))
        .count()
}

fn assert_exactly_once_in_order(
    name: &str,
    committed: &HashSet<Uuid>,
    (ids, out_of_order): &SeenWithPos,
) {
    assert!(
        out_of_order.is_empty(),
        "{name}: delivered a position at or below one it had delivered: {out_of_order:?}"
    );
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{name}: an event was delivered twice"
    );
    assert_eq!(
        missed(committed, ids),
        0,
        "{name}: committed events never delivered"
    );
    assert_eq!(
        ids.len(),
        committed.len(),
        "{name}: delivered events nobody committed"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn concurrent_writers_never_make_a_reader_skip_or_reorder(pool: PgPool) {
    let outcome = run(pool.clone(), true, true).await;
    let expected =
        WRITERS * CLIENTS_PER_WRITER * (0..APPENDS_PER_CLIENT).map(|i| 1 + i % 3).sum::<usize>();
    assert_eq!(outcome.committed.len(), expected);
    for (i, seen) in outcome.by_subscription.iter().enumerate() {
        assert_exactly_once_in_order(&format!("subscription {i}"), &outcome.committed, seen);
    }
    assert_exactly_once_in_order("read_all poller", &outcome.committed, &outcome.by_polling);
    // The same lock keeps one hash chain along that order (docs/trust.md).
    let verdict = event_store::postgres::verify::verify(&pool, &Default::default(), |_, _| {})
        .await
        .expect("verify runs");
    assert!(
        matches!(verdict, event_store::postgres::verify::Verdict::Verified(ref s) if s.verified == expected as u64),
        "{verdict:?}"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn without_the_writer_lock_readers_miss_events(pool: PgPool) {
    // Streams are per client here: without the lock two writers could also
    // collide on a shared stream's next version, which is not the point.
    let outcome = run(pool, false, false).await;
    let lost = missed(&outcome.committed, &outcome.by_polling.0)
        + outcome
            .by_subscription
            .iter()
            .map(|(ids, _)| missed(&outcome.committed, ids))
            .sum::<usize>();
    assert!(
        lost > 0,
        "with the writer lock off, sequence order is not commit order and a cursor reader must skip \
         late-committing lower positions; none skipped, so this workload no longer exercises the race"
    );
}
