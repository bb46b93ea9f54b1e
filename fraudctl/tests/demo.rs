//! `fraudctl demo` end to end: it starts every service on its own database,
//! sends traffic, serves a GraphQL query that finds the projected
//! transactions, and shuts down cleanly (exit 0, its ports closed) when its
//! `--duration` is up; the console's address comes first, and the console
//! and its forwarded actions work.

use serde_json::{Value, json};
use sqlx::PgPool;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::{database_url, free_port};

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_demo_starts_serves_graphql_and_shuts_down_cleanly(pool: PgPool) {
    let (command, query, projection) = (free_port(), free_port(), free_port());
    let mut demo = Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .args([
            "demo",
            "--duration",
            "20",
            "--rate",
            "100",
            "--customers",
            "300",
        ])
        .env("DATABASE_URL", database_url(&pool))
        .env("SENTINEL_COMMAND_ADDR", format!("127.0.0.1:{command}"))
        .env("SENTINEL_QUERY_ADDR", format!("127.0.0.1:{query}"))
        .env(
            "SENTINEL_PROJECTION_ADDR",
            format!("127.0.0.1:{projection}"),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fraudctl demo");

    let http = reqwest::Client::new();
    let graphql = format!("http://127.0.0.1:{query}/graphql");
    let body = json!({"query": "{ alerts(first: 1) { totalCount } projections { name state } dashboard { __typename } }"});
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut projected = 0;
    let mut answer = Value::Null;
    while Instant::now() < deadline && projected == 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(r) = http.post(&graphql).json(&body).send().await
            && let Ok(v) = r.json::<Value>().await
        {
            answer = v;
            projected =
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM rm_transactions.transactions")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0);
        }
    }
    assert!(
        projected > 0,
        "no traffic was projected; last GraphQL answer: {answer}"
    );
    assert!(answer["errors"].is_null(), "GraphQL errors: {answer}");
    assert_eq!(
        answer["data"]["projections"].as_array().map(Vec::len),
        Some(7),
        "{answer}"
    );

    // The console is served, and its actions reach the demo's command
    // service (which knows no such alert: 404, not the 503 of a query API
    // without one).
    let console = http
        .get(format!("http://127.0.0.1:{query}/console/"))
        .send()
        .await
        .expect("GET /console/");
    assert_eq!(console.status(), 200);
    assert!(
        console
            .text()
            .await
            .unwrap_or_default()
            .contains("Alert queue")
    );
    let action = http
        .post(format!(
            "http://127.0.0.1:{query}/v1/alerts/0190e1f4-0000-7000-8000-000000000000/acknowledgement"
        ))
        .json(&json!({"analyst": "ana"}))
        .send()
        .await
        .expect("POST an action");
    assert_eq!(action.status(), 404, "forwarded to the command service");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the demo did not stop after its duration"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.success(), "the demo exited with {status}");
    // The console's address is the first address it prints, and it heads
    // the block of addresses once the services are up.
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut demo.stdout.take().expect("stdout"), &mut printed)
        .expect("read stdout");
    let first = printed.lines().find(|l| l.contains("http://"));
    assert_eq!(
        first,
        Some(
            format!("Sentinel demo: the console is at http://127.0.0.1:{query}/console/").as_str()
        ),
        "{printed}"
    );
    let addresses: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains("http://"))
        .collect();
    assert_eq!(
        addresses.first().map(|l| l.trim_start()),
        Some(format!("console      http://127.0.0.1:{query}/console/").as_str()),
        "{printed}"
    );
    for port in [command, query, projection] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open after the demo stopped"
        );
    }
}
