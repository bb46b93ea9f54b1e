//! `fraudctl eval --protocol temporal` end to end on a small world, against
//! real PostgreSQL: the binary makes its own database on the test's server
//! (kept with `--keep`, dropped here), serves Sentinel in-process, drives it
//! over HTTP, runs `fraudctl model train --promote` as a child, and reports
//! JSON. The test checks the protocol's rules from the report and, on its
//! own, from the log: batches of at most 1,000, every transaction recorded,
//! the first half's labels between the halves, no later label before its
//! transaction is 7 simulated days old, figures over the second half only,
//! the rules-only column beside the served one. While this build has no
//! `model train`, the second half is rules only and the two columns must
//! agree exactly; once a model is promoted, it must not lose recall (nor
//! add much more than its 1% target of false positives). Both tolerances
//! are loose on purpose until training is merged.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use test_support::database_url;

const START: &str = "2026-01-05T00:00:00Z";
const DELAY_DAYS: i64 = 7;
/// How much recall the model may cost (the figures on 300 customers are
/// noisy; the lead tightens this once training is merged).
const RECALL_TOLERANCE: f64 = 0.02;
/// Over the default 1% target FPR, likewise.
const FPR_TOLERANCE: f64 = 0.01;

/// The binary, off the runtime's threads.
async fn fraudctl(args: Vec<String>, url: String) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fraudctl"))
            .args(&args)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .env_remove("SENTINEL_TOKENS")
            .env_remove("SENTINEL_POLICY")
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

