//! The command side killed under load (issue: reliability). The real
//! `command-service` binary runs as a child process; clients keep thousands
//! of transactions in flight across many customers; the process is SIGKILLed
//! at random moments and restarted on the same port, and clients retry what
//! failed with the same transaction ids. Afterwards: every transaction that
//! got a 2xx is in the log exactly once, a retry got the original answer, and
//! no transaction is half-written (its alert without it, or the reverse).

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::wait::ready as wait_healthy;
use test_support::{database_url, free_port};

/// Kill cycles; `SENTINEL_KILL_CYCLES` raises it for a longer run.
fn cycles() -> usize {
    std::env::var("SENTINEL_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn start(url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_command-service"))
        .env("DATABASE_URL", url)
        .env("SENTINEL_COMMAND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn command-service")
}

fn transaction(id: usize, customers: usize) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::seconds((id % 5000) as i64);
    let category = ["grocery", "fuel", "travel", "electronics"][id % 4];
    let (city, country, lat, lon) =
        [("Paris", "FR", 48.85, 2.35), ("Tokyo", "JP", 35.68, 139.65)][id % 2];
    json!({
        "transaction_id": format!("k-{id}"),
        "timestamp": at.to_rfc3339(),
        "user_id": format!("kc-{}", id % customers),
        "merchant_id": format!("m-{}", id % 17),
        "amount": if id.is_multiple_of(23) { 4999.0 } else { 10.0 + (id % 90) as f64 },
        "currency": "EUR",
        "transaction_type": if id.is_multiple_of(11) { "withdrawal" } else { "purchase" },
        "payment_method": "credit_card",
        "merchant_category": category,
        "location": {"city": city, "country": country, "coordinates": [lat, lon]},
        "device_info": {"device_type": "pos"}
    })
}

/// What one client saw for one transaction: its first 2xx answer.
type Answers = Arc<Mutex<HashMap<usize, Value>>>;

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_acknowledged_transaction_survives_sigkill_exactly_once(pool: PgPool) {
    let url = database_url(&pool);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut child = start(&url, port);
    wait_healthy(&http, &base).await;

    let customers = 400;
    let answers: Answers = Arc::default();
    let mismatches = Arc::new(Mutex::new(Vec::<String>::new()));
    // Clients send until the kills are over; each transaction started is
    // retried until answered.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    // 48 clients, each owning every 48th transaction, retrying until answered.
    let mut clients = Vec::new();
    for client in 0..48 {
        let (http, base, answers, mismatches, stop, started) = (
            http.clone(),
            base.clone(),
            answers.clone(),
            mismatches.clone(),
            stop.clone(),
            started.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut id = client;
            while !stop.load(Ordering::SeqCst) {
                started.fetch_add(1, Ordering::SeqCst);
                let body = transaction(id, customers);
                loop {
                    let sent = http
                        .post(format!("{base}/v1/transactions"))
                        .json(&body)
                        .send()
                        .await;
                    let Ok(response) = sent else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let status = response.status().as_u16();
                    if status == 201 || status == 200 {
                        let answer: Value = response.json().await.unwrap_or(Value::Null);
                        let mut seen = answers.lock().expect("answers");
                        match seen.get(&id) {
                            Some(first) if *first != answer => mismatches
                                .lock()
                                .expect("mismatches")
                                .push(format!("k-{id}: first {first}, then {answer}")),
                            Some(_) => {}
                            None => {
                                seen.insert(id, answer);
                            }
                        }
                        // Ask again: a retry must get the same answer.
                        if id.is_multiple_of(7) && status == 201 {
                            continue;
                        }
                        break;
                    }
                    // 503 while the store is unreachable or the process is
                    // going down: retry; anything else is a failure.
                    assert!(status == 503 || status == 502, "k-{id} answered {status}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                id += 48;
            }
        }));
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut kills = 0;
    // At least `cycles()` kills, and on until 1,000 transactions were sent
    // (a loaded machine sends fewer per cycle), within a bound.
    while kills < cycles() || (started.load(Ordering::SeqCst) < 1000 && kills < 6 * cycles()) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..700))).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        kills += 1;
        child = start(&url, port);
        wait_healthy(&http, &base).await;
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client");
    }
    let total = started.load(Ordering::SeqCst);
    let _ = child.kill();
    let _ = child.wait();

    assert!(
        total >= 1000,
        "only {total} transactions were sent across {kills} kills: too little load to test"
    );
    let mismatches = mismatches.lock().expect("mismatches").clone();
    assert!(
        mismatches.is_empty(),
        "retries answered differently: {mismatches:#?}"
    );
    let answers = answers.lock().expect("answers").clone();
    assert_eq!(
        answers.len(),
        total,
        "every transaction was eventually acknowledged"
    );

    // In the log exactly once each, with its alert when the answer had one.
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT payload->'transaction'->>'transaction_id', count(*), \
                count(*) FILTER (WHERE payload->>'alert_id' IS NOT NULL) \
         FROM events WHERE event_type = 'TransactionRecorded' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("recorded");
    let recorded: HashMap<String, (i64, i64)> =
        rows.into_iter().map(|(id, n, a)| (id, (n, a))).collect();
    let alerts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'AlertRaised'")
            .fetch_one(&pool)
            .await
            .expect("alerts");
    let mut alerted = 0;
    for (id, answer) in &answers {
        let key = format!("k-{id}");
        let (count, with_alert) = recorded.get(&key).copied().unwrap_or((0, 0));
        assert_eq!(count, 1, "{key} is in the log {count} times");
        let answered_alerts = answer["alerts"].as_array().map_or(0, Vec::len) as i64;
        assert_eq!(
            with_alert,
            answered_alerts.min(1),
            "{key}: the log and the answer disagree on its alert"
        );
        alerted += answered_alerts.min(1);
    }
    assert_eq!(
        recorded.len(),
        total,
        "nothing unacknowledged was recorded twice or invented"
    );
    assert_eq!(
        alerts, alerted,
        "every AlertRaised belongs to a recorded transaction, and the reverse"
    );
    println!("kills survived: {kills}; transactions: {total}; alerts: {alerts}; losses: 0");
}
