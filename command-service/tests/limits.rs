//! Limits over real HTTP: the rate limit per caller (429 problem with
//! `Retry-After` after the burst, per token, per address for callers without
//! a known token, none by default), and the batch's byte limit. The other
//! size limits are tested in `api.rs`: one transaction's body
//! (`malformed_json_wrong_type_and_oversized_bodies_get_their_own_problems`)
//! and a batch's item count (`a_batch_refused_whole_is_quarantined_whole`).

mod common;

use command_service::configuration::Settings;
use command_service::http::auth::Tokens;
use command_service::http::rate_limit::RateLimit;
use common::{TestApp, spawn, spawn_with, tx};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::num::NonZeroU32;
use std::time::Duration;

const FIRST: &str = "first-ingest-token-0123456789";
const SECOND: &str = "second-ingest-token-0123456789";

fn limit(per_sec: u32, burst: u32) -> Option<RateLimit> {
    Some(RateLimit {
        per_sec: NonZeroU32::new(per_sec).expect("non-zero"),
        burst: NonZeroU32::new(burst).expect("non-zero"),
    })
}

async fn spawn_limited(pool: PgPool, per_sec: u32, burst: u32) -> TestApp {
    let settings = Settings {
        tokens: Tokens::parse(&format!("{FIRST}:ingest,{SECOND}:ingest")).expect("tokens"),
        rate_limit: limit(per_sec, burst),
        ..Settings::default()
    };
    spawn_with(pool, settings).await
}

/// What came back: status, content type, `Retry-After`, body.
struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<u64>,
    body: Value,
}

async fn post(app: &TestApp, token: Option<&str>, path: &str, body: &Value) -> Answer {
    let mut request = app.http.post(format!("{}{path}", app.base)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.expect("send");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: r.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        retry_after: header("retry-after").and_then(|v| v.parse().ok()),
        body: r.json().await.unwrap_or(Value::Null),
    }
}

fn assert_rate_limited(a: &Answer) {
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["type"], "/problems/rate-limited");
    assert_eq!(a.body["status"], 429);
    assert!(
        a.retry_after.is_some_and(|s| s >= 1),
        "Retry-After: {:?}",
        a.retry_after
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn over_the_burst_a_token_gets_429_and_another_token_does_not(pool: PgPool) {
    let app = spawn_limited(pool, 1, 3).await;
    for i in 0..3 {
        let a = post(
            &app,
            Some(FIRST),
            "/v1/transactions",
            &tx(&format!("t-{i}"), "c-1", 10.0, 5),
        )
        .await;
        assert_eq!(a.status, 201, "request {i} is within the burst: {}", a.body);
    }
    let over = post(
        &app,
        Some(FIRST),
        "/v1/transactions",
        &tx("t-over", "c-1", 10.0, 1),
    )
    .await;
    assert_rate_limited(&over);
    assert!(
        !app.stream("customer-c-1")
            .await
            .iter()
            .any(|e| e.payload.as_str().contains("t-over")),
        "a limited request is not handled"
    );

    // The other token has its own allowance.
    let other = post(
        &app,
        Some(SECOND),
        "/v1/transactions",
        &tx("t-other", "c-2", 10.0, 1),
    )
    .await;
    assert_eq!(other.status, 201, "{}", other.body);

    // Health checks are never limited.
    for _ in 0..10 {
        assert_eq!(app.get_status("/healthz").await, 200);
    }

    // Waiting as long as told is enough.
    let wait = over.retry_after.unwrap_or(1);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = post(
        &app,
        Some(FIRST),
        "/v1/transactions",
        &tx("t-again", "c-1", 10.0, 1),
    )
    .await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn callers_without_a_known_token_are_limited_by_address(pool: PgPool) {
    let app = spawn_limited(pool, 1, 2).await;
    let body = tx("t-1", "c-1", 10.0, 1);
    // Refused requests spend the address's allowance: guessing tokens is slow.
    for token in [None, Some("not-a-token")] {
        let a = post(&app, token, "/v1/transactions", &body).await;
        assert_eq!(a.status, 401, "{}", a.body);
    }
    assert_rate_limited(&post(&app, Some("another-guess"), "/v1/transactions", &body).await);
    // A known token from the same address is not held up by them.
    let a = post(&app, Some(FIRST), "/v1/transactions", &body).await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn in_open_mode_the_limit_is_per_address(pool: PgPool) {
    let settings = Settings {
        rate_limit: limit(1, 2),
        ..Settings::default()
    };
    let app = spawn_with(pool, settings).await;
    let label = |n: u32| json!({"transaction_id": format!("t-{n}"), "is_fraud": true, "source": "chargeback"});
    for n in 0..2 {
        // Let through (and answered: no such transaction), not limited.
        let a = post(&app, None, "/v1/labels", &label(n)).await;
        assert_eq!(a.status, 404, "{}", a.body);
    }
    assert_rate_limited(&post(&app, None, "/v1/labels", &label(9)).await);
    assert!(app.stream("label-t-9").await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn without_a_configured_limit_nothing_is_limited(pool: PgPool) {
    let app = spawn(pool).await;
    let batch: Vec<Value> = (0..60)
        .map(|n| tx(&format!("t-{n}"), "c-1", 5.0, 60))
        .collect();
    let a = post(&app, None, "/v1/transactions/batch", &json!(batch)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    for n in 0..60 {
        let label = json!({"transaction_id": format!("t-{n}"), "is_fraud": n % 2 == 0, "source": "chargeback"});
        let a = post(&app, None, "/v1/labels", &label).await;
        assert_eq!(a.status, 201, "request {n}: {}", a.body);
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_over_its_byte_limit_is_refused_with_413_and_quarantined(pool: PgPool) {
    let settings = Settings {
        batch_body_limit_bytes: 4 * 1024,
        ..Settings::default()
    };
    let app = spawn_with(pool, settings).await;
    // Ten transactions of ~600 bytes: well under the item limit, over the bytes.
    let batch: Vec<Value> = (0..10)
        .map(|i| tx(&format!("t-{i}"), "c-1", 10.0, 1))
        .collect();
    let a = post(&app, None, "/v1/transactions/batch", &json!(batch)).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["errors"][0]["reason"], "body_too_large");
    assert!(
        app.stream("customer-c-1").await.is_empty(),
        "nothing decided"
    );
    assert_eq!(
        app.stream("quarantine").await.len(),
        1,
        "the refusal is kept"
    );
    // A batch within the limit goes through.
    let small = json!([tx("t-small", "c-2", 10.0, 1)]);
    let a = post(&app, None, "/v1/transactions/batch", &small).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["results"][0]["status"], 201);
}
