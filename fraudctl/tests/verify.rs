//! `fraudctl verify` as an auditor runs it: the binary against a log the
//! command side wrote with signed checkpoints. Untouched, it exits 0 with
//! the count verified; after someone edits one event's payload directly in
//! the database, it exits 2 naming that position. `fraudctl public-key`
//! prints the key the checkpoints are signed with.

use event_store::postgres::PgEventStore;
use event_store::trust::{CheckpointPolicy, Signer};
use event_store::{EventStore, ExpectedVersion, NewEvent};
use sqlx::PgPool;
use std::process::Output;
use test_support::database_url;

const KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

async fn fraudctl(args: &[&str], db: String) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fraudctl"))
            .args(&args)
            .env("DATABASE_URL", db)
            .env("SENTINEL_SIGNING_KEY", KEY)
            .env_remove("SENTINEL_TRUSTED_KEYS")
            .env("RUST_LOG", "warn")
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_edited_payload_fails_verify_and_names_its_position(pool: PgPool) {
    let seed: [u8; 32] = [7; 32];
    let store = PgEventStore::signing(
        pool.clone(),
        CheckpointPolicy::new(Signer::from_seed(&seed)),
    );
    for i in 0..30 {
        store
            .append(
                &format!("customer-{}", i % 4),
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    "TransactionRecorded",
                    2,
                    chrono::Utc::now(),
                    serde_json::json!({ "amount": 10 + i, "currency": "EUR" }),
                )],
            )
            .await
            .expect("append");
    }
    let url = database_url(&pool);

    let out = fraudctl(&["verify"], url.clone()).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("verified 30 events and 1 checkpoints"),
        "{}",
        text(&out)
    );

    let out = fraudctl(&["public-key"], url.clone()).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        Signer::from_seed(&seed).public_key_hex()
    );

    // What the external check does: edit one payload in place.
    sqlx::raw_sql(
        "ALTER TABLE events DISABLE TRIGGER events_append_only; \
         UPDATE events SET payload = '{\"amount\": 1000000, \"currency\": \"EUR\"}' WHERE position = 17; \
         ALTER TABLE events ENABLE TRIGGER events_append_only",
    )
    .execute(&pool)
    .await
    .expect("tampering");
    let out = fraudctl(&["verify"], url).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("position 17: edited"), "{}", text(&out));
}
