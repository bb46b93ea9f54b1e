//! `/healthz` (the process answers) and `/readyz` (the event store answers).

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process answers")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "The event store answers"),
    (status = 503, description = "The event store does not answer"),
))]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = app.ingest.store().clone();
    match tokio::time::timeout(Duration::from_secs(2), store.head_position()).await {
        Ok(Ok(head)) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "head_position": head.0 })),
        ),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": e.to_string() })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "event store timed out" })),
        ),
    }
}
