//! `DELETE /v1/customers/{id}/personal-data` over real HTTP with tokens:
//! only admins; idempotent; problems for an unknown or invalid id; the key
//! is destroyed and the event recorded; a customer who transacts again gets
//! a new key, so the old fingerprints link to nothing new. And what the
//! ingest stores: sealed personal fields, never the plaintext.
//! (The whole-database and GraphQL checks are in
//! projection-service/tests/erasure.rs.)

mod common;

use common::{TestApp, spawn_with_tokens, tx};
use serde_json::{Value, json};
use sqlx::PgPool;

const INGEST: &str = "erase-ingest-token-0123456789";
const ANALYST: &str = "erase-analyst-token-0123456789";
const ADMIN: &str = "erase-admin-token-0123456789";
const IP: &str = "198.51.100.41";

fn with_device(id: &str, customer: &str) -> Value {
    let mut t = tx(id, customer, 12.0, 5);
    t["device_info"] = json!({"device_type": "web", "ip_address": IP, "user_agent": "Probe/1"});
    t
}

async fn delete(app: &TestApp, customer: &str, token: &str) -> (u16, String, Value) {
    let r = app
        .http
        .delete(format!(
            "{}/v1/customers/{customer}/personal-data",
            app.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, r.json().await.unwrap_or(Value::Null))
}

/// The recorded transactions' devices, in stream order.
async fn devices(app: &TestApp, customer: &str) -> Vec<Value> {
    app.stream(&format!("customer-{customer}"))
        .await
        .iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .map(|e| e.payload.to_value().expect("payload")["transaction"]["device_info"].clone())
        .collect()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn only_an_admin_erases_and_asking_again_answers_the_same(pool: PgPool) {
    let app = spawn_with_tokens(pool.clone(), INGEST, ANALYST, ADMIN).await;
    let (s, b) = app
        .post_with(
            "/v1/transactions",
            &with_device("t-1", "c-1"),
            &[("authorization", &format!("Bearer {INGEST}"))],
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // The log holds the sealed form: a fingerprint and ciphertext.
    let before = devices(&app, "c-1").await;
    let device = &before[0];
    assert!(device.get("ip_address").is_none(), "{device}");
    assert!(device.get("user_agent").is_none(), "{device}");
    assert!(
        device["sealed"].as_str().unwrap().starts_with("v1.1."),
        "{device}"
    );
    let events: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events")
        .fetch_all(&pool)
        .await
        .expect("events");
    assert!(
        !events
            .iter()
            .any(|p| p.contains(IP) || p.contains("Probe/1"))
    );

    for token in [INGEST, ANALYST] {
        let (status, content_type, problem) = delete(&app, "c-1", token).await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(content_type, "application/problem+json");
    }
    let (status, _, first) = delete(&app, "c-1", ADMIN).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["customer_id"], "c-1");
    assert_eq!(first["key_generation"], 1);
    assert_eq!(first["already_erased"], false);
    let (status, _, again) = delete(&app, "c-1", ADMIN).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["already_erased"], true);
    assert_eq!(again["erased_at"], first["erased_at"]);

    let (status, content_type, problem) = delete(&app, "c-nobody", ADMIN).await;
    assert_eq!(
        (status, content_type.as_str()),
        (404, "application/problem+json")
    );
    assert_eq!(problem["type"], "/problems/unknown-customer");
    let (status, _, problem) = delete(&app, "bad%20id", ADMIN).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["type"], "/problems/invalid-id");

    // The key is gone; the event is in the stream once, naming the admin.
    let wrapped: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped_key FROM customer_keys WHERE customer_id = 'c-1'")
            .fetch_one(&pool)
            .await
            .expect("key row");
    assert!(wrapped.is_none());
    let erased: Vec<Value> = app
        .stream("customer-c-1")
        .await
        .iter()
        .filter(|e| e.event_type == "PersonalDataErased")
        .map(|e| e.payload.to_value().expect("payload"))
        .collect();
    assert_eq!(erased.len(), 1, "{erased:?}");
    assert_eq!(erased[0]["key_generation"], 1);
    assert_eq!(erased[0]["erased_by"], "token #3");

    // Transacting again after the erasure: a new key (generation 2), so the
    // same device gets a fingerprint unrelated to the erased one.
    let (s, b) = app
        .post_with(
            "/v1/transactions",
            &with_device("t-2", "c-1"),
            &[("authorization", &format!("Bearer {INGEST}"))],
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let after = devices(&app, "c-1").await;
    assert_eq!(after.len(), 2);
    assert!(
        after[1]["sealed"].as_str().unwrap().starts_with("v1.2."),
        "{}",
        after[1]
    );
    assert_ne!(after[1]["fingerprint"], before[0]["fingerprint"]);
}
