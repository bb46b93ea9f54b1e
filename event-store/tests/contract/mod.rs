//! The event-store contract: one suite of cases, each generic over a
//! [`Backend`], so PostgreSQL and KurrentDB are held to the same behaviour.
//!
//! Cases use fresh stream ids and positions relative to the head they find,
//! so they also run against a shared, non-empty KurrentDB.

use chrono::{DateTime, Utc};
use event_store::{
    AppendError, AppendRequest, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position,
    RecordedEvent, Upcasters,
};
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A backend under test: makes a store with the given upcasters.
pub trait Backend {
    fn store(&self, upcasters: Upcasters) -> impl Future<Output = Arc<dyn EventStore>>;
}

/// Instantiates every contract case as a test for one backend:
/// `contract_cases!(|name| async fn body)`.
#[macro_export]
macro_rules! contract_cases {
    ($runner:ident) => {
        $runner!(
            append_and_read_back_the_whole_envelope,
            expected_version_is_checked,
            reappending_stored_events_is_idempotent,
            same_event_id_with_other_content_is_refused,
            partial_duplicate_is_refused,
            batched_append_checks_each_stream_on_its_own,
            batch_mixing_a_retry_with_new_appends_answers_each,
            read_all_pages_in_position_order,
            read_streams_answers_each_stream_like_read_stream,
            subscription_catches_up_then_follows_live_commits,
            subscription_resumes_from_a_checkpoint,
            upcasters_run_on_every_read_path,
            concurrent_writers_to_one_stream_never_both_win
        );
    };
}

fn stream(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7().simple())
}

/// Now, at the microsecond precision every backend keeps.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "TestHappened",
        1,
        now(),
        json!({ "n": n, "note": "contract" }),
    )
}

async fn stream_events(store: &dyn EventStore, stream_id: &str) -> Vec<RecordedEvent> {
    store
        .read_stream(stream_id, 0, 10_000)
        .await
        .expect("read_stream")
}

/// Reads the global log after `after` until `want` events of `streams` arrived.
async fn read_all_of(
    store: &dyn EventStore,
    after: Position,
    streams: &[&str],
    want: usize,
) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    let mut cursor = after;
    for _ in 0..1000 {
        let page = store.read_all(cursor, 500).await.expect("read_all");
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|e| e.position).unwrap_or(cursor);
        seen.extend(
            page.into_iter()
                .filter(|e| streams.contains(&e.stream_id.as_str())),
        );
        if seen.len() >= want {
            break;
        }
    }
    seen
}

