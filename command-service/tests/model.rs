//! A model put live the way `fraudctl model train --promote` does it: the
//! `ModelTrained`, `PolicyPublished` and `PolicyPromoted` events appended
//! straight to the log (not over HTTP), with two command-side replicas
//! running. Both report the model within 5 s without a restart, decide
//! with it (answers carry `model_version` and `model_score`, events carry
//! `model`, an alert freezes `top_features`), and count its scores and the
//! labels' delay in `/metrics`. Publishing over HTTP a policy naming a
//! model the log does not have is refused, naming the model.

mod common;

use command_service::configuration::Settings;
use common::{TestApp, spawn_with, tx};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use test_support::model::{big_amount_model, record_model, train_and_promote};

async fn get(app: &TestApp, path: &str) -> Value {
    let response = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.expect("json")
}

/// How long until `app`'s live policy names `model` (fails after 5 s).
async fn until_model(app: &TestApp, model: &str) -> Duration {
    let started = Instant::now();
    loop {
        let body = get(app, "/v1/policy").await;
        if body["model_version"] == model {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "model_version is {} after 5 s",
            body["model_version"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_model_promoted_through_the_log_decides_on_every_replica(pool: PgPool) {
    let a = spawn_with(pool.clone(), Settings::default()).await;
    let b = spawn_with(pool, Settings::default()).await;
    assert_eq!(get(&a, "/v1/policy").await["model_version"], Value::Null);
    let before = a.post("/v1/transactions", &tx("t-0", "c-0", 50.0, 1)).await;
    assert_eq!(before.0, 201, "{}", before.1);
    assert_eq!(before.1["model_version"], Value::Null);
    assert_eq!(before.1["model_score"], Value::Null);

    train_and_promote(&*a.store, "m-test-1", "2026.12-model").await;
    for app in [&a, &b] {
        let took = until_model(app, "m-test-1").await;
        println!("model live on {} after {took:?}", app.base);
        assert_eq!(get(app, "/v1/policy").await["version"], "2026.12-model");
    }

    // Decided with the model on both replicas.
    let (status, small) = b.post("/v1/transactions", &tx("t-1", "c-1", 50.0, 1)).await;
    assert_eq!(status, 201, "{small}");
    assert_eq!(small["model_version"], "m-test-1");
    let score = small["model_score"].as_f64().expect("score");
    assert!(score < 0.01, "{small}");
    assert_eq!(small["alerts"], json!([]));
    let (status, big) = a
        .post("/v1/transactions", &tx("t-2", "c-2", 900.0, 1))
        .await;
    assert_eq!(status, 201, "{big}");
    assert_eq!(big["model_version"], "m-test-1");
    assert_eq!(big["ruleset_version"], "2026.12-model");
    let score = big["model_score"].as_f64().expect("score");
    assert!((score - 0.982014).abs() < 1e-6, "{big}");
    assert_eq!(big["decision"], "decline", "{big}");
    assert_eq!(big["alerts"].as_array().map(Vec::len), Some(1), "{big}");
    // The batch answer carries them too.
    let (status, batch) = b
        .post(
            "/v1/transactions/batch",
            &json!([tx("t-3", "c-3", 500.0, 1)]),
        )
        .await;
    assert!(
        status == 200 || status == 207 || status == 201,
        "{status} {batch}"
    );
    let item = batch.to_string();
    assert!(item.contains("\"model_version\":\"m-test-1\""), "{batch}");
    assert!(item.contains("\"model_score\":0.98"), "{batch}");

    // The events record the model; the alert its top features.
    let events = a.stream("customer-c-2").await;
    assert_eq!(events.len(), 2);
    let recorded: Value = serde_json::from_str(events[0].payload.as_str()).expect("json");
    assert_eq!(recorded["model"]["version"], "m-test-1");
    assert_eq!(recorded["model"]["score"], json!(0.982014));
    let alert: Value = serde_json::from_str(events[1].payload.as_str()).expect("json");
    assert_eq!(alert["model"]["version"], "m-test-1");
    assert_eq!(
        alert["top_features"],
        json!([{"feature": "amount", "value": 900.0, "contribution": 9.0}])
    );

    // Scores and label delays are metrics.
    let (status, label) = a
        .post(
            "/v1/labels",
            &json!({"transaction_id": "t-2", "is_fraud": true, "source": "chargeback"}),
        )
        .await;
    assert_eq!(status, 201, "{label}");
    let metrics = test_support::metrics::scrape(&a.http, &a.base).await;
    assert!(
        metrics.contains("sentinel_model_score_bucket{model=\"m-test-1\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("sentinel_label_delay_seconds_bucket"),
        "{metrics}"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn publishing_a_policy_naming_an_unknown_model_is_refused(pool: PgPool) {
    let a = spawn_with(pool, Settings::default()).await;
    let draft = domain::Ruleset {
        version: "2026.12-ghost".into(),
        model: Some("m-ghost".into()),
        ..domain::Ruleset::default()
    };
    let toml = domain::policy::to_toml(&draft).expect("toml");
    let (status, problem) = a.post("/v1/policies", &json!({"toml": toml})).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unknown-model")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("m-ghost")),
        "{problem}"
    );
    // Once the model is in the log (straight from fraudctl, not yet
    // folded by the follower maybe), the same policy is accepted.
    record_model(&*a.store, big_amount_model("m-ghost")).await;
    let (status, body) = a.post("/v1/policies", &json!({"toml": toml})).await;
    assert_eq!(status, 201, "{body}");
    // A model this build cannot load (another catalogue) is refused too.
    let mut other = big_amount_model("m-other-catalogue");
    other.catalogue_version += 1;
    record_model(&*a.store, other).await;
    let draft = domain::Ruleset {
        version: "2026.12-other".into(),
        model: Some("m-other-catalogue".into()),
        ..domain::Ruleset::default()
    };
    let toml = domain::policy::to_toml(&draft).expect("toml");
    let (status, problem) = a.post("/v1/policies", &json!({"toml": toml})).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unusable-model")),
        "{problem}"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_policy_whose_model_is_missing_never_decides_until_the_model_comes(pool: PgPool) {
    let a = spawn_with(pool, Settings::default()).await;
    let before = get(&a, "/v1/policy").await["version"].clone();
    // Promoted straight in the log, naming a model nobody recorded.
    test_support::model::publish_and_promote(&*a.store, "2026.12-early", "m-late").await;
    let started = Instant::now();
    loop {
        let metrics = test_support::metrics::scrape(&a.http, &a.base).await;
        if metrics.contains(
            "sentinel_policy_model_missing_total{policy=\"2026.12-early\",model=\"m-late\"}",
        ) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the follower did not see the promote: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The previous policy still decides, whole.
    let policy = get(&a, "/v1/policy").await;
    assert_eq!(policy["version"], before, "{policy}");
    assert_eq!(policy["model_version"], Value::Null, "{policy}");
    let (status, answer) = a
        .post("/v1/transactions", &tx("t-early", "c-9", 900.0, 1))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["ruleset_version"], before, "{answer}");
    assert_eq!(answer["model_version"], Value::Null, "{answer}");

    // The model arrives: the replica switches, without a restart.
    record_model(&*a.store, big_amount_model("m-late")).await;
    let took = until_model(&a, "m-late").await;
    println!("switched {took:?} after the model came");
    assert_eq!(get(&a, "/v1/policy").await["version"], "2026.12-early");
    let (status, answer) = a
        .post("/v1/transactions", &tx("t-late", "c-9", 900.0, 1))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["model_version"], "m-late", "{answer}");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_replica_starting_while_the_live_model_is_missing_uses_the_previous_policy(pool: PgPool) {
    let a = spawn_with(pool.clone(), Settings::default()).await;
    let before = get(&a, "/v1/policy").await["version"].clone();
    test_support::model::publish_and_promote(&*a.store, "2026.12-early", "m-late").await;
    // A replica starting now keeps the policy live before the one it cannot
    // use, like the running ones; it still follows the log.
    let b = spawn_with(pool, Settings::default()).await;
    let policy = get(&b, "/v1/policy").await;
    assert_eq!(policy["version"], before, "{policy}");
    record_model(&*a.store, big_amount_model("m-late")).await;
    until_model(&b, "m-late").await;
    until_model(&a, "m-late").await;
}
