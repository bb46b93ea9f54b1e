//! `POST /v1/alerts/{id}/resolution`: an analyst's verdict on an alert,
//! appended as `AlertResolved` to the alert's stream `alert-{id}`.
//!
//! - 201 and the resolution when it is recorded (acknowledged or not);
//! - 200 and the stored resolution when the alert was already resolved with
//!   the same verdict (a retry, or a second analyst agreeing): nothing is
//!   appended, and the first analyst and note stand;
//! - 409 when it was resolved with the other verdict: a disagreement is for
//!   people to settle, not for the last writer to win;
//! - 404 when no alert has that id;
//! - 4xx problem, quarantined, when the body is not a valid resolution.

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
use domain::events::{AlertResolved, Verdict};
use domain::ids::AlertId;
use domain::ingest::parse_resolution;
use domain::text::{Analyst, Note};
use serde::Serialize;

/// A resolution as answered: what was recorded, and when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResolutionAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub alert_id: AlertId,
    /// `confirmed_fraud` or `false_positive`.
    #[schema(value_type = String)]
    pub verdict: Verdict,
    #[schema(value_type = String)]
    pub analyst: Analyst,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Note>,
    pub resolved_at: DateTime<Utc>,
}

impl ResolutionAnswer {
    pub(super) fn of(resolved: AlertResolved, resolved_at: DateTime<Utc>) -> Self {
        ResolutionAnswer {
            alert_id: resolved.alert_id,
            verdict: resolved.verdict,
            analyst: resolved.analyst,
            note: resolved.note,
            resolved_at,
        }
    }

    /// "alert … was resolved as … by … at …", for the problems that cite it.
    pub(super) fn summary(&self) -> String {
        let verdict = match self.verdict {
            Verdict::ConfirmedFraud => "confirmed_fraud",
            Verdict::FalsePositive => "false_positive",
        };
        format!(
            "alert {} was resolved as {verdict} by {} at {}",
            self.alert_id,
            self.analyst,
            self.resolved_at.to_rfc3339()
        )
    }
}

#[utoipa::path(
    post,
    path = "/v1/alerts/{id}/resolution",
    tag = "alerts",
    params(("id" = uuid::Uuid, Path, description = "The alert's id, from the transaction's answer", example = "0190c0de-0000-7000-8000-000000000001")),
    request_body(content = crate::http::openapi::ResolutionInput, content_type = "application/json"),
    // And 400, 401, 403, 413, 415 and 429, which `openapi::document` adds to every /v1 operation.
    responses(
        (status = 201, description = "Recorded", body = ResolutionAnswer),
        (status = 200, description = "The same resolution was already recorded", body = ResolutionAnswer),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved with the other verdict", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["analyst"]))
)]
pub async fn post_resolution(
    State(state): State<AlertsState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let meta = request_meta(&headers);
    let (alert_id, wanted) = match state
        .read_command(
            Expected::Resolution,
            path,
            &headers,
            body,
            &meta,
            parse_resolution,
        )
        .await
    {
        Ok(command) => command,
        Err(refused) => return refused,
    };
    let event = DomainEvent::from(wanted.clone());
    let outcome = state
        .record(alert_id, event, &meta, |lifecycle| {
            decide(&wanted, lifecycle)
        })
        .await;
    if let Ok(Outcome::Recorded(_)) = outcome {
        tracing::info!(%alert_id, verdict = ?wanted.verdict, "alert resolved");
    }
    respond(outcome, |at| ResolutionAnswer::of(wanted, at))
}

/// Only a resolution counts here; an acknowledgement does not stand in the
/// way of one.
fn decide(wanted: &AlertResolved, lifecycle: Lifecycle) -> Decision<ResolutionAnswer> {
    match lifecycle.resolved {
        None => Decision::Append,
        Some(stored) if stored.verdict == wanted.verdict => Decision::Stands(stored),
        Some(stored) => Decision::Refuse(
            Problem::new(
                StatusCode::CONFLICT,
                "alert-already-resolved",
                "The alert is already resolved with another verdict",
            )
            .detail(stored.summary()),
        ),
    }
}
