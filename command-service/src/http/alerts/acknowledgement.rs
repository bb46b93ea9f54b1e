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
//! The rule is `domain::alert`'s, carried out by `crate::commands::alerts`;
//! this file parses the request and answers.
//!
//! Acknowledging is optional: an alert can be resolved without it.

use super::answers::AcknowledgementAnswer;
use super::request::{read_command, respond};
use crate::commands::pipeline::Executed;
use crate::http::app::AppState;
use crate::http::input::Expected;
use crate::http::meta::request_meta;
use crate::http::problem::Problem;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::alert::AcknowledgeAlert;
use domain::ingest::parse_acknowledgement;

#[utoipa::path(
    post,
    path = "/v1/alerts/{id}/acknowledgement",
    tag = "alerts",
    params(("id" = uuid::Uuid, Path, description = "The alert's id, from the transaction's answer", example = "0190c0de-0000-7000-8000-000000000001")),
    request_body(content = crate::http::bodies::AcknowledgementInput, content_type = "application/json"),
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
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let meta = request_meta(&headers);
    let (alert_id, wanted) = match read_command(
        &app,
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
    let outcome = app
        .alerts
        .acknowledge(AcknowledgeAlert(wanted.clone()), meta.metadata())
        .await;
    if let Ok(Executed::Recorded(_)) = outcome {
        tracing::info!(%alert_id, analyst = %wanted.analyst, "alert acknowledged");
    }
    respond(alert_id, outcome, |at| {
        AcknowledgementAnswer::of(wanted, at)
    })
}
