//! `fraudctl model train --promote` and `fraudctl pipeline retrain` as an
//! orchestrator runs them: the binary with `DATABASE_URL` in its
//! environment and no other flag, against a log that a real command side
//! wrote (simulated traffic with late chargeback labels, sent by `fraudctl
//! simulate`). The model and a policy naming it land in the log, and the
//! pipeline run after it has nothing new to do (exit 0); a log without
//! enough fraud labels gives exit 4.

use event_store::EventStore;
use sqlx::PgPool;
use std::process::Output;
use test_support::{database_url, spawn_command};

async fn fraudctl(args: &[&str], db: Option<String>) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_fraudctl"));
        c.args(&args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn");
        if let Some(url) = db {
            c.env("DATABASE_URL", url);
        }
        c.output().expect("runs")
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

async fn simulate(base: &str, customers: &str, days: &str, label_delay: &str) {
    let out = fraudctl(
        &[
            "simulate",
            "--target",
            base,
            "--batch",
            "500",
            "--customers",
            customers,
            "--days",
            days,
            "--fraud-rate",
            "0.02",
            "--label-delay",
            label_delay,
            "--quiet",
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn train_and_promote_with_only_the_database_url(pool: PgPool) {
    let app = spawn_command(pool.clone()).await;
    simulate(&app.base, "150", "10", "1").await;
    let url = database_url(&pool);

    let out = fraudctl(&["model", "train", "--promote"], Some(url.clone())).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for shown in [
        "ROC AUC",
        "average precision",
        "at FPR",
        "importances",
        "promoted policy p-m-",
    ] {
        assert!(stdout.contains(shown), "{shown}: {stdout}");
    }

    let model = app
        .store
        .read_stream(domain::streams::MODEL, 0, 10)
        .await
        .unwrap();
    assert_eq!(model.len(), 1);
    assert_eq!(model[0].event_type, "ModelTrained");
    let policy = app
        .store
        .read_stream(domain::streams::POLICY, 0, 100)
        .await
        .unwrap();
    let promoted = policy.last().unwrap();
    assert_eq!(promoted.event_type, "PolicyPromoted");
    assert!(
        promoted.payload.as_str().contains("\"p-m-"),
        "{}",
        promoted.payload.as_str()
    );

    // Scheduled right after: no new label, nothing to do, exit 0.
    let out = fraudctl(&["pipeline", "retrain"], Some(url)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_pipeline_exits_4_without_enough_labels(pool: PgPool) {
    let app = spawn_command(pool.clone()).await;
    simulate(&app.base, "10", "1", "0").await;
    let out = fraudctl(&["pipeline", "retrain"], Some(database_url(&pool))).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("not enough labels"), "{}", text(&out));
}
