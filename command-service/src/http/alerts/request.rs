//! What both alert routes do around their command: the alert id from the
//! path and the body as the domain's parser reads it (or the answer that
//! refuses the request; an invalid body is quarantined), and afterwards the
//! outcome as an answer (201 recorded, 200 already done) or a problem.

use crate::commands::error::CommandError;
use crate::commands::pipeline::Executed;
use crate::http::app::App;
use crate::http::input::{Expected, content_type};
use crate::http::problem::{Problem, store_unavailable};
use crate::ingest::RequestMeta;
use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::alert::AlertRefusal;
use domain::events::{AlertResolved, Verdict};
use domain::ids::AlertId;
use domain::ingest::FieldError;
use domain::outcome::Stamped;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// The alert id from the path and the body as `parse` reads it; or the
/// answer that refuses the request (an invalid body is quarantined).
pub(super) async fn read_command<T>(
    app: &App,
    expected: Expected,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
    meta: &RequestMeta,
    parse: fn(AlertId, &Value) -> Result<T, Vec<FieldError>>,
) -> Result<(AlertId, T), Response> {
    // An id that is not a UUID cannot name an alert; the body is not looked at.
    let Some(alert_id) = path
        .ok()
        .and_then(|Path(id)| Uuid::parse_str(&id).ok())
        .map(AlertId)
    else {
        return Err(not_found("the alert id is not a UUID").into_response());
    };
    let limit = app.settings.body_limit_bytes;
    let (bytes, value) = app
        .read_json(expected, headers, body, limit, meta)
        .await
        .map_err(IntoResponse::into_response)?;
    match parse(alert_id, &value) {
        Ok(command) => Ok((alert_id, command)),
        Err(reasons) => Err(app
            .refuse(expected, &bytes, content_type(headers), None, reasons, meta)
            .await
            .into_response()),
    }
}

/// The answer to a command: 201 and what `recorded` makes of the event's
/// time when it was appended, 200 and the stored answer when that stood.
pub(super) fn respond<D, A: Serialize + From<D>>(
    alert_id: AlertId,
    outcome: Result<Executed<D>, CommandError<AlertRefusal>>,
    recorded: impl FnOnce(DateTime<Utc>) -> A,
) -> Response {
    match outcome {
        Ok(Executed::Recorded(at)) => (StatusCode::CREATED, Json(recorded(at))).into_response(),
        Ok(Executed::Stood(stored)) => (StatusCode::OK, Json(A::from(stored))).into_response(),
        Err(error) => problem(alert_id, error).into_response(),
    }
}

fn problem(alert_id: AlertId, error: CommandError<AlertRefusal>) -> Problem {
    match error {
        CommandError::Refused(AlertRefusal::NotRaised) => {
            not_found(&format!("no alert {alert_id} was raised"))
        }
        CommandError::Refused(AlertRefusal::AlreadyResolved(resolved)) => Problem::new(
            StatusCode::CONFLICT,
            "alert-resolved",
            "The alert is already resolved",
        )
        .detail(format!(
            "{}; a resolved alert is not acknowledged",
            summary(&resolved)
        )),
        CommandError::Refused(AlertRefusal::ResolvedOtherwise(resolved)) => Problem::new(
            StatusCode::CONFLICT,
            "alert-already-resolved",
            "The alert is already resolved with another verdict",
        )
        .detail(summary(&resolved)),
        CommandError::Store(detail) => store_unavailable(&detail),
        CommandError::CatchingUp => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "alerts-catching-up",
            "Still reading the log for raised alerts",
        )
        .detail("this service is catching up with the event log after a start; retry shortly")
        .retry_after(5),
    }
}

/// "alert … was resolved as … by … at …", for the problems that cite it.
fn summary(resolved: &Stamped<AlertResolved>) -> String {
    let verdict = match resolved.event.verdict {
        Verdict::ConfirmedFraud => "confirmed_fraud",
        Verdict::FalsePositive => "false_positive",
    };
    format!(
        "alert {} was resolved as {verdict} by {} at {}",
        resolved.event.alert_id,
        resolved.event.analyst,
        resolved.at.to_rfc3339()
    )
}

fn not_found(detail: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "alert-not-found", "No such alert").detail(detail)
}