pub async fn append_and_read_back_the_whole_envelope(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let s = stream("customer");
    let correlation = Uuid::now_v7();
    let cause = Uuid::now_v7();
    let metadata = EventMetadata {
        correlation_id: Some(correlation),
        causation_id: Some(cause),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    };
    let events: Vec<NewEvent> = (0..3)
        .map(|n| event(n).with_metadata(metadata.clone()))
        .collect();
    let before = Utc::now() - chrono::Duration::seconds(5);
    let out = store
        .append(&s, ExpectedVersion::NoStream, events.clone())
        .await
        .expect("append");
    assert_eq!(out.positions.len(), 3);
    assert!(
        out.positions.windows(2).all(|w| w[0] < w[1]),
        "positions grow: {:?}",
        out.positions
    );
    assert_eq!(out.last_version, 2);
    assert!(!out.duplicate);

    let read = stream_events(&*store, &s).await;
    assert_eq!(read.len(), 3);
    for (i, (got, sent)) in read.iter().zip(&events).enumerate() {
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.event_id.get_version_num(), 7, "event ids are UUID v7");
        assert_eq!(got.stream_id, s);
        assert_eq!(got.stream_version, i as u64);
        assert_eq!(got.position, out.positions[i]);
        assert_eq!(got.event_type, "TestHappened");
        assert_eq!(got.schema_version, 1);
        assert_eq!(got.stored_schema_version, 1);
        assert_eq!(got.event_time, sent.event_time);
        assert!(
            got.recorded_time >= before,
            "recorded time is set at append"
        );
        assert_eq!(got.payload, sent.payload);
        assert_eq!(got.metadata, metadata);
        assert_eq!(got.upcast_error, None);
    }
    // from_version and limit
    let tail = store.read_stream(&s, 1, 1).await.expect("read_stream");
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].stream_version, 1);
    assert!(
        store
            .read_stream(&stream("absent"), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(store.head_position().await.expect("head") >= out.positions[2]);
}

pub async fn expected_version_is_checked(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let s = stream("customer");
    // Exact on a missing stream fails, and says the stream is absent.
    match store
        .append(&s, ExpectedVersion::Exact(0), vec![event(0)])
        .await
    {
        Err(AppendError::WrongExpectedVersion { actual: None, .. }) => {}
        other => panic!("expected a version conflict, got {other:?}"),
    }
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("first");
    // NoStream on an existing stream fails.
    match store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
    {
        Err(AppendError::WrongExpectedVersion {
            actual: Some(0), ..
        }) => {}
        other => panic!("expected a version conflict, got {other:?}"),
    }
    // Exact with a stale version fails, with the right one succeeds.
    store
        .append(&s, ExpectedVersion::Exact(0), vec![event(1), event(2)])
        .await
        .expect("exact 0");
    match store
        .append(&s, ExpectedVersion::Exact(0), vec![event(3)])
        .await
    {
        Err(AppendError::WrongExpectedVersion {
            expected: ExpectedVersion::Exact(0),
            actual: Some(2),
            ..
        }) => {}
        other => panic!("expected a version conflict, got {other:?}"),
    }
    let out = store
        .append(&s, ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .expect("exact 2");
    assert_eq!(out.last_version, 3);
    // Any always appends.
    let out = store
        .append(&s, ExpectedVersion::Any, vec![event(4)])
        .await
        .expect("any");
    assert_eq!(out.last_version, 4);
    // A refused append wrote nothing.
    let versions: Vec<u64> = stream_events(&*store, &s)
        .await
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, vec![0, 1, 2, 3, 4]);
}

pub async fn reappending_stored_events_is_idempotent(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let s = stream("customer");
    let events = vec![event(0), event(1)];
    let first = store
        .append(&s, ExpectedVersion::NoStream, events.clone())
        .await
        .expect("first");
    // The same append again (a client retry), with a new trace: same answer.
    let retry_events: Vec<NewEvent> = events
        .iter()
        .cloned()
        .map(|e| {
            e.with_metadata(EventMetadata {
                traceparent: Some("00-ffff".into()),
                ..Default::default()
            })
        })
        .collect();
    let again = store
        .append(&s, ExpectedVersion::NoStream, retry_events)
        .await
        .expect("retry");
    assert_eq!(again.positions, first.positions);
    assert_eq!(again.last_version, first.last_version);
    assert!(again.duplicate);
    let again_any = store
        .append(&s, ExpectedVersion::Any, events.clone())
        .await
        .expect("retry any");
    assert_eq!(again_any.positions, first.positions);
    assert_eq!(
        stream_events(&*store, &s).await.len(),
        2,
        "nothing new stored"
    );
}

pub async fn same_event_id_with_other_content_is_refused(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let s = stream("customer");
    let original = event(0);
    store
        .append(&s, ExpectedVersion::Any, vec![original.clone()])
        .await
        .expect("first");
    let mut changed = original.clone();
    changed.payload = event_store::Payload::from_value(&json!({ "n": 999 }));
    match store.append(&s, ExpectedVersion::Any, vec![changed]).await {
        Err(AppendError::EventIdConflict { event_id }) => assert_eq!(event_id, original.event_id),
        other => panic!("expected an event id conflict, got {other:?}"),
    }
    let stored = stream_events(&*store, &s).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, original.payload);
}

pub async fn partial_duplicate_is_refused(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let s = stream("customer");
    let stored = event(0);
    store
        .append(&s, ExpectedVersion::Any, vec![stored.clone()])
        .await
        .expect("first");
    match store
        .append(&s, ExpectedVersion::Any, vec![stored, event(1)])
        .await
    {
        Err(AppendError::PartialDuplicate { stream_id }) => assert_eq!(stream_id, s),
        other => panic!("expected a partial duplicate, got {other:?}"),
    }
    assert_eq!(stream_events(&*store, &s).await.len(), 1);
}

pub async fn batched_append_checks_each_stream_on_its_own(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let (a, c, d) = (stream("customer"), stream("customer"), stream("alert"));
    store
        .append(&c, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("seed c");
    let results = store
        .append_batch(vec![
            AppendRequest::new(&a, ExpectedVersion::NoStream, vec![event(1), event(2)]),
            // stale: c is at version 0, not missing
            AppendRequest::new(&c, ExpectedVersion::NoStream, vec![event(3)]),
            AppendRequest::new(&d, ExpectedVersion::Any, vec![event(4)]),
            // a second append to `a` in the same batch sees the first one
            AppendRequest::new(&a, ExpectedVersion::Exact(1), vec![event(5)]),
        ])
        .await
        .expect("batch");
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().expect("a").last_version, 1);
    assert!(matches!(
        results[1],
        Err(AppendError::WrongExpectedVersion {
            actual: Some(0),
            ..
        })
    ));
    assert_eq!(results[2].as_ref().expect("d").positions.len(), 1);
    assert_eq!(results[3].as_ref().expect("a again").last_version, 2);
    assert_eq!(stream_events(&*store, &a).await.len(), 3);
    assert_eq!(
        stream_events(&*store, &c).await.len(),
        1,
        "the refused request wrote nothing"
    );
    assert_eq!(stream_events(&*store, &d).await.len(), 1);
}

