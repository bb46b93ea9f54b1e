//! `fraudctl bench pipeline` end to end at small rates and short durations:
//! it starts the three services as processes on a database of its own
//! beside the test's, holds at least the lowest rate, prints the
//! `sustained N tx/s` line an external check reads, and its burst loses
//! nothing it acknowledged.

use sqlx::PgPool;
use std::process::Command;
use test_support::database_url;

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_pipeline_bench_prints_a_sustained_rate_and_the_burst_loses_nothing(pool: PgPool) {
    let url = database_url(&pool);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_fraudctl"))
            .args(["bench", "pipeline", "--runs", "1", "--rates", "100,200"])
            .args(["--probe-seconds", "2", "--seconds", "3"])
            .args(["--burst-rate", "3000", "--burst-seconds", "2"])
            .args(["--recovery-seconds", "3", "--customers", "300"])
            .args(["--connections", "16", "--burst-connections", "64"])
            .args(["--lag-bound-ms", "5000", "--no-ceiling"])
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("runs fraudctl")
    })
    .await
    .expect("joins");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let sustained: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("sustained "))
        .collect();
    assert_eq!(sustained.len(), 1, "one sustained line:\n{stdout}");
    let rate: u64 = sustained[0]
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a rate in {:?}", sustained[0]));
    assert!(
        rate >= 100,
        "held at least the lowest rate:\n{stdout}\n{stderr}"
    );
    assert!(sustained[0].contains("tx/s: end-to-end p50 "), "{stdout}");

    let burst = stdout
        .lines()
        .find(|l| l.starts_with("burst, run 1: 3000 tx/s offered"))
        .unwrap_or_else(|| panic!("a burst line:\n{stdout}"));
    assert!(
        burst.contains(" 0 acknowledged but missing from the log"),
        "{burst}"
    );
    let acknowledged: u64 = burst
        .split(", ")
        .find_map(|part| part.strip_suffix(" acknowledged")?.parse().ok())
        .unwrap_or_else(|| panic!("acknowledged count in {burst}"));
    assert!(acknowledged > 0, "{burst}");
    assert!(
        stdout.contains("burst: zero acknowledged losses: met"),
        "{stdout}"
    );
}
