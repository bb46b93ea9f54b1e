//! PostgreSQL restarted under load (issue 8, item 3).
//!
//! A private cluster (never the shared server on 5432) serves the command
//! service, the projection service and the query API, each with its own pool
//! built as its binary builds it (`event_store::postgres::pool_options`).
//! Many clients keep posting transactions across many customers, retrying
//! the same transaction id after a 503; meanwhile the database is stopped
//! twice (`pg_ctl stop -m fast`, then `-m immediate`, a crash) and started
//! again. What must hold:
//! - the services stay up: `/healthz` answers 200 all along, no connection
//!   to them fails;
//! - while the database is down, a new transaction gets 503
//!   `application/problem+json` with `Retry-After`, within a few seconds
//!   (never a hang), and no other 5xx ever; `/readyz` says 503;
//! - once it is back, the first 2xx comes within 5 s and `/readyz` is 200;
//! - every transaction that got a 2xx is in the log exactly once, a repeat
//!   gets the first answer, and the read models (through the query API)
//!   count every one of them.

use event_store::postgres::{MIGRATOR, PgEventStore, pool_options};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::pg::{PrivatePg, StopMode};
use test_support::{spawn_command, spawn_projection, spawn_query, tx};

const CLIENTS: usize = 32;
const CUSTOMERS_PER_CLIENT: usize = 16;
/// Longest any answer may take, outage or not: the pool's 2 s acquire
/// timeout, at most twice over (a customer load, then the append), plus
/// scheduling on a loaded 2-core CI machine (seen: 6.1 s there).
const MAX_ANSWER: Duration = Duration::from_secs(8);
/// From `pg_ctl start` returning to the first 2xx, and to `/readyz` 200.
const MAX_RECOVERY: Duration = Duration::from_secs(5);
/// Long enough for every client to be told 503 at least once even when
/// each answer takes the pool's acquire timeout twice over.
const DOWN_FOR: Duration = Duration::from_secs(6);

/// One answer a client got.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    sent: Instant,
    done: Instant,
    /// `None`: the request failed without an HTTP answer.
    status: Option<u16>,
    /// For a 503: problem+json with a Retry-After header.
    well_formed_503: bool,
    /// A deliberate repeat of an acknowledged transaction (these may be
    /// answered from memory while the database is away).
    repeat: bool,
    error: Option<String>,
}

#[derive(Default)]
struct Journal {
    seen: Vec<Seen>,
    /// Each transaction's first 2xx answer.
    answers: HashMap<String, Value>,
    /// A later 2xx answered differently.
    mismatches: Vec<String>,
}

/// A probe of one endpoint: when, and the status (`None`: no answer).
type Probes = Arc<Mutex<Vec<(Instant, Option<u16>)>>>;

/// Polls `url` every 100 ms until `stop`.
fn probe(http: reqwest::Client, url: String, stop: Arc<AtomicBool>) -> Probes {
    let probes: Probes = Arc::default();
    let out = probes.clone();
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let status = http
                .get(&url)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16());
            out.lock().expect("probes").push((Instant::now(), status));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    probes
}

/// One client: its own customers, one transaction at a time, each retried
/// with the same id until acknowledged; every fifth acknowledged one is
/// posted once more to check the repeat's answer.
async fn client(
    n: usize,
    http: reqwest::Client,
    base: String,
    stop: Arc<AtomicBool>,
    journal: Arc<Mutex<Journal>>,
) {
    let mut seq = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("pr-{n}-{seq}");
        let customer = format!("prc-{n}-{}", seq % CUSTOMERS_PER_CLIENT);
        let body = tx(&id, &customer, 10.0 + (seq % 50) as f64, 0);
        let mut repeat = false;
        loop {
            let sent = Instant::now();
            let result = http
                .post(format!("{base}/v1/transactions"))
                .json(&body)
                .send()
                .await;
            let mut seen = Seen {
                id: id.clone(),
                sent,
                done: Instant::now(),
                status: None,
                well_formed_503: false,
                repeat,
                error: None,
            };
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    seen.error = Some(e.to_string());
                    journal.lock().expect("journal").seen.push(seen);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            seen.status = Some(status);
            if status == 503 {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                seen.well_formed_503 = header("content-type").as_deref()
                    == Some("application/problem+json")
                    && header("retry-after").is_some_and(|v| v.parse::<u32>().is_ok());
            }
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            seen.done = Instant::now();
            let acknowledged = status == 200 || status == 201;
            {
                let mut j = journal.lock().expect("journal");
                j.seen.push(seen);
                if acknowledged {
                    match j.answers.get(&id) {
                        Some(first) if *first != answer => {
                            let m = format!("{id}: first {first}, then {answer}");
                            j.mismatches.push(m);
                        }
                        Some(_) => {}
                        None => {
                            j.answers.insert(id.clone(), answer);
                        }
                    }
                }
            }
            if acknowledged {
                if seq.is_multiple_of(5) && !repeat {
                    repeat = true;
                    continue;
                }
                break;
            }
            if status != 503 {
                break; // recorded; the test fails on it
            }
            // Faster than Retry-After on purpose: it measures recovery.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seq += 1;
    }
}