fn with_database(url: &str, name: &str) -> String {
    let slash = url.rfind('/').expect("a database in the URL");
    format!("{}/{name}", &url[..slash])
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_temporal_protocol_on_a_small_world(pool: PgPool) {
    let url = database_url(&pool);
    let args: Vec<String> = [
        "eval",
        "--protocol",
        "temporal",
        "--world",
        "default",
        "--seed",
        "11",
        "--customers",
        "300",
        "--days",
        "56",
        "--start",
        START,
        "--services",
        "command",
        "--keep",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = fraudctl(args, url.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "eval failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{stderr}"));
    let kept = report["database"].as_str().expect("the kept database");
    let eval_url = with_database(&url, kept);
    let checked = check(&report, &eval_url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{kept}\" WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .expect("drops the evaluation database");
    checked.unwrap_or_else(|e| panic!("{e}\nreport: {report:#}"));
}

async fn check(report: &Value, eval_url: &str) -> Result<(), String> {
    // The log first: it does not take the report's word for anything.
    check_log(eval_url, report).await?;
    let m = &report["mechanics"];
    let (total, first, second) = (
        u(&report["transactions"]),
        u(&report["first_half"]),
        u(&report["second_half"]),
    );
    let ensure = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
    ensure(first > 1_000 && second > 1_000, "both halves are sizeable")?;
    ensure(first + second == total, "the halves make the whole")?;

    // Batches of at most 1,000, every transaction recorded once.
    ensure(
        u(&m["max_transactions_per_request"]) == 1_000,
        "full batches of 1,000",
    )?;
    ensure(u(&m["max_labels_per_request"]) <= 1_000, "labels ≤ 1,000")?;
    ensure(u(&m["second_half_days"]) == 28, "28 days one at a time")?;
    ensure(
        u(&m["transaction_requests"]) >= first.div_ceil(1_000) + 28,
        "one request per 1,000, and at least one per second-half day",
    )?;
    ensure(u(&m["transactions_recorded"]) == total, "all recorded")?;
    ensure(u(&m["transactions_refused"]) == 0, "none refused")?;
    let (lf, ls) = (u(&m["labels_first_half"]), u(&m["labels_second_half"]));
    ensure(lf > 0 && ls > 0, "labels in both halves")?;
    ensure(u(&m["labels_recorded"]) == lf + ls, "every label recorded")?;
    ensure(u(&m["labels_refused"]) == 0, "no label refused")?;
    let min_age = m["min_label_age_days"].as_f64().ok_or("a label age")?;
    ensure(min_age > DELAY_DAYS as f64, "labels at least 7 days old")?;

    // Figures over the second half only, both columns.
    let scores = &report["scores"];
    for column in ["served", "rules_only"] {
        ensure(
            u(&scores[column]["overall"]["transactions"]) == second
                && u(&scores[column]["missing"]) == 0,
            &format!("{column} covers exactly the second half"),
        )?;
        ensure(
            u(&scores[column]["overall"]["fraud"]) > 0,
            &format!("{column} has fraud to find"),
        )?;
    }
    ensure(u(&scores["not_in_log"]) == 0, "every answer is in the log")?;
    ensure(
        u(&scores["answer_log_disagreements"]) == 0,
        "the answers are what the log recorded",
    )?;
    let recall = |column: &str| scores[column]["overall"]["recall"].as_f64().unwrap_or(0.0);
    let training = &report["training"];
    match training["model_version"].as_str() {
        None => {
            // No model: the rules-only column recomputed from the log must
            // be exactly what the service answered.
            ensure(
                u(&scores["rules_only_differs"]) == 0,
                "rules only = served without a model",
            )?;
            // (Counts, not every figure: a mean over a hash map's episodes
            // may differ in its last bit.)
            for field in [
                "flagged",
                "true_positives",
                "false_positives",
                "episodes_detected",
            ] {
                ensure(
                    scores["served"]["overall"][field] == scores["rules_only"]["overall"][field],
                    &format!("the same {field} without a model"),
                )?;
            }
        }
        Some(model) => {
            eprintln!("model {model} promoted");
            ensure(training["status"] == "promoted", "promoted")?;
            ensure(
                u(&scores["decided_with_model"]) == second,
                "every second-half decision scored by the model",
            )?;
            ensure(
                recall("served") >= recall("rules_only") - RECALL_TOLERANCE,
                "the model does not cost recall",
            )?;
            // Not bought by flagging everything: thresholds are chosen for
            // a 1% FPR, so at most about that much is added.
            let fpr = |column: &str| {
                scores[column]["overall"]["false_positive_rate"]
                    .as_f64()
                    .unwrap_or(1.0)
            };
            ensure(
                fpr("served") <= fpr("rules_only") + 0.01 + FPR_TOLERANCE,
                "the model adds at most about its target FPR",
            )?;
        }
    }
    Ok(())
}

/// Position, type, a transaction's id and time, a label's transaction.
type LogRow = (i64, String, Option<String>, Option<String>, Option<String>);

/// From the log alone: labels in the right places, by the simulated clock.
async fn check_log(eval_url: &str, report: &Value) -> Result<(), String> {
    let pool = PgPool::connect(eval_url).await.map_err(|e| e.to_string())?;
    let rows: Vec<LogRow> = sqlx::query_as(
        "SELECT position, event_type, payload->'transaction'->>'transaction_id', \
                payload->'transaction'->>'timestamp', payload->>'transaction_id' \
         FROM events WHERE event_type IN ('TransactionRecorded', 'TransactionLabeled') \
         ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| e.to_string())?;
    pool.close().await;
    let split: DateTime<Utc> = report["split_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("split_at")?;
    let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
    let (mut recorded, mut labels) = (0u64, 0u64);
    let mut newest: Option<DateTime<Utc>> = None;
    for (position, kind, tx_id, tx_time, labelled) in rows {
        if kind == "TransactionRecorded" {
            let (id, at) = (tx_id.ok_or("an id")?, tx_time.ok_or("a time")?);
            let at: DateTime<Utc> = at.parse().map_err(|e| format!("{at}: {e}"))?;
            seen.insert(id, at);
            newest = Some(newest.map_or(at, |n| n.max(at)));
            recorded += 1;
            continue;
        }
        labels += 1;
        let id = labelled.ok_or("a labelled id")?;
        let at = *seen.get(&id).ok_or(format!(
            "label of {id} before its transaction (@{position})"
        ))?;
        let newest = newest.ok_or("a transaction first")?;
        if at < split {
            // The first half's labels: after the first half, before the rest.
            if newest >= split {
                return Err(format!("first-half label of {id} after the split"));
            }
            continue;
        }
        // The simulated clock: the end of the day the newest transaction is
        // in (days start at midnight UTC, as --start does).
        let clock = newest
            .duration_trunc(Duration::days(1))
            .map_err(|e| e.to_string())?
            + Duration::days(1);
        if clock - at <= Duration::days(DELAY_DAYS) {
            return Err(format!(
                "label of {id} (at {at}) posted at simulated {clock}: under {DELAY_DAYS} days"
            ));
        }
    }
    let m = &report["mechanics"];
    if recorded != u(&report["transactions"]) {
        return Err(format!("{recorded} transactions in the log"));
    }
    if labels != u(&m["labels_recorded"]) {
        return Err(format!("{labels} labels in the log"));
    }
    Ok(())
}