pub async fn batch_mixing_a_retry_with_new_appends_answers_each(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let (a, c) = (stream("customer"), stream("customer"));
    let first = vec![event(0), event(1)];
    let committed = store
        .append(&a, ExpectedVersion::NoStream, first.clone())
        .await
        .expect("first");
    // A client retries the committed append (same ids, same stale expected
    // version) in the same batch as a new append and a new event for `a`.
    let results = store
        .append_batch(vec![
            AppendRequest::new(&c, ExpectedVersion::NoStream, vec![event(2)]),
            AppendRequest::new(&a, ExpectedVersion::NoStream, first),
            AppendRequest::new(&a, ExpectedVersion::Exact(1), vec![event(3)]),
        ])
        .await
        .expect("batch");
    assert_eq!(results[0].as_ref().expect("new stream").last_version, 0);
    let retry = results[1]
        .as_ref()
        .expect("the retry is answered, not refused");
    assert!(retry.duplicate);
    assert_eq!(retry.positions, committed.positions);
    assert_eq!(results[2].as_ref().expect("next event").last_version, 2);
    assert_eq!(
        stream_events(&*store, &a).await.len(),
        3,
        "nothing written twice"
    );
}

pub async fn read_all_pages_in_position_order(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let start = store.head_position().await.expect("head");
    let (s1, s2) = (stream("customer"), stream("customer"));
    for n in 0..5 {
        store
            .append(&s1, ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("s1");
        store
            .append(&s2, ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("s2");
    }
    let all = read_all_of(&*store, start, &[&s1, &s2], 10).await;
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    // Paging from the middle returns exactly what follows.
    let mid = all[4].position;
    let rest = read_all_of(&*store, mid, &[&s1, &s2], 5).await;
    assert_eq!(
        rest.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        all[5..].iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
    let page = store.read_all(start, 3).await.expect("limit");
    assert!(page.len() <= 3);
}

pub async fn read_streams_answers_each_stream_like_read_stream(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let (long, short, missing) = (stream("customer"), stream("customer"), stream("customer"));
    store
        .append(
            &long,
            ExpectedVersion::NoStream,
            (0..7).map(event).collect(),
        )
        .await
        .expect("append long");
    store
        .append(&short, ExpectedVersion::NoStream, vec![event(100)])
        .await
        .expect("append short");
    // Another stream's events in between must not leak into either answer.
    store
        .append(&stream("other"), ExpectedVersion::Any, vec![event(200)])
        .await
        .expect("append other");
    store
        .append(&long, ExpectedVersion::Exact(6), vec![event(7)])
        .await
        .expect("append long again");

    let asked: Vec<(&str, u64)> = vec![
        (short.as_str(), 0),
        (long.as_str(), 0),
        (missing.as_str(), 0),
        (long.as_str(), 3),
        (short.as_str(), 1),
    ];
    let limit = 5;
    let many = store
        .read_streams(&asked, limit)
        .await
        .expect("read_streams");
    assert_eq!(
        many.len(),
        asked.len(),
        "one answer per stream asked, in order"
    );
    for ((stream_id, from), got) in asked.iter().zip(&many) {
        let one = store
            .read_stream(stream_id, *from, limit)
            .await
            .expect("read_stream");
        let ids = |events: &[RecordedEvent]| -> Vec<(String, u64, Uuid)> {
            events
                .iter()
                .map(|e| (e.stream_id.clone(), e.stream_version, e.event_id))
                .collect()
        };
        assert_eq!(ids(got), ids(&one), "{stream_id} from {from}");
    }
    let versions = |i: usize| many[i].iter().map(|e| e.stream_version).collect::<Vec<_>>();
    assert_eq!(versions(0), vec![0]);
    assert_eq!(versions(1), vec![0, 1, 2, 3, 4], "the limit is per stream");
    assert!(many[2].is_empty(), "a stream that does not exist is empty");
    assert_eq!(versions(3), vec![3, 4, 5, 6, 7]);
    assert!(many[4].is_empty(), "nothing from past the head");
    assert_eq!(many[0][0].payload, json!({ "n": 100, "note": "contract" }));
    assert!(
        store
            .read_streams(&[], 10)
            .await
            .expect("read nothing")
            .is_empty()
    );
}

pub async fn subscription_catches_up_then_follows_live_commits(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let start = store.head_position().await.expect("head");
    let s = stream("customer");
    store
        .append(&s, ExpectedVersion::Any, vec![event(0), event(1)])
        .await
        .expect("before");
    let mut sub = store.subscribe_all(start).await.expect("subscribe");
    let writer = store.clone();
    let s2 = s.clone();
    let live = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        writer
            .append(&s2, ExpectedVersion::Any, vec![event(2)])
            .await
            .expect("live");
    });
    let mut got = Vec::new();
    while got.len() < 3 {
        let next = tokio::time::timeout(Duration::from_secs(3), sub.next())
            .await
            .expect("a live event arrives well before the 5 s safety net")
            .expect("stream open")
            .expect("event");
        if next.stream_id == s {
            got.push(
                next.payload.to_value().expect("json")["n"]
                    .as_u64()
                    .expect("n"),
            );
        }
    }
    assert_eq!(got, vec![0, 1, 2]);
    live.await.expect("writer");
}

pub async fn subscription_resumes_from_a_checkpoint(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let s = stream("customer");
    let out = store
        .append(&s, ExpectedVersion::Any, (0..4).map(event).collect())
        .await
        .expect("append");
    let checkpoint = out.positions[1];
    let mut sub = store.subscribe_all(checkpoint).await.expect("subscribe");
    let mut got = Vec::new();
    while got.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(3), sub.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event");
        assert!(
            e.position > checkpoint,
            "nothing at or before the checkpoint"
        );
        if e.stream_id == s {
            got.push(e.stream_version);
        }
    }
    assert_eq!(got, vec![2, 3]);
}

