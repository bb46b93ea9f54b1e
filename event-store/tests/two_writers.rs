//! Two processes appending to the same streams: each writer's cache of
//! stream heads lags the other's writes, and that must never let a stale
//! expected version through, leave a hole in a stream, or refuse a right one.

use event_store::postgres::PgEventStore;
use event_store::{AppendError, EventStore, ExpectedVersion, NewEvent};
use serde_json::json;
use sqlx::PgPool;

fn event(n: u64) -> NewEvent {
    NewEvent::new("TestHappened", 1, chrono::Utc::now(), json!({ "n": n }))
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn writers_whose_caches_lag_each_other_stay_correct(pool: PgPool) {
    let (a, b) = (
        PgEventStore::new(pool.clone()),
        PgEventStore::new(pool.clone()),
    );
    let s = "customer-shared";

    // A creates the stream and caches head 0.
    a.append(s, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("a creates");
    // B has never seen it: NoStream must still be refused.
    match b.append(s, ExpectedVersion::NoStream, vec![event(1)]).await {
        Err(AppendError::WrongExpectedVersion {
            actual: Some(0), ..
        }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    // B appends at the true head (it learns head 1).
    b.append(s, ExpectedVersion::Exact(0), vec![event(2)])
        .await
        .expect("b at 0");
    // A's cache still says 0: its stale Exact(0) must be refused...
    match a.append(s, ExpectedVersion::Exact(0), vec![event(3)]).await {
        Err(AppendError::WrongExpectedVersion {
            actual: Some(1), ..
        }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    // ...and the right version accepted, although A's cache disagrees with it.
    b.append(s, ExpectedVersion::Any, vec![event(4)])
        .await
        .expect("b any"); // head 2
    let out = a
        .append(s, ExpectedVersion::Exact(2), vec![event(5)])
        .await
        .expect("a at the true head");
    assert_eq!(out.last_version, 3);
    // Any from a writer with a stale cache lands after the true head.
    b.append(s, ExpectedVersion::Any, vec![event(6)])
        .await
        .expect("b any"); // head 4
    let out = a
        .append(s, ExpectedVersion::Any, vec![event(7)])
        .await
        .expect("a any");
    assert_eq!(out.last_version, 5);

    let versions: Vec<u64> = a
        .read_stream(s, 0, 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, vec![0, 1, 2, 3, 4, 5], "no hole, nothing twice");
}
