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
//!
//! The rule is `domain::alert`'s, carried out by `crate::commands::alerts`;
//! this file parses the request and answers.

use super::answers::ResolutionAnswer;
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
use domain::alert::ResolveAlert;
use domain::ingest::parse_resolution;

#[utoipa::path(
    post,
    path = "/v1/alerts/{id}/resolution",
    tag = "alerts",
    params(("id" = uuid::Uuid, Path, description = "The alert's id, from the transaction's answer", example = "0190c0de-0000-7000-8000-000000000001")),
    request_body(content = crate::http::bodies::ResolutionInput, content_type = "application/json"),
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
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let meta = request_meta(&headers);
    let (alert_id, wanted) = match read_command(
        &app,
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
    let outcome = app
        .alerts
        .resolve(ResolveAlert(wanted.clone()), meta.metadata())
        .await;
    if let Ok(Executed::Recorded(_)) = outcome {
        tracing::info!(%alert_id, verdict = ?wanted.verdict, "alert resolved");
    }
    respond(alert_id, outcome, |at| ResolutionAnswer::of(wanted, at))
}
