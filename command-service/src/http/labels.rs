//! `POST /v1/labels`: ground truth for a transaction (a chargeback, a
//! confirmed fraud), recorded as `TransactionLabeled` in the transaction's
//! own stream `label-{transaction_id}` (ADR 0003).
//!
//! - 201 and the label when it is recorded;
//! - 200 and the stored label when it repeats the current label of that
//!   transaction from that source (a retry): nothing is appended;
//! - a label that changes what a source said (a chargeback reversed) is a
//!   new fact, recorded with 201: the newest label per source is the truth;
//! - 4xx problem, quarantined, when the body is not a valid label.
//!
//! What is a repeat is decided by `domain::label`, carried out by
//! `crate::commands::labels`; this file parses and answers.
//!
//! The transaction need not be known here: labels come from outside
//! (chargeback files) and may name transactions this service never saw, and
//! ground truth must not be lost for that.

use super::app::AppState;
use super::input::{Expected, content_type};
use super::meta::request_meta;
use super::problem::{Problem, store_unavailable};
use crate::commands::error::CommandError;
use crate::commands::labels;
use crate::commands::pipeline::Executed;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::events::TransactionLabeled;
use domain::ids::TransactionId;
use domain::ingest::parse_label;
use domain::label::LabelTransaction;
use domain::text::LabelSource;
use serde::Serialize;

/// A label as answered: what was recorded, and when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LabelAnswer {
    #[schema(value_type = String)]
    pub transaction_id: TransactionId,
    pub is_fraud: bool,
    #[schema(value_type = String)]
    pub source: LabelSource,
    pub labeled_at: DateTime<Utc>,
}

impl LabelAnswer {
    fn of(label: TransactionLabeled, labeled_at: DateTime<Utc>) -> Self {
        LabelAnswer {
            transaction_id: label.transaction_id,
            is_fraud: label.is_fraud,
            source: label.source,
            labeled_at,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/labels",
    tag = "labels",
    request_body(content = crate::http::bodies::LabelInput, content_type = "application/json"),
    // And 400, 401, 403, 413, 415 and 429, which `openapi::document` adds to every /v1 operation.
    responses(
        (status = 201, description = "Recorded", body = LabelAnswer),
        (status = 200, description = "This source already said so", body = LabelAnswer),
        (status = 422, description = "Invalid body (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["analyst"]))
)]
pub async fn post_label(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let meta = request_meta(&headers);
    let limit = app.settings.body_limit_bytes;
    let (bytes, value) = match app
        .read_json(Expected::Label, &headers, body, limit, &meta)
        .await
    {
        Ok(read) => read,
        Err(problem) => return problem.into_response(),
    };
    let label = match parse_label(&value) {
        Ok(label) => label,
        Err(reasons) => {
            return app
                .refuse(
                    Expected::Label,
                    &bytes,
                    content_type(&headers),
                    None,
                    reasons,
                    &meta,
                )
                .await
                .into_response();
        }
    };
    let store = &**app.ingest.store();
    match labels::label(store, LabelTransaction(label.clone()), meta.metadata()).await {
        Ok(Executed::Recorded(at)) => {
            (StatusCode::CREATED, Json(LabelAnswer::of(label, at))).into_response()
        }
        Ok(Executed::Stood(stored)) => (
            StatusCode::OK,
            Json(LabelAnswer::of(stored.event, stored.at)),
        )
            .into_response(),
        Err(CommandError::Refused(never)) => match never {},
        Err(CommandError::Store(detail)) => store_unavailable(&detail).into_response(),
        // Labels do not wait for the log to be read; kept total all the same.
        Err(CommandError::CatchingUp) => store_unavailable(&"catching up").into_response(),
    }
}