pub async fn upcasters_run_on_every_read_path(b: &impl Backend) {
    // v1 {"amount": n} -> v2 adds currency -> v3 renames amount to value.
    let upcasters = Upcasters::new()
        .register("Paid", 1, |mut p| {
            p["currency"] = json!("EUR");
            Ok(p)
        })
        .register("Paid", 2, |p| {
            let amount = p.get("amount").cloned().ok_or("no amount")?;
            Ok(json!({ "value": amount, "currency": p["currency"] }))
        });
    let store = b.store(upcasters).await;
    let start = store.head_position().await.expect("head");
    let s = stream("customer");
    store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![
                NewEvent::new("Paid", 1, now(), json!({ "amount": 5 })),
                NewEvent::new("Paid", 2, now(), json!({ "amount": 6, "currency": "USD" })),
                NewEvent::new("Paid", 3, now(), json!({ "value": 7, "currency": "GBP" })),
                // an upcaster failure is carried on the event, not raised
                NewEvent::new("Paid", 2, now(), json!({ "broken": true })),
            ],
        )
        .await
        .expect("append");
    let check = |events: &[RecordedEvent]| {
        let want = [
            json!({"value": 5, "currency": "EUR"}),
            json!({"value": 6, "currency": "USD"}),
            json!({"value": 7, "currency": "GBP"}),
        ];
        for (e, w) in events.iter().zip(want.iter()) {
            assert_eq!(&e.payload, w);
            assert_eq!(e.schema_version, 3);
            assert!(e.upcast_error.is_none());
        }
        assert_eq!(events[0].stored_schema_version, 1);
        assert!(
            events[3]
                .upcast_error
                .as_deref()
                .unwrap_or("")
                .contains("no amount")
        );
        assert_eq!(
            events[3].schema_version, 2,
            "a failed upcast leaves the stored version"
        );
    };
    check(&stream_events(&*store, &s).await);
    let many = store
        .read_streams(&[(s.as_str(), 0)], 100)
        .await
        .expect("read_streams");
    check(&many[0]);
    check(&read_all_of(&*store, start, &[&s], 4).await);
    let mut sub = store.subscribe_all(start).await.expect("subscribe");
    let mut via_sub = Vec::new();
    while via_sub.len() < 4 {
        let e = tokio::time::timeout(Duration::from_secs(3), sub.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event");
        if e.stream_id == s {
            via_sub.push(e);
        }
    }
    check(&via_sub);
}

pub async fn concurrent_writers_to_one_stream_never_both_win(b: &impl Backend) {
    let store = b.store(Upcasters::new()).await;
    let s = stream("customer");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("seed");
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let store = store.clone();
            let s = s.clone();
            tokio::spawn(async move {
                store
                    .append(&s, ExpectedVersion::Exact(0), vec![event(n)])
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => wins += 1,
            Err(AppendError::WrongExpectedVersion { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1, "exactly one writer wins version 1");
    assert_eq!(stream_events(&*store, &s).await.len(), 2);
}