// The journal lock is held through the final checks' awaits on purpose:
// every client task has ended by then, so nothing else waits for it.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_ride_out_a_postgres_restart_under_load() {
    let pg = Arc::new(PrivatePg::start_new());
    let url = pg.url();
    let pool = pool_options(32).connect(&url).await.expect("connect");
    MIGRATOR.run(&pool).await.expect("migrate");
    let command = spawn_command(pool.clone()).await;
    let projection_pool = pool_options(24).connect(&url).await.expect("connect");
    let projection = spawn_projection(
        projection_pool.clone(),
        Arc::new(PgEventStore::new(projection_pool)),
    )
    .await;
    let query_pool = pool_options(8).connect(&url).await.expect("connect");
    let query = spawn_query(query_pool.clone(), Arc::new(PgEventStore::new(query_pool)))
        .await
        .base;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let stop_probes = Arc::new(AtomicBool::new(false));
    let ready = |base: &str| probe(http.clone(), format!("{base}/readyz"), stop_probes.clone());
    let healthy = |base: &str| probe(http.clone(), format!("{base}/healthz"), stop_probes.clone());
    let command_ready = ready(&command.base);
    let projection_ready = ready(&projection.base);
    let query_ready = ready(&query);
    let health: Vec<Probes> = [&command.base, &projection.base, &query]
        .into_iter()
        .map(|b| healthy(b))
        .collect();

    let stop_load = Arc::new(AtomicBool::new(false));
    let journal: Arc<Mutex<Journal>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                n,
                http.clone(),
                command.base.clone(),
                stop_load.clone(),
                journal.clone(),
            ))
        })
        .collect();

    // Two outages: a clean fast shutdown, then a crash (immediate).
    struct Outage {
        mode: StopMode,
        stopping: Instant,
        stopped: Instant,
        starting: Instant,
        started: Instant,
    }
    let mut outages = Vec::new();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for mode in [StopMode::Fast, StopMode::Immediate] {
        let stopping = Instant::now();
        let p = pg.clone();
        tokio::task::spawn_blocking(move || p.stop(mode))
            .await
            .expect("stop");
        let stopped = Instant::now();
        assert!(!pg.accepting(), "PostgreSQL still accepts connections");
        tokio::time::sleep(DOWN_FOR).await;
        let starting = Instant::now();
        let p = pg.clone();
        tokio::task::spawn_blocking(move || p.start())
            .await
            .expect("start");
        let started = Instant::now();
        outages.push(Outage {
            mode,
            stopping,
            stopped,
            starting,
            started,
        });
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    stop_load.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    let load_ended = Instant::now();

    // The read models catch up and the query API serves them.
    let acknowledged = journal.lock().expect("journal").answers.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut counted = -1;
    while Instant::now() < deadline {
        let r = http
            .post(format!("{query}/graphql"))
            .json(&json!({"query": "{ dashboard(window: LAST_HOUR) { intake { accepted } } }"}))
            .send()
            .await;
        if let Ok(r) = r
            && let Ok(v) = r.json::<Value>().await
        {
            counted = v["data"]["dashboard"]["intake"]["accepted"]
                .as_i64()
                .unwrap_or(-1);
        }
        if counted == acknowledged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let caught_up = load_ended.elapsed();
    // Readiness of every service once all is back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_probes.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let journal = journal.lock().expect("journal");
    let seen = &journal.seen;

    // The services never went away.
    for probes in &health {
        let probes = probes.lock().expect("probes");
        assert!(probes.len() > 50, "healthz was probed");
        let bad: Vec<_> = probes.iter().filter(|(_, s)| *s != Some(200)).collect();
        assert!(bad.is_empty(), "healthz failed: {bad:?}");
    }
    let no_answer: Vec<&Seen> = seen.iter().filter(|s| s.status.is_none()).collect();
    assert!(
        no_answer.is_empty(),
        "requests got no HTTP answer (a hang or a dead service): {:#?}",
        &no_answer[..no_answer.len().min(5)]
    );
    // Only 2xx and well-formed 503s, each within MAX_ANSWER.
    let odd: Vec<&Seen> = seen
        .iter()
        .filter(|s| !matches!(s.status, Some(200 | 201)) && !s.well_formed_503)
        .collect();
    assert!(
        odd.is_empty(),
        "answers other than 2xx or 503 problem+json with Retry-After: {:#?}",
        &odd[..odd.len().min(5)]
    );
    let slowest = seen
        .iter()
        .map(|s| s.done - s.sent)
        .max()
        .unwrap_or_default();
    assert!(slowest < MAX_ANSWER, "an answer took {slowest:?}");

    let mut report = Vec::new();
    for o in &outages {
        // New transactions answered while the database was down: 503s
        // (most clients are told at least once; an answer may take up to
        // two acquire timeouts, and a crash breaks every pooled
        // connection at once)...
        let unavailable = seen
            .iter()
            .filter(|s| !s.repeat && s.done >= o.stopped && s.done <= o.starting)
            .filter(|s| s.status == Some(503))
            .count();
        assert!(
            unavailable >= CLIENTS / 2,
            "{:?}: only {unavailable} answers of 503 while the database was down",
            o.mode
        );
        // ... and none acknowledged among those sent after it was gone.
        let acknowledged_while_down: Vec<&Seen> = seen
            .iter()
            .filter(|s| !s.repeat && s.sent >= o.stopped && s.done <= o.starting)
            .filter(|s| s.status != Some(503))
            .collect();
        assert!(
            acknowledged_while_down.is_empty(),
            "{:?}: new transactions acknowledged while the database was down: {:?}",
            o.mode,
            acknowledged_while_down
        );
        // Recovery: the first 2xx after the start, and readiness.
        let first_2xx = seen
            .iter()
            .filter(|s| matches!(s.status, Some(200 | 201)) && s.done >= o.started)
            .map(|s| s.done - o.started)
            .min()
            .expect("a 2xx after the restart");
        assert!(
            first_2xx < MAX_RECOVERY,
            "{:?}: first 2xx {first_2xx:?} after the start",
            o.mode
        );
        let mut readiness = Vec::new();
        for (name, probes) in [
            ("command", &command_ready),
            ("projection", &projection_ready),
            ("query", &query_ready),
        ] {
            let probes = probes.lock().expect("probes");
            let down = probes
                .iter()
                .filter(|(at, _)| *at >= o.stopped && *at <= o.starting)
                .count();
            let not_ready = probes
                .iter()
                .filter(|(at, _)| *at >= o.stopped + Duration::from_secs(2) && *at <= o.starting)
                .filter(|(_, s)| *s != Some(503))
                .count();
            assert!(down > 0, "{name} /readyz probed during the outage");
            assert_eq!(
                not_ready, 0,
                "{name} /readyz said other than 503 while the database was down"
            );
            let back = probes
                .iter()
                .find(|(at, s)| *at >= o.started && *s == Some(200))
                .map(|(at, _)| *at - o.started);
            readiness.push((name, back));
        }
        let command_back = readiness[0].1.expect("command /readyz 200 again");
        assert!(
            command_back < MAX_RECOVERY,
            "{:?}: command /readyz 200 only {command_back:?} after the start",
            o.mode
        );
        for (name, back) in &readiness[1..] {
            let back = back.unwrap_or_else(|| panic!("{name} /readyz never 200 again"));
            assert!(
                back < MAX_RECOVERY * 2,
                "{:?}: {name} /readyz 200 only {back:?} after the start",
                o.mode
            );
        }
        report.push(format!(
            "{:?}: stop took {:?}, down {:?}, start took {:?}; {} new transactions answered 503 while down; \
             first 2xx {first_2xx:?} after start; readyz 200 again after {readiness:?}",
            o.mode,
            o.stopped - o.stopping,
            o.starting - o.stopped,
            o.started - o.starting,
            unavailable,
        ));
    }

    // Nothing acknowledged lost, nothing twice, repeats answered the same.
    assert!(
        journal.mismatches.is_empty(),
        "a repeat got another answer: {:#?}",
        journal.mismatches
    );
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT payload->'transaction'->>'transaction_id', count(*) FROM events \
         WHERE event_type = 'TransactionRecorded' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("log");
    let in_log: HashMap<String, i64> = rows.into_iter().collect();
    let mut lost = Vec::new();
    for id in journal.answers.keys() {
        match in_log.get(id) {
            Some(1) => {}
            n => lost.push(format!("{id}: {n:?} times")),
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged, but not in the log exactly once: {lost:?}"
    );
    let unacknowledged: Vec<&String> = in_log
        .keys()
        .filter(|id| !journal.answers.contains_key(*id))
        .collect();
    assert!(
        unacknowledged.is_empty(),
        "in the log but never acknowledged (every client retries until answered): {unacknowledged:?}"
    );
    // In doubt: 503 first (the database went away mid-commit), then 200 (a
    // repeat), i.e. the first attempt had committed and the retry found it.
    let mut first_status: HashMap<&str, u16> = HashMap::new();
    let mut in_doubt = 0;
    for s in seen.iter().filter(|s| !s.repeat) {
        let Some(status) = s.status else { continue };
        let first = *first_status.entry(&s.id).or_insert(status);
        if first == 503 && status == 200 {
            in_doubt += 1;
        }
    }
    assert_eq!(
        counted, acknowledged,
        "the read models count every acknowledged transaction (after {caught_up:?})"
    );
    let answered_503 = seen.iter().filter(|s| s.status == Some(503)).count();
    eprintln!(
        "postgres_restart: {} requests, {acknowledged} transactions acknowledged and in the log once each, \
         {answered_503} answered 503, {in_doubt} committed before the outage was noticed and found on retry, \
         slowest answer {slowest:?}, read models caught up {caught_up:?} after the load\n  {}",
        seen.len(),
        report.join("\n  ")
    );
}
