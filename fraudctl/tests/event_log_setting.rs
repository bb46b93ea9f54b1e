//! `SENTINEL_EVENT_STORE` seen from the fraudctl binary: a KurrentDB log
//! that cannot be served stops `serve` at start, non-zero, with an error
//! that names the server (password hidden) and the variable; the tools that
//! work on the PostgreSQL log (`verify`) refuse a KurrentDB log by name.
//! Without the `esdb` feature the error says how to build with it; with it
//! the port is closed, so no KurrentDB server is needed either way.

use sqlx::PgPool;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to its end, at most `limit`; returns its exit code and
/// stderr. A run past the limit is killed and fails the test: a missing log
/// must not make a service hang.
fn run_bounded(command: &mut Command, limit: Duration, tag: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("fraudctl-log-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let err_path: PathBuf = dir.join("stderr");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut child = command
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("fraudctl starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: it should have failed at start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    std::fs::remove_dir_all(&dir).ok();
    (status.code(), stderr)
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn serve_stops_at_start_when_the_kurrentdb_log_cannot_be_opened(pool: PgPool) {
    let port = test_support::process::free_port();
    let (code, stderr) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_fraudctl"))
            .args(["serve", "--role", "all"])
            .env("DATABASE_URL", test_support::process::database_url(&pool))
            .env(
                "SENTINEL_EVENT_STORE",
                format!("esdb://admin:hunter2@127.0.0.1:{port}?tls=false"),
            )
            .env("SENTINEL_EVENT_STORE_TIMEOUT_SECS", "3"),
        Duration::from_secs(60),
        "serve",
    );
    assert!(
        code.is_some_and(|c| c != 0),
        "non-zero exit: {code:?}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("esdb://admin:***@127.0.0.1:{port}?tls=false")),
        "names the server: {stderr}"
    );
    assert!(stderr.contains("SENTINEL_EVENT_STORE"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "no password: {stderr}");
    if cfg!(feature = "esdb") {
        assert!(stderr.contains("event log in KurrentDB"), "{stderr}");
    } else {
        assert!(
            stderr.contains("built without the KurrentDB backend")
                && stderr.contains("--features esdb"),
            "says how to build it: {stderr}"
        );
    }
}

#[test]
fn verify_refuses_a_kurrentdb_log_by_name() {
    let (code, stderr) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_fraudctl"))
            .arg("verify")
            // Never reached: the setting is checked first.
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env(
                "SENTINEL_EVENT_STORE",
                "kurrentdb://admin:hunter2@127.0.0.1:2113",
            ),
        Duration::from_secs(30),
        "verify",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("fraudctl verify works on the PostgreSQL event log only"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SENTINEL_EVENT_STORE=kurrentdb://admin:***@127.0.0.1:2113"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
