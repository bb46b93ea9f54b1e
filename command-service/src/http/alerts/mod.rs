//! The alert lifecycle routes: an analyst acknowledges an alert (`POST
//! /v1/alerts/{id}/acknowledgement`) and resolves it with a verdict (`POST
//! /v1/alerts/{id}/resolution`), each appending one event to the alert's
//! stream `alert-{id}`.
//!
//! - `acknowledgement`, `resolution`: the handlers, each with its answer and
//!   its own rule for what counts as a repeat (200) or a conflict (409);
//! - `lifecycle`: what both share once a request is understood: reading
//!   `alert-{id}`, and appending under optimistic concurrency with retries;
//! - `raised`: how an alert is known to exist (ADR 0003);
//! - here: the state, and what both do before and after that: the alert id
//!   from the path, the body parsed or refused (quarantined), and the answer.

pub mod acknowledgement;
mod lifecycle;
mod raised;
pub mod resolution;

pub use acknowledgement::{AcknowledgementAnswer, post_acknowledgement};
pub use raised::RaisedAlerts;
pub use resolution::{ResolutionAnswer, post_resolution};

use super::AppState;
use super::input::{Expected, content_type};
use super::problem::Problem;
use crate::ingest::RequestMeta;
use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::ids::AlertId;
use domain::ingest::FieldError;
use lifecycle::Outcome;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// The alert routes' state: the app, and the alerts known to exist.
#[derive(Clone)]
pub struct AlertsState {
    app: AppState,
    raised: Arc<RaisedAlerts>,
}

impl AlertsState {
    pub fn new(app: AppState) -> Self {
        let raised = Arc::new(RaisedAlerts::new(app.ingest.store().clone()));
        AlertsState { app, raised }
    }

    /// The alert id from the path and the body as `parse` reads it; or the
    /// answer that refuses the request (an invalid body is quarantined).
    async fn read_command<T>(
        &self,
        expected: Expected,
        path: Result<Path<String>, PathRejection>,
        headers: &HeaderMap,
        body: Body,
        meta: &RequestMeta,
        parse: fn(AlertId, &Value) -> Result<T, Vec<FieldError>>,
    ) -> Result<(AlertId, T), Response> {
        let app = &self.app;
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
}

/// The answer to a command: 201 and what `recorded` makes of the event's
/// time when it was appended, 200 and the stored answer when that stood.
fn respond<A: Serialize>(
    outcome: Result<Outcome<A>, Problem>,
    recorded: impl FnOnce(DateTime<Utc>) -> A,
) -> Response {
    match outcome {
        Ok(Outcome::Recorded(at)) => (StatusCode::CREATED, Json(recorded(at))).into_response(),
        Ok(Outcome::Stood(stored)) => (StatusCode::OK, Json(stored)).into_response(),
        Err(problem) => problem.into_response(),
    }
}

fn not_found(detail: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "alert-not-found", "No such alert").detail(detail)
}
