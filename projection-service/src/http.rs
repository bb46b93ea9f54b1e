//! The projection service's HTTP face: `/healthz` (the process answers),
//! `/readyz` (PostgreSQL answers and no projector has failed), `/metrics`
//! (Prometheus) and `/status` (every projector's status as JSON).

use crate::status::{self, State as ProjectorState, StatusBoard};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use event_store::EventStore;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Ops {
    pub pool: PgPool,
    pub store: Arc<dyn EventStore>,
    pub board: StatusBoard,
}

pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(telemetry::render_metrics))
        .route("/status", get(status_json))
        .with_state(ops)
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(ops): State<Ops>) -> (StatusCode, Json<Value>) {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&ops.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return unavailable(&e.to_string()),
        Err(_) => return unavailable("database timed out"),
    }
    let failed: Vec<String> = ops
        .board
        .snapshot()
        .into_iter()
        .filter(|s| s.state == ProjectorState::Failed)
        .map(|s| s.projection.to_owned())
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        unavailable(&format!("failed projectors: {}", failed.join(", ")))
    }
}

fn unavailable(reason: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": reason })),
    )
}

async fn status_json(State(ops): State<Ops>) -> (StatusCode, Json<Value>) {
    match status::measure(&ops.board, &*ops.store).await {
        Ok(reports) => {
            let rows: Vec<Value> = reports
                .iter()
                .map(|r| {
                    json!({
                        "projection": r.status.projection,
                        "role": r.status.role.as_str(),
                        "partition": r.status.partition.to_string(),
                        "version": r.status.version,
                        "state": r.status.state.as_str(),
                        "checkpoint": r.status.checkpoint,
                        "head": r.head,
                        "lag_events": r.lag_events,
                        "lag_seconds": r.lag_seconds,
                        "dead_letter_policy": r.status.policy.to_string(),
                        "dead_letters": r.status.dead_letters,
                        "last_error": r.status.last_error,
                    })
                })
                .collect();
            (StatusCode::OK, Json(json!({ "projections": rows })))
        }
        Err(e) => unavailable(&e.to_string()),
    }
}
