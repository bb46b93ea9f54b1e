//! Labels resolved to their transactions, and the live merchant and
//! category counts, over real HTTP and a real PostgreSQL:
//! - `POST /v1/labels/batch`: per-item 201 / 200 / 404 (quarantined) / 422;
//!   the same label again answers the stored one, a contradicting one is a
//!   new label that knows what it flipped;
//! - a label sent right after its transaction's answer finds it; a label
//!   naming its customer finds a transaction the bounded directory forgot;
//! - an analyst's verdict is a label for the alert's transaction;
//! - the live book equals `domain::peers::PeerReplay` folded over the same
//!   log, and `?include=features` shows rates from labels posted earlier.

mod common;

use command_service::configuration::Settings;
use command_service::http::App;
use command_service::startup::Application;
use common::{TestApp, spawn, spawn_with, tx};
use domain::DomainEvent;
use domain::ids::MerchantId;
use domain::peers::PeerReplay;
use domain::text::MerchantCategory;
use event_store::postgres::PgEventStore;
use event_store::{EventStore, Position};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

fn label(id: &str, is_fraud: bool, source: &str) -> Value {
    json!({"transaction_id": id, "is_fraud": is_fraud, "source": source})
}

/// A transaction at `merchant` in `category`, `days_ago` days back.
fn tx_at(id: &str, customer: &str, merchant: &str, category: &str, days_ago: i64) -> Value {
    let mut t = tx(id, customer, 30.0, days_ago * 24 * 60 + 1);
    t["merchant_id"] = merchant.into();
    t["merchant_category"] = category.into();
    t
}

async fn post_ok(app: &TestApp, path: &str, body: &Value) -> Value {
    let (status, answer) = app.post(path, body).await;
    assert!(status == 201 || status == 200, "{path}: {status} {answer}");
    answer
}

