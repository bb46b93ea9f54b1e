//! The API describes itself (OpenAPI 3.1 from the handlers, Swagger UI) and
//! reports itself (Prometheus text on `/metrics`), both over real HTTP.

mod common;

use common::{spawn, tx};
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_openapi_document_covers_every_endpoint(pool: PgPool) {
    let app = spawn(pool).await;
    let doc: Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/transactions",
        "/v1/transactions/batch",
        "/v1/alerts/{id}/resolution",
        "/v1/labels",
        "/v1/labels/batch",
        "/healthz",
        "/readyz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let created = &doc["paths"]["/v1/transactions"]["post"]["responses"]["201"];
    assert!(created.is_object(), "201 documented");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let ui = app
        .http
        .get(format!("{}/swagger-ui/", app.base))
        .send()
        .await
        .expect("send");
    assert_eq!(ui.status(), 200);
    assert!(
        ui.text().await.expect("html").contains("swagger"),
        "Swagger UI page"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn metrics_count_requests_decisions_and_quarantine(pool: PgPool) {
    let app = spawn(pool).await;
    app.post("/v1/transactions", &tx("t-1", "c-1", 10.0, 1))
        .await;
    let mut bad = tx("t-2", "c-1", 10.0, 1);
    bad["currency"] = serde_json::json!("ZZZ");
    app.post("/v1/transactions", &bad).await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    for needle in [
        "sentinel_http_requests_total{route=\"/v1/transactions\",status=\"201\"}",
        "sentinel_http_requests_total{route=\"/v1/transactions\",status=\"422\"}",
        "sentinel_http_request_duration_seconds_bucket",
        "sentinel_decisions_total{decision=\"approve\"}",
        "sentinel_decide_duration_seconds_bucket",
        "sentinel_quarantined_total{reason=\"unknown_currency\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
