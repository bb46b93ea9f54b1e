//! The command side over real HTTP: the service on port 0, its own fresh
//! PostgreSQL database, requests sent with reqwest.

mod common;

use command_service::configuration::Settings;
use common::{error_fields, spawn, spawn_with, tx};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_valid_transaction_is_decided_and_recorded(pool: PgPool) {
    let app = spawn(pool).await;
    let (status, body) = app
        .post("/v1/transactions", &tx("t-1", "c-1", 42.5, 1))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["transaction_id"], "t-1");
    assert_eq!(body["decision"], "approve");
    assert_eq!(body["late"], false);
    assert_eq!(body["alerts"], json!([]));
    assert!(
        body["risk_score"]
            .as_f64()
            .is_some_and(|s| (0.0..=1.0).contains(&s))
    );
    assert!(
        body["ruleset_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    let events = app.stream("customer-c-1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "TransactionRecorded");
    assert!(events[0].metadata.correlation_id.is_some());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_repeat_gets_the_first_answer_and_a_clash_gets_409(pool: PgPool) {
    let app = spawn(pool).await;
    let first = tx("t-1", "c-1", 42.5, 1);
    let (s1, b1) = app.post("/v1/transactions", &first).await;
    let (s2, b2) = app.post("/v1/transactions", &first).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(b1, b2);
    let mut changed = first.clone();
    changed["amount"] = json!(99.0);
    let (s3, b3) = app.post("/v1/transactions", &changed).await;
    assert_eq!(s3, 409, "{b3}");
    assert_eq!(b3["status"], 409);
    assert_eq!(
        app.stream("customer-c-1").await.len(),
        1,
        "nothing appended twice"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_repeat_whose_answer_was_dropped_from_memory_is_found_in_the_log(pool: PgPool) {
    // Keep the answers of at most 4 transactions per customer in memory.
    let mut ruleset = domain::Ruleset::default();
    ruleset.history.max_transactions = 4;
    let path = std::env::temp_dir().join(format!("ruleset-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, toml::to_string(&ruleset).expect("toml")).expect("write");
    let settings = Settings {
        ruleset_path: Some(path.clone()),
        ..Settings::default()
    };
    let app = spawn_with(pool, settings).await;
    let _ = std::fs::remove_file(&path);

    let first = tx("t-0", "c-1", 10.0, 60);
    let (s0, b0) = app.post("/v1/transactions", &first).await;
    assert_eq!(s0, 201, "{b0}");
    // Out of event-time order, then six more: t-0's answer is dropped.
    for i in 1..=6 {
        let minutes_ago = if i == 1 { 70 } else { 60 - i * 5 };
        let (s, b) = app
            .post(
                "/v1/transactions",
                &tx(&format!("t-{i}"), "c-1", 10.0, minutes_ago),
            )
            .await;
        assert_eq!(s, 201, "t-{i}: {b}");
    }
    let (again, b) = app.post("/v1/transactions", &first).await;
    assert_eq!((again, &b), (200, &b0), "the first answer, from the log");
    let mut changed = first.clone();
    changed["amount"] = json!(11.0);
    let (clash, b) = app.post("/v1/transactions", &changed).await;
    assert_eq!(clash, 409, "{b}");
    let recorded = app
        .stream("customer-c-1")
        .await
        .iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .count();
    assert_eq!(recorded, 7, "nothing appended twice");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_repeat_after_a_restart_is_answered_from_the_log(pool: PgPool) {
    let payload = tx("t-1", "c-1", 42.5, 1);
    let first = spawn(pool.clone()).await;
    let (_, b1) = first.post("/v1/transactions", &payload).await;
    let second = spawn(pool).await; // a new process: nothing cached
    let (s2, b2) = second.post("/v1/transactions", &payload).await;
    assert_eq!(s2, 200);
    assert_eq!(b1, b2);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn invalid_input_names_every_field_and_is_quarantined(pool: PgPool) {
    let app = spawn(pool).await;
    let mut bad = tx("t-1", "c-1", -5.0, 1);
    bad["currency"] = json!("XXZ");
    bad["location"]["coordinates"] = json!([123.0, 0.0]);
    bad["transaction_type"] = json!("teleport");
    bad.as_object_mut().expect("object").remove("merchant_id");
    let (status, body) = app.post("/v1/transactions", &bad).await;
    assert_eq!(status, 422, "{body}");
    let fields = error_fields(&body);
    for f in [
        "amount",
        "currency",
        "location.coordinates",
        "transaction_type",
        "merchant_id",
    ] {
        assert!(
            fields.iter().any(|x| x.starts_with(f)),
            "{f} missing from {fields:?}"
        );
    }
    let quarantine_id = body["quarantine_id"]
        .as_str()
        .expect("quarantine id")
        .to_owned();
    let kept = app.stream("quarantine").await;
    assert_eq!(kept.len(), 1);
    let payload = kept[0].payload.to_value().expect("json");
    assert_eq!(payload["quarantine_id"], quarantine_id);
    assert!(
        payload["raw_body"]
            .as_str()
            .expect("raw")
            .contains("teleport"),
        "the raw body is kept whole"
    );
    assert!(payload["reasons"].as_array().expect("reasons").len() >= 5);
    assert!(app.stream("customer-c-1").await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn only_a_card_not_present_transaction_may_leave_out_its_place(pool: PgPool) {
    let app = spawn(pool).await;
    let nowhere = |id: &str, device: &str| {
        let mut body = tx(id, "c-1", 42.5, 1);
        body.as_object_mut().expect("object").remove("location");
        body["device_info"]["device_type"] = json!(device);
        body
    };
    // A purchase from a phone without a place is decided and recorded without one,
    let (status, body) = app
        .post("/v1/transactions", &nowhere("t-1", "mobile"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["decision"], "approve");
    let events = app.stream("customer-c-1").await;
    assert_eq!(events.len(), 1);
    let recorded = events[0].payload.to_value().expect("json");
    assert_eq!(
        recorded["transaction"]["transaction_id"], "t-1",
        "{recorded}"
    );
    assert!(
        recorded["transaction"].get("location").is_none(),
        "{recorded}"
    );
    // and a later purchase at a terminal is decided against it without trouble.
    let mut at_terminal = tx("t-2", "c-1", 20.0, 0);
    at_terminal["device_info"]["device_type"] = json!("pos");
    let (status, body) = app.post("/v1/transactions", &at_terminal).await;
    assert_eq!(status, 201, "{body}");

    // At a terminal, the place is required: a problem naming it, quarantined.
    let (status, body) = app.post("/v1/transactions", &nowhere("t-3", "pos")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(error_fields(&body), ["location"]);
    assert_eq!(body["errors"][0]["reason"], "missing_field");
    assert!(body["quarantine_id"].is_string(), "{body}");
    assert_eq!(app.stream("quarantine").await.len(), 1);
    let recorded = app
        .stream("customer-c-1")
        .await
        .into_iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .count();
    assert_eq!(recorded, 2, "t-3 was not recorded");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn malformed_json_wrong_type_and_oversized_bodies_get_their_own_problems(pool: PgPool) {
    let app = spawn(pool).await;
    let (s, ct, b) = app
        .post_raw(b"{\"transaction_id\": ".to_vec(), "application/json")
        .await;
    assert_eq!((s, ct.as_str()), (400, "application/problem+json"));
    assert_eq!(b["errors"][0]["reason"], "malformed_json");
    let (s, _, b) = app
        .post_raw(
            b"transaction_id=1".to_vec(),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(s, 415);
    assert_eq!(b["errors"][0]["reason"], "unsupported_media_type");
    let (s, _, b) = app
        .post_raw(vec![b' '; 70 * 1024], "application/json")
        .await;
    assert_eq!(s, 413);
    assert_eq!(b["errors"][0]["reason"], "body_too_large");
    assert_eq!(
        app.stream("quarantine").await.len(),
        3,
        "each refusal is kept"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn schema_v1_is_accepted(pool: PgPool) {
    let app = spawn(pool).await;
    let at = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let v1 = json!({"transaction_id": "t-v1", "customer_id": "c-9", "amount": 10, "timestamp": at});
    let (status, body) = app.post("/v1/transactions", &v1).await;
    assert_eq!(status, 201, "{body}");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_answers_each_item_and_one_bad_item_fails_alone(pool: PgPool) {
    let app = spawn(pool).await;
    let mut bad = tx("t-2", "c-2", 10.0, 1);
    bad["currency"] = json!("NOPE");
    let t1 = tx("t-1", "c-1", 10.0, 1);
    let batch = json!([t1, bad, tx("t-3", "c-3", 10.0, 1), t1]);
    let (status, body) = app.post("/v1/transactions/batch", &batch).await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<u64> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    // The repeat of t-1 in the same batch is answered as a repeat.
    assert!(
        statuses == [201, 422, 201, 200] || statuses == [200, 422, 201, 201],
        "{statuses:?}"
    );
    assert_eq!(
        body["results"][1]["problem"]["errors"][0]["field"],
        "currency"
    );
    let kept = app.stream("quarantine").await;
    assert_eq!(kept[0].payload.to_value().expect("json")["batch_index"], 1);
    assert_eq!(app.stream("customer-c-1").await.len(), 1);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_burst_raises_a_velocity_alert_with_its_explanation(pool: PgPool) {
    let app = spawn(pool).await;
    let mut last = Value::Null;
    for i in 0..6 {
        let (status, body) = app
            .post(
                "/v1/transactions",
                &tx(&format!("t-{i}"), "c-burst", 20.0, 8 - i),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        last = body;
    }
    let alert = &last["alerts"][0];
    assert!(alert["alert_id"].as_str().is_some(), "{last}");
    let rule = alert["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["rule"] == "velocity_count")
        .expect("velocity_count fired");
    // The default counts more than one in 10 minutes (a weak signal); the
    // alert comes with new_device (the customer's device is under an hour old).
    assert_eq!(rule["observed"], 6.0);
    assert_eq!(rule["threshold"], 1.0);
    let types: Vec<String> = app
        .stream("customer-c-burst")
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types.last().map(String::as_str), Some("AlertRaised"));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn concurrent_posts_for_one_customer_never_see_a_conflict(pool: PgPool) {
    let app = Arc::new(spawn(pool).await);
    let posts: Vec<_> = (0..24)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post("/v1/transactions", &tx(&format!("t-{i}"), "c-hot", 5.0, 30))
                    .await
                    .0
            })
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.expect("task"), 201);
    }
    let recorded = app
        .stream("customer-c-hot")
        .await
        .into_iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .count();
    assert_eq!(recorded, 24);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn health_and_readiness(pool: PgPool) {
    let app = spawn(pool).await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(app.get_status(path).await, 200, "{path}");
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_policy_in_force_is_published_once(pool: PgPool) {
    let first = spawn(pool.clone()).await;
    let _second = spawn(pool).await;
    let published = first.stream("policy").await;
    let types: Vec<&str> = published.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["PolicyPublished", "PolicyPromoted"]);
    assert!(
        first.stream("ruleset").await.is_empty(),
        "the old stream is read, never written"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_refused_whole_is_quarantined_whole(pool: PgPool) {
    let app = spawn(pool).await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"transaction_id": format!("t-{i}")}))
        .collect();
    let (status, body) = app.post("/v1/transactions/batch", &json!(too_many)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["errors"][0]["reason"], "batch_too_large");
    let (status, body) = app
        .post("/v1/transactions/batch", &tx("t-1", "c-1", 10.0, 1))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["reason"], "wrong_type");
    assert_eq!(app.stream("quarantine").await.len(), 2);
    assert!(
        app.stream("customer-c-1").await.is_empty(),
        "nothing from a refused batch is decided"
    );
}

/// The statuses of a batch answer, in item order.
fn statuses(body: &Value) -> Vec<u64> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect()
}

fn recorded(events: &[event_store::RecordedEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .count()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_of_new_known_and_repeated_customers_after_a_restart(pool: PgPool) {
    // Twenty customers known to the log, with their first answers.
    let first = spawn(pool.clone()).await;
    let known: Vec<Value> = (0..20)
        .map(|i| {
            tx(
                &format!("k-{i}"),
                &format!("known-{i}"),
                10.0 + i as f64,
                30,
            )
        })
        .collect();
    let (status, body) = first.post("/v1/transactions/batch", &json!(known)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), vec![201; 20]);
    let first_answers = body["results"].clone();

    // A new process: nothing cached, so the batch loads its customers.
    let app = spawn(pool).await;
    let mut items = Vec::new();
    let mut want = Vec::new();
    for (i, first_tx) in known.iter().enumerate() {
        // A known customer's next transaction, and a repeat of its first.
        items.push(tx(&format!("k2-{i}"), &format!("known-{i}"), 5.0, 20));
        want.push(201);
        items.push(first_tx.clone());
        want.push(200);
    }
    for i in 0..100 {
        items.push(tx(&format!("n-{i}"), &format!("new-{i}"), 7.0, 10));
        want.push(201);
    }
    // One new customer six times within minutes: decided in order, the
    // sixth sees the five before it and fires velocity_count.
    for i in 0..6 {
        items.push(tx(&format!("h-{i}"), "new-hot", 20.0, 8 - i));
        want.push(201);
    }
    // A known id with another payload, and a repeat within the batch.
    let mut clash = known[3].clone();
    clash["amount"] = json!(999.0);
    items.push(clash);
    want.push(409);
    // (the same value: `tx` stamps the time it is called, so a second call
    // would be another payload)
    let again = items[40].clone();
    items.push(again);
    want.push(200);

    let (status, body) = app.post("/v1/transactions/batch", &json!(items)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), want);
    let results = body["results"].as_array().expect("results");
    for i in 0..20 {
        assert_eq!(
            results[2 * i + 1]["answer"],
            first_answers[i]["answer"],
            "a repeat after a restart gets the first answer"
        );
        let events = app.stream(&format!("customer-known-{i}")).await;
        assert_eq!(recorded(&events), 2, "known-{i}");
        let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
        assert_eq!(versions, (0..events.len() as u64).collect::<Vec<_>>());
    }
    for i in 0..100 {
        assert_eq!(recorded(&app.stream(&format!("customer-new-{i}")).await), 1);
    }
    let hot = &results[140 + 5]["answer"];
    assert!(
        hot["alerts"][0]["rules"]
            .as_array()
            .is_some_and(|rules| rules.iter().any(|r| r["rule"] == "velocity_count")),
        "{hot}"
    );
    let hot_ids: Vec<String> = app
        .stream("customer-new-hot")
        .await
        .into_iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .filter_map(|e| e.payload.to_value().ok())
        .filter_map(|p| {
            p["transaction"]["transaction_id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let in_order: Vec<String> = (0..6).map(|i| format!("h-{i}")).collect();
    assert_eq!(hot_ids, in_order, "one customer's items keep their order");
    assert_eq!(recorded(&app.stream("customer-known-3").await), 2);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_customer_with_more_than_a_page_of_events_is_loaded_whole(pool: PgPool) {
    // More events than one batched read returns per stream.
    let n = command_service::ingest::loader::PAGE + 150;
    let first = spawn(pool.clone()).await;
    let all: Vec<Value> = (0..n)
        .map(|i| tx(&format!("t-{i}"), "c-long", 1.0, 2000 - i as i64))
        .collect();
    for chunk in all.chunks(1000) {
        let (status, body) = first.post("/v1/transactions/batch", &json!(chunk)).await;
        assert_eq!(status, 200, "{body}");
        assert!(statuses(&body).iter().all(|s| *s == 201));
    }
    let before = first.stream("customer-c-long").await.len();
    assert!(before > command_service::ingest::loader::PAGE);

    // A new process must see the stream's true head, or its append would
    // be refused for its expected version every time (503).
    let app = spawn(pool.clone()).await;
    let (status, body) = app
        .post("/v1/transactions", &tx("t-next", "c-long", 1.0, 0))
        .await;
    assert_eq!(status, 201, "{body}");
    let app = spawn(pool).await;
    let (status, body) = app
        .post(
            "/v1/transactions/batch",
            &json!([tx("t-batch", "c-long", 1.0, 0), all[n - 1].clone()]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), vec![201, 200]);
    assert_eq!(
        app.stream("customer-c-long").await.len(),
        before + 2,
        "two more, nothing twice"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn concurrent_cache_misses_share_one_read(pool: PgPool) {
    use command_service::ingest::loader::{Loader, LoaderOptions};
    use event_store::{EventStore, ExpectedVersion, NewEvent};
    let store: Arc<dyn EventStore> = Arc::new(event_store::postgres::PgEventStore::new(pool));
    for i in 0..10 {
        let events = (0..=i)
            .map(|n| NewEvent::new("TestHappened", 1, chrono::Utc::now(), json!({ "n": n })))
            .collect();
        store
            .append(&format!("s-{i}"), ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }
    let loader = Loader::start(
        store,
        LoaderOptions {
            max_streams: 1000,
            concurrent_reads: 1,
            queue: 100,
        },
    );
    // Fifty misses at once (ten streams with 1..=10 events, forty that do
    // not exist); one at a time would be fifty reads.
    let loads = (0..50).map(|i| {
        let loader = loader.clone();
        async move { (i, loader.load(vec![format!("s-{i}")]).await) }
    });
    for (i, loaded) in futures_util::future::join_all(loads).await {
        let mut pages = loaded.expect("load");
        assert_eq!(pages.len(), 1);
        let page = pages.pop().unwrap_or_default();
        let want = if i < 10 { i + 1 } else { 0 };
        assert_eq!(page.len(), want, "s-{i}");
        assert!(page.iter().all(|e| e.stream_id == format!("s-{i}")));
    }
    assert!(
        loader.reads() <= 2,
        "{} reads for 50 concurrent misses",
        loader.reads()
    );
}