/// The domain event of each of a stream's events.
async fn events(app: &TestApp, stream: &str) -> Vec<DomainEvent> {
    app.stream(stream)
        .await
        .iter()
        .map(|e| {
            DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str())
                .expect("readable")
        })
        .collect()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_of_labels_answers_each_item(pool: PgPool) {
    let app = spawn(pool).await;
    post_ok(&app, "/v1/transactions", &tx("bl-1", "c-bl", 10.0, 30)).await;
    post_ok(&app, "/v1/transactions", &tx("bl-2", "c-bl", 12.0, 20)).await;

    let batch = json!([
        label("bl-1", true, "chargeback"),
        label("nobody-knows", true, "chargeback"),
        {"transaction_id": "bad id", "is_fraud": "yes"},
        label("bl-2", false, "chargeback"),
    ]);
    let (status, answer) = app.post("/v1/labels/batch", &batch).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().expect("results");
    let statuses: Vec<_> = results.iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, [json!(201), json!(404), json!(422), json!(201)]);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    assert_eq!(results[0]["answer"]["transaction_id"], "bl-1");
    assert_eq!(results[0]["answer"]["is_fraud"], true);
    let unknown = &results[1]["problem"];
    assert_eq!(unknown["type"], "/problems/unknown-transaction");
    assert_eq!(unknown["errors"][0]["reason"], "unknown_transaction");
    assert!(unknown["quarantine_id"].is_string(), "{unknown}");
    let invalid = &results[2]["problem"];
    assert_eq!(invalid["type"], "/problems/invalid-label");
    assert_eq!(
        common::error_fields(invalid),
        ["is_fraud", "source", "transaction_id"]
    );

    // Both refused items are in the quarantine, whole, with their reasons.
    let kept: Vec<_> = events(&app, "quarantine")
        .await
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::InputQuarantined(q) => Some(q),
            _ => None,
        })
        .collect();
    let unknown_kept = kept
        .iter()
        .find(|q| q.batch_index == Some(1))
        .expect("the unknown transaction's label is kept");
    assert_eq!(unknown_kept.reasons[0].reason.code(), "unknown_transaction");
    assert_eq!(
        serde_json::from_str::<Value>(&unknown_kept.raw_body).expect("json"),
        batch[1]
    );
    assert_eq!(
        unknown["quarantine_id"],
        json!(unknown_kept.quarantine_id.0.to_string())
    );
    assert!(kept.iter().any(|q| q.batch_index == Some(2)));

    // The label knows its transaction (v2) and what it flipped.
    let labeled = events(&app, "label-bl-1").await;
    let [DomainEvent::TransactionLabeled(first)] = labeled.as_slice() else {
        panic!("one label: {labeled:?}");
    };
    let t = first
        .transaction
        .as_ref()
        .expect("the labelled transaction");
    assert_eq!(t.customer_id.as_str(), "c-bl");
    assert_eq!(t.merchant_id.as_ref().map(|m| m.as_str()), Some("m-1"));
    assert_eq!(first.was_fraud, Some(false));

    // The same label again: 200, the stored one, nothing appended; the
    // contradicting one: 201, a new label that flips the status.
    let again = json!([
        label("bl-1", true, "chargeback"),
        label("bl-1", false, "analyst")
    ]);
    let (_, second) = app.post("/v1/labels/batch", &again).await;
    let results = second["results"].as_array().expect("results");
    assert_eq!(results[0]["status"], 200, "{second}");
    assert_eq!(results[0]["answer"], answer["results"][0]["answer"]);
    assert_eq!(results[1]["status"], 201, "{second}");
    let labeled = events(&app, "label-bl-1").await;
    assert_eq!(labeled.len(), 2);
    let DomainEvent::TransactionLabeled(flip) = &labeled[1] else {
        panic!("a label");
    };
    assert_eq!((flip.is_fraud, flip.was_fraud), (false, Some(true)));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_refused_whole_is_quarantined(pool: PgPool) {
    let settings = Settings {
        batch_max_items: 2,
        ..Settings::default()
    };
    let app = spawn_with(pool, settings).await;
    let three = json!([
        label("a", true, "x"),
        label("b", true, "x"),
        label("c", true, "x")
    ]);
    let (status, problem) = app.post("/v1/labels/batch", &three).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "/problems/batch-too-large");
    let (status, problem) = app
        .post("/v1/labels/batch", &json!({"not": "an array"}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["quarantine_id"].is_string());
    assert_eq!(app.stream("quarantine").await.len(), 2);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_label_right_after_its_transaction_finds_it(pool: PgPool) {
    let app = spawn(pool).await;
    for i in 0..30 {
        let id = format!("race-{i}");
        post_ok(
            &app,
            "/v1/transactions",
            &tx(&id, &format!("c-race-{}", i % 3), 5.0, 60),
        )
        .await;
        let (status, answer) = app
            .post("/v1/labels", &label(&id, i % 2 == 0, "chargeback"))
            .await;
        assert_eq!(status, 201, "{id}: {answer}");
    }
    // A single label for an unknown transaction: 404, and kept.
    let (status, problem) = app
        .post("/v1/labels", &label("never-sent", true, "chargeback"))
        .await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["type"], "/problems/unknown-transaction");
    assert!(problem["quarantine_id"].is_string());
    assert!(app.stream("label-never-sent").await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_label_naming_its_customer_finds_what_the_directory_forgot(pool: PgPool) {
    // 7 ids a generation: the first of 40 transactions is forgotten.
    let settings = Settings {
        label_directory: 16,
        ..Settings::default()
    };
    let app = spawn_with(pool, settings).await;
    for i in 0..40 {
        let t = tx(
            &format!("old-{i}"),
            &format!("c-old-{}", i % 4),
            7.0,
            90 - i,
        );
        post_ok(&app, "/v1/transactions", &t).await;
    }
    let (status, _) = app
        .post("/v1/labels", &label("old-0", true, "chargeback"))
        .await;
    assert_eq!(status, 404, "the directory is bounded");
    let mut named = label("old-0", true, "chargeback");
    named["customer_id"] = "c-old-0".into();
    let (status, answer) = app.post("/v1/labels", &named).await;
    assert_eq!(status, 201, "{answer}");
    named["customer_id"] = "c-old-1".into();
    named["transaction_id"] = "old-4".into();
    let (status, _) = app.post("/v1/labels", &named).await;
    assert_eq!(status, 404, "old-4 is c-old-0's, not c-old-1's");
    // Recent ones are still known by id alone.
    let (status, _) = app
        .post("/v1/labels", &label("old-39", false, "chargeback"))
        .await;
    assert_eq!(status, 201);
}

/// Raises an alert with a velocity burst; its id and transaction id.
async fn raise_alert(app: &TestApp, customer: &str) -> (String, String) {
    for i in 0..6 {
        let id = format!("{customer}-t{i}");
        let answer = post_ok(app, "/v1/transactions", &tx(&id, customer, 20.0, 8 - i)).await;
        if let Some(alert) = answer["alerts"][0]["alert_id"].as_str() {
            return (alert.to_owned(), id);
        }
    }
    panic!("the burst raised no alert");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_verdict_is_a_label(pool: PgPool) {
    let app = spawn(pool).await;
    let (alert, transaction) = raise_alert(&app, "c-verdict").await;
    let resolution = json!({"verdict": "confirmed_fraud", "analyst": "ana"});
    let path = format!("/v1/alerts/{alert}/resolution");
    let (status, answer) = app.post(&path, &resolution).await;
    assert_eq!(status, 201, "{answer}");
    let stream = format!("label-{transaction}");
    let labeled = events(&app, &stream).await;
    let [DomainEvent::TransactionLabeled(l)] = labeled.as_slice() else {
        panic!("one label: {labeled:?}");
    };
    assert!(l.is_fraud);
    assert_eq!(l.source.as_str(), "analyst");
    assert_eq!(
        l.transaction.as_ref().map(|t| t.customer_id.as_str()),
        Some("c-verdict")
    );
    // A retry of the resolution labels nothing more.
    let (status, _) = app.post(&path, &resolution).await;
    assert_eq!(status, 200);
    assert_eq!(events(&app, &stream).await.len(), 1);

    // A false positive is a label saying not fraud.
    let (alert, transaction) = raise_alert(&app, "c-fp").await;
    let fp = json!({"verdict": "false_positive", "analyst": "ana"});
    let (status, _) = app
        .post(&format!("/v1/alerts/{alert}/resolution"), &fp)
        .await;
    assert_eq!(status, 201);
    let labeled = events(&app, &format!("label-{transaction}")).await;
    assert!(
        matches!(labeled.as_slice(), [DomainEvent::TransactionLabeled(l)] if !l.is_fraud),
        "{labeled:?}"
    );
}

/// The service in this process, so the test can read its book.
async fn spawn_here(pool: PgPool) -> (TestApp, Arc<App>) {
    let store = Arc::new(PgEventStore::new(pool));
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Settings::default()
    };
    let app = Application::build(settings, store.clone())
        .await
        .expect("command service");
    let state = app.state();
    let base = format!("http://{}", app.local_addr().expect("addr"));
    tokio::spawn(app.run_until(std::future::pending()));
    let test_app = TestApp {
        base,
        http: reqwest::Client::new(),
        store,
    };
    (test_app, state)
}

/// Waits until the follower has folded the log up to its head.
async fn caught_up(app: &TestApp, state: &App) -> u64 {
    let head = app.store.head_position().await.expect("head").0;
    test_support::wait::until(
        "the follower catches up",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            let as_of = state.peers.as_of();
            if as_of >= head {
                Ok(())
            } else {
                Err(format!("at {as_of} of {head}"))
            }
        },
    )
    .await;
    head
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_live_book_equals_the_log(pool: PgPool) {
    let (app, state) = spawn_here(pool).await;
    let merchants = ["m-a", "m-b", "m-c", "m-d"];
    let categories = ["grocery", "travel", "electronics"];
    let mut ids = Vec::new();
    for i in 0..60usize {
        let id = format!("w-{i}");
        let t = tx_at(
            &id,
            &format!("c-w-{}", i % 7),
            merchants[i % 4],
            categories[i % 3],
            (i % 9) as i64,
        );
        post_ok(&app, "/v1/transactions?include=features", &t).await;
        ids.push(id);
    }
    // Labels, a batch and singles, with flips back and forth.
    let batch: Vec<Value> = ids
        .iter()
        .step_by(3)
        .map(|id| label(id, true, "chargeback"))
        .collect();
    let (status, _) = app.post("/v1/labels/batch", &json!(batch)).await;
    assert_eq!(status, 200);
    for id in ids.iter().step_by(6) {
        post_ok(&app, "/v1/labels", &label(id, false, "analyst")).await;
    }
    for id in ids.iter().step_by(12) {
        post_ok(&app, "/v1/labels", &label(id, true, "chargeback-review")).await;
    }
    let (alert, _) = raise_alert(&app, "c-w-alert").await;
    let verdict = json!({"verdict": "confirmed_fraud", "analyst": "ana"});
    post_ok(&app, &format!("/v1/alerts/{alert}/resolution"), &verdict).await;

    let head = caught_up(&app, &state).await;
    let mut replay = PeerReplay::default();
    let mut after = Position::START;
    loop {
        let page = app.store.read_all(after, 500).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            if let Ok(event) =
                DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str())
            {
                replay.apply(e.position.0, &event);
            }
        }
    }
    assert_eq!(replay.position(), head);
    let mut fraud_seen = 0;
    for days_ahead in [0i64, 1, 3, 8] {
        let at = chrono::Utc::now() + chrono::Duration::days(days_ahead);
        for m in merchants.iter().chain(["m-1", "m-none"].iter()) {
            for c in categories.iter().chain(["none"].iter()) {
                let m = MerchantId::parse(m).expect("merchant");
                let c = MerchantCategory::parse(c).expect("category");
                let live = state.peers.snapshot(Some(&m), Some(&c), at);
                let replayed = replay.book().snapshot(head, Some(&m), Some(&c), at);
                assert_eq!(live, replayed, "{m} {c} at +{days_ahead} days");
                fraud_seen += live.merchant.fraud[2];
            }
        }
    }
    assert!(fraud_seen > 0, "the workload labelled some fraud");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn features_in_the_answer_know_earlier_labels(pool: PgPool) {
    let (app, state) = spawn_here(pool).await;
    // Four transactions at m-f two days ago, one of them labelled fraud.
    for i in 0..4 {
        let t = tx_at(&format!("f-{i}"), &format!("c-f-{i}"), "m-f", "jewelry", 2);
        let answer = post_ok(&app, "/v1/transactions", &t).await;
        assert!(answer.get("features").is_none(), "not asked for: {answer}");
    }
    post_ok(&app, "/v1/labels", &label("f-0", true, "chargeback")).await;
    caught_up(&app, &state).await;

    let t = tx_at("f-now", "c-f-now", "m-f", "jewelry", 0);
    let (status, answer) = app.post("/v1/transactions?include=features", &t).await;
    assert_eq!(status, 201, "{answer}");
    let f = &answer["features"];
    assert_eq!(f["merchant_fraud_rate_7d"], json!(0.25), "{f}");
    assert_eq!(f["merchant_transactions_30d"], json!(4.0));
    assert_eq!(f["merchant_fraud_30d"], json!(1.0));
    assert_eq!(f["category_fraud_rate_30d"], json!(0.25));
    // Yesterday had no transactions there: unknown, null.
    assert_eq!(f["merchant_fraud_rate_1d"], Value::Null);
    // A repeat answers the first answer, without features.
    let (status, repeat) = app.post("/v1/transactions?include=features", &t).await;
    assert_eq!(status, 200);
    assert!(repeat.get("features").is_none(), "{repeat}");
    // The batch too.
    let t = tx_at("f-batch", "c-f-b", "m-f", "jewelry", 0);
    let (_, batch) = app
        .post("/v1/transactions/batch?include=features", &json!([t]))
        .await;
    let item = &batch["results"][0];
    assert_eq!(item["status"], 201, "{batch}");
    assert_eq!(
        item["answer"]["features"]["merchant_fraud_rate_7d"],
        json!(0.25)
    );
    assert_eq!(item["answer"]["decision"], answer["decision"]);
}
