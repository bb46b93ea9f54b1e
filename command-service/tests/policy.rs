//! The policy lifecycle over real HTTP on two command-side replicas sharing
//! one log (each on port 0, one fresh database): publish (and refuse),
//! shadow, promote (four eyes), roll back; the other replica follows within
//! the 5 seconds the design allows, without a restart, and a batch is never
//! decided half by one policy and half by another.

mod common;

use access::Tokens;
use command_service::configuration::Settings;
use common::{TestApp, spawn_with, tx};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const INGEST: &str = "ingest-token";

fn settings() -> Settings {
    Settings {
        tokens: Tokens::parse(&format!(
            "{ALICE}:admin@alice,{BOB}:admin@bob,{INGEST}:ingest"
        ))
        .expect("tokens"),
        four_eyes: true,
        ..Settings::default()
    }
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", app.base);
    let request = match method {
        "GET" => app.http.get(url),
        "PUT" => app.http.put(url),
        _ => app.http.post(url),
    };
    let request = request.bearer_auth(token);
    let request = match body {
        Some(b) => request.json(&b),
        None => request,
    };
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn live(app: &TestApp) -> Value {
    let (status, body) = call(app, "GET", "/v1/policy", ALICE, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// How long until `app` reports `field` = `want` (at most 5 s, else fail).
async fn until(app: &TestApp, field: &str, want: Value) -> Duration {
    let started = Instant::now();
    loop {
        let body = live(app).await;
        if body[field] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{field} is {} after 5 s, not {want}",
            body[field]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The default policy as TOML with a new version, a shadow-worthy change
/// (every transaction alerts: p3 = 0) and an expression rule.
fn draft(version: &str, extra: &str) -> String {
    let default = live_toml();
    let mut text = default.replacen(
        "version = \"2026.2-default\"",
        &format!("version = \"{version}\""),
        1,
    );
    text = text.replacen("p3 = 0.3", "p3 = 0.0", 1);
    text.push_str(extra);
    text
}

fn live_toml() -> String {
    domain::policy::to_toml(&domain::Ruleset::default()).expect("toml")
}

const BIG_SPEND: &str = "\n[[expression_rules]]\nname = \"big_spend\"\nexpression = \"tx.amount > 5000.0 && f.count_1h >= 0.0\"\nweight = 0.9\ndescription = \"A very large amount\"\n";

async fn post_tx(app: &TestApp, id: &str, customer: &str, amount: f64) -> Value {
    let (status, body) = app
        .post_with(
            "/v1/transactions",
            &tx(id, customer, amount, 1),
            &[("authorization", &format!("Bearer {INGEST}"))],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn publish_shadow_promote_and_roll_back_across_two_replicas(pool: PgPool) {
    let a = spawn_with(pool.clone(), settings()).await;
    let b = spawn_with(pool, settings()).await;
    let start = live(&b).await;
    assert_eq!(start["version"], "2026.2-default");
    assert_eq!(start["shadow_version"], Value::Null);
    assert_eq!(start["model_version"], Value::Null);
    assert!(
        start["toml"]
            .as_str()
            .is_some_and(|t| t.starts_with("version = "))
    );

    // Refused: a rule that does not compile, names repeated, a known version.
    let broken = draft(
        "v-broken",
        "\n[[expression_rules]]\nname = \"empty_one\"\nexpression = \"\"\nweight = 0.5\n",
    );
    let (status, body) = call(
        &a,
        "POST",
        "/v1/policies",
        ALICE,
        Some(json!({"toml": broken})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("empty_one")),
        "{body}"
    );
    let twice = draft("v-twice", &format!("{BIG_SPEND}{BIG_SPEND}"));
    let (status, body) = call(
        &a,
        "POST",
        "/v1/policies",
        ALICE,
        Some(json!({"toml": twice})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("big_spend")),
        "{body}"
    );
    let (status, body) = call(
        &a,
        "POST",
        "/v1/policies",
        ALICE,
        Some(json!({"toml": live_toml()})),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Published as the shadow on A; B decides with it beside the live one.
    let v2 = draft("2026.3-test", BIG_SPEND);
    let (status, body) = call(
        &a,
        "POST",
        "/v1/policies",
        ALICE,
        Some(json!({"toml": v2, "shadow": true})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["shadow_version"], "2026.3-test");
    until(&b, "shadow_version", json!("2026.3-test")).await;
    let answer = post_tx(&b, "t-shadowed", "c-1", 42.0).await;
    assert_eq!(answer["ruleset_version"], "2026.2-default");
    assert_eq!(answer["alerts"], json!([]), "the shadow raises no alert");
    let events = b.stream("customer-c-1").await;
    assert_eq!(events.len(), 1, "no AlertRaised for the shadow");
    let recorded: Value = serde_json::from_str(events[0].payload.as_str()).expect("json");
    assert_eq!(recorded["shadow"]["policy_version"], "2026.3-test");
    assert_eq!(
        recorded["shadow"]["priority"], "P3",
        "p3 = 0 alerts everything: {recorded}"
    );

    // Four eyes: alice published it, so bob promotes it.
    let (status, body) = call(&a, "POST", "/v1/policies/2026.3-test/promote", ALICE, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["type"].as_str().map(|t| t.ends_with("four-eyes")),
        Some(true),
        "{body}"
    );
    let (status, body) = call(&b, "POST", "/v1/policies/nope/promote", BOB, None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(&b, "POST", "/v1/policies/2026.3-test/promote", BOB, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live_version"], "2026.3-test");
    assert_eq!(
        body["shadow_version"],
        Value::Null,
        "promoting the shadow ends shadowing"
    );
    let took = until(&a, "version", json!("2026.3-test")).await;
    assert!(took < Duration::from_secs(5));
    // docs/benchmarks.md quotes this line.
    println!("promote on one replica seen by the other after {took:?}");
    let answer = post_tx(&a, "t-live", "c-2", 42.0).await;
    assert_eq!(answer["ruleset_version"], "2026.3-test");
    assert_eq!(
        answer["alerts"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    let (status, _) = call(&a, "POST", "/v1/policies/2026.3-test/promote", BOB, None).await;
    assert_eq!(status, 409, "already live");
    // The expression rule decides now, explained with what it read.
    let answer = post_tx(&b, "t-big", "c-4", 6000.0).await;
    let rules = &answer["alerts"][0]["rules"];
    let big = rules
        .as_array()
        .and_then(|r| r.iter().find(|h| h["rule"] == "big_spend"))
        .unwrap_or_else(|| panic!("big_spend fired: {answer}"));
    assert!(
        big["detail"]
            .as_str()
            .is_some_and(|d| d.contains("tx.amount = 6000")),
        "{big}"
    );

    // Who did what, as the versions list tells it.
    let (status, versions) = call(&a, "GET", "/v1/policies", ALICE, None).await;
    assert_eq!(status, 200);
    let v = &versions["versions"][1];
    assert_eq!(
        (v["version"].as_str(), v["published_by"].as_str()),
        (Some("2026.3-test"), Some("alice"))
    );
    assert_eq!(v["promotions"][0]["by"], "bob");
    assert_eq!(v["live"], true);

    // Roll back, from either replica, by either admin.
    let (status, body) = call(&a, "POST", "/v1/policy/rollback", ALICE, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live_version"], "2026.2-default");
    until(&b, "version", json!("2026.2-default")).await;
    let answer = post_tx(&b, "t-back", "c-3", 42.0).await;
    assert_eq!(answer["ruleset_version"], "2026.2-default");
    let (status, body) = call(&b, "POST", "/v1/policy/rollback", ALICE, None).await;
    assert_eq!(status, 409, "nothing earlier: {body}");

    // Changing needs admin; reading and changing are refused without a token.
    let (status, _) = call(&a, "POST", "/v1/policy/rollback", INGEST, None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&a, "GET", "/v1/policy", "not-a-token", None).await;
    assert_eq!(status, 401);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_is_decided_by_one_policy_while_promotes_land(pool: PgPool) {
    let a = spawn_with(pool.clone(), settings()).await;
    let b = spawn_with(pool, settings()).await;
    for (i, admin) in [(3, ALICE), (4, BOB)] {
        let text = draft(&format!("v{i}"), "");
        let (status, body) = call(
            &a,
            "POST",
            "/v1/policies",
            admin,
            Some(json!({"toml": text})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let sender = async {
        let mut versions_seen = std::collections::BTreeSet::new();
        for round in 0..30 {
            let batch: Vec<Value> = (0..40)
                .map(|i| tx(&format!("t-{round}-{i}"), &format!("c-{i}"), 10.0, 1))
                .collect();
            let (status, body) = b
                .post_with(
                    "/v1/transactions/batch",
                    &json!(batch),
                    &[("authorization", &format!("Bearer {INGEST}"))],
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let versions: std::collections::BTreeSet<String> = body["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|r| {
                    r["answer"]["ruleset_version"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned()
                })
                .collect();
            assert_eq!(versions.len(), 1, "one batch, one policy: {versions:?}");
            versions_seen.extend(versions);
        }
        versions_seen
    };
    let promoter = async {
        for (version, admin) in [("v3", BOB), ("v4", ALICE), ("v3", BOB)] {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let (status, body) = call(
                &a,
                "POST",
                &format!("/v1/policies/{version}/promote"),
                admin,
                None,
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let (seen, ()) = tokio::join!(sender, promoter);
    assert!(seen.len() >= 2, "the batches saw the promotes: {seen:?}");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn four_eyes_needs_tokens_to_tell_admins_apart(pool: PgPool) {
    let store = std::sync::Arc::new(event_store::postgres::PgEventStore::new(pool));
    let open = Settings {
        four_eyes: true,
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Settings::default()
    };
    let error = command_service::startup::Application::build(open, store)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("SENTINEL_TOKENS"), "{error}");
}
