//! `/healthz` (the process answers) and `/readyz` (the event store answers).

use super::app::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::time::Duration;

/// The process answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Whether the event store answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The log's head position, when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_position: Option<u64>,
    /// Why not, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses(
    (status = 200, description = "The process answers", body = Health),
))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "The event store answers", body = Readiness),
    (status = 503, description = "The event store does not answer", body = Readiness),
))]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let store = app.ingest.store().clone();
    let unavailable = |reason: String| {
        let answer = Readiness {
            status: "unavailable",
            head_position: None,
            reason: Some(reason),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(answer))
    };
    match tokio::time::timeout(Duration::from_secs(2), store.head_position()).await {
        Ok(Ok(head)) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                head_position: Some(head.0),
                reason: None,
            }),
        ),
        Ok(Err(e)) => unavailable(e.to_string()),
        Err(_) => unavailable("event store timed out".to_owned()),
    }
}
