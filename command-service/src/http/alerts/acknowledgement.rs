//! `POST /v1/alerts/{id}/acknowledgement`: an analyst takes an alert up,
//! appended as `AlertAcknowledged` to the alert's stream `alert-{id}`.
//!
//! - 201 and the acknowledgement when it is recorded;
//! - 200 and the stored acknowledgement when the alert was already
//!   acknowledged, by whoever: nothing is appended, and the first analyst and
//!   note stand (the answer says who has it);
//! - 409 when the alert is already resolved, even if it was acknowledged
//!   too: whoever asks believes it is open, and that mistake is worth telling;
//! - 404 when no alert has that id;
//! - 4xx problem, quarantined, when the body is not a valid acknowledgement.
//!
//! Acknowledging is optional: an alert can be resolved without it.

use super::lifecycle::{Decision, Lifecycle, Outcome};
use super::{AlertsState, respond};
use crate::http::input::Expected;
use crate::http::problem::Problem;
use crate::http::request_meta;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::events::AlertAcknowledged;
use domain::ids::AlertId;
use domain::ingest::parse_acknowledgement;
use domain::text::{Analyst, Note};
use serde::Serialize;

/// An acknowledgement as answered: what was recorded, and when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AcknowledgementAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub alert_id: AlertId,
    #[schema(value_type = String)]
    pub analyst: Analyst,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Note>,
    pub acknowledged_at: DateTime<Utc>,
}

impl AcknowledgementAnswer {
    pub(super) fn of(acknowledged: AlertAcknowledged, acknowledged_at: DateTime<Utc>) -> Self {
        AcknowledgementAnswer {
            alert_id: acknowledged.alert_id,
            analyst: acknowledged.analyst,
            note: acknowledged.note,
            acknowledged_at,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/alerts/{id}/acknowledgement",
    tag = "alerts",
    params(("id" = uuid::Uuid, Path, description = "The alert's id, from the transaction's answer", example = "0190c0de-0000-7000-8000-000000000001")),
    request_body(content = crate::http::openapi::AcknowledgementInput, content_type = "application/json"),
    // And 400, 401, 403, 413, 415 and 429, which `openapi::document` adds to every /v1 operation.
    responses(
        (status = 201, description = "Recorded", body = AcknowledgementAnswer),
        (status = 200, description = "Already acknowledged; the first acknowledgement stands", body = AcknowledgementAnswer),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The alert is already resolved", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["analyst"]))
)]
pub async fn post_acknowledgement(
    State(state): State<AlertsState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let meta = request_meta(&headers);
    let (alert_id, wanted) = match state
        .read_command(
            Expected::Acknowledgement,
            path,
            &headers,
            body,
            &meta,
            parse_acknowledgement,
        )
        .await
    {
        Ok(command) => command,
        Err(refused) => return refused,
    };
    let event = DomainEvent::from(wanted.clone());
    let outcome = state.record(alert_id, event, &meta, decide).await;
    if let Ok(Outcome::Recorded(_)) = outcome {
        tracing::info!(%alert_id, analyst = %wanted.analyst, "alert acknowledged");
    }
    respond(outcome, |at| AcknowledgementAnswer::of(wanted, at))
}

/// The resolution is looked at first: once resolved, the alert is closed
/// to acknowledgements, a repeated one included.
fn decide(lifecycle: Lifecycle) -> Decision<AcknowledgementAnswer> {
    match (lifecycle.resolved, lifecycle.acknowledged) {
        (Some(resolved), _) => Decision::Refuse(
            Problem::new(
                StatusCode::CONFLICT,
                "alert-resolved",
                "The alert is already resolved",
            )
            .detail(format!(
                "{}; a resolved alert is not acknowledged",
                resolved.summary()
            )),
        ),
        (None, Some(stored)) => Decision::Stands(stored),
        (None, None) => Decision::Append,
    }
}
