//! Opening the configured log (`event_store::open`, `SENTINEL_EVENT_STORE`):
//! PostgreSQL opens the log in the service's own database; a KurrentDB
//! setting that cannot be served fails at once with an error that names the
//! server (without its credentials) and the variable. These run in the
//! normal suite (no `esdb` feature: the error says how to build with it) and
//! with `--features esdb` (no server needed: the port is closed).

use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion, LogBackend, NewEvent, OpenOptions, Position};
use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn unset_opens_the_log_in_the_services_postgres(pool: PgPool) {
    let backend = LogBackend::parse(None).expect("unset is valid");
    let options = OpenOptions {
        signing: false,
        timeout: Duration::from_secs(1),
    };
    let store = event_store::open(&backend, &pool, &options)
        .await
        .expect("PostgreSQL opens");
    store
        .append(
            "customer-open-1",
            ExpectedVersion::NoStream,
            vec![NewEvent::new(
                "TransactionRecorded",
                2,
                chrono::Utc::now(),
                json!({ "amount": 1 }),
            )],
        )
        .await
        .expect("appends");
    // Another store over the same database sees it: the log is the pool's.
    let other = PgEventStore::new(pool.clone());
    let events = other.read_all(Position::START, 10).await.expect("reads");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].stream_id, "customer-open-1");
}

/// A port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn kurrentdb_that_cannot_serve_fails_at_start_naming_it(pool: PgPool) {
    let port = closed_port();
    let backend = LogBackend::parse(Some(&format!(
        "esdb://admin:hunter2@127.0.0.1:{port}?tls=false"
    )))
    .expect("a KurrentDB connection string");
    let options = OpenOptions {
        signing: true,
        timeout: Duration::from_secs(3),
    };
    let started = Instant::now();
    let error = event_store::open(&backend, &pool, &options)
        .await
        .err()
        .map(|e| e.to_string())
        .expect("no KurrentDB there: open fails");
    eprintln!("open failed, as it should: {error}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
    assert!(
        error.contains(&format!("esdb://admin:***@127.0.0.1:{port}?tls=false")),
        "names the server: {error}"
    );
    assert!(error.contains("SENTINEL_EVENT_STORE"), "{error}");
    assert!(!error.contains("hunter2"), "no credentials: {error}");
    if cfg!(feature = "esdb") {
        assert!(error.contains("event log in KurrentDB"), "{error}");
    } else {
        assert!(
            error.contains("built without the KurrentDB backend")
                && error.contains("--features esdb"),
            "says how to build it: {error}"
        );
    }
}

/// A server that takes the connection and never says a word (a listener
/// nobody accepts on: the kernel completes the handshake) is waited for no
/// longer than the timeout.
#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn kurrentdb_that_never_answers_is_waited_for_no_longer_than_the_timeout(pool: PgPool) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let backend = LogBackend::parse(Some(&format!("kurrentdb://127.0.0.1:{port}?tls=false")))
        .expect("a KurrentDB connection string");
    let options = OpenOptions {
        signing: false,
        timeout: Duration::from_secs(1),
    };
    let started = Instant::now();
    let error = event_store::open(&backend, &pool, &options)
        .await
        .err()
        .map(|e| e.to_string())
        .expect("nobody answers: open fails");
    eprintln!("open failed, as it should: {error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );
    assert!(
        error.contains(&format!("kurrentdb://127.0.0.1:{port}?tls=false"))
            && error.contains("SENTINEL_EVENT_STORE"),
        "{error}"
    );
    if cfg!(feature = "esdb") {
        assert!(error.contains("did not answer within 1s"), "{error}");
    } else {
        assert!(error.contains("--features esdb"), "{error}");
    }
    drop(silent);
}
