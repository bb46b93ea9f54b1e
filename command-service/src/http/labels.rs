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
//! The transaction need not be known here: labels come from outside
//! (chargeback files) and may name transactions this service never saw, and
//! ground truth must not be lost for that.

use super::input::{Expected, content_type};
use super::problem::Problem;
use super::{AppState, request_meta, store_unavailable};
use crate::ingest::RequestMeta;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SubsecRound, Utc};
use domain::DomainEvent;
use domain::events::TransactionLabeled;
use domain::ids::TransactionId;
use domain::ingest::parse_label;
use domain::text::LabelSource;
use event_store::{AppendError, EventStore, ExpectedVersion, NewEvent};
use serde::Serialize;

/// Attempts when another writer keeps changing the stream between our read
/// and our append.
const MAX_ATTEMPTS: usize = 5;

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
    request_body(content = crate::http::openapi::LabelInput, content_type = "application/json"),
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
    match record(&**app.ingest.store(), label, &meta).await {
        Ok((status, a)) => (status, Json(a)).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Appends the label unless it repeats the current one from its source;
/// 201 or 200 with the label that stands.
async fn record(
    store: &dyn EventStore,
    label: TransactionLabeled,
    meta: &RequestMeta,
) -> Result<(StatusCode, LabelAnswer), Problem> {
    let stream = domain::streams::label(label.transaction_id.as_str());
    for _ in 0..MAX_ATTEMPTS {
        let (version, current) = read_current(store, &stream, &label.source).await?;
        if let Some(stored) = current.filter(|c| c.is_fraud == label.is_fraud) {
            return Ok((StatusCode::OK, stored));
        }
        // Microseconds: what the log keeps, so a repeat answers the same time.
        let labeled_at = Utc::now().trunc_subsecs(6);
        let event = DomainEvent::from(label.clone());
        let payload = event.to_payload().map_err(|e| store_unavailable(&e))?;
        let new = NewEvent::new(
            event.event_type(),
            event.schema_version(),
            labeled_at,
            payload,
        )
        .with_metadata(meta.metadata());
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match store.append(&stream, expected, vec![new]).await {
            Ok(_) => return Ok((StatusCode::CREATED, LabelAnswer::of(label, labeled_at))),
            // Another label for this transaction came in meanwhile: look again.
            Err(AppendError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(store_unavailable(&e)),
        }
    }
    Err(store_unavailable(&"the label stream kept changing"))
}

/// The stream's version and the newest label from `source`.
async fn read_current(
    store: &dyn EventStore,
    stream: &str,
    source: &LabelSource,
) -> Result<(Option<u64>, Option<LabelAnswer>), Problem> {
    let (mut version, mut current) = (None, None);
    let mut from = 0;
    loop {
        let page = store
            .read_stream(stream, from, 1000)
            .await
            .map_err(|e| store_unavailable(&e))?;
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        version = Some(last.stream_version);
        for event in &page {
            match DomainEvent::from_json(
                &event.event_type,
                event.schema_version,
                event.payload.as_str(),
            ) {
                Ok(DomainEvent::TransactionLabeled(l)) if &l.source == source => {
                    current = Some(LabelAnswer::of(l, event.event_time));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%stream, position = event.position.0, %error, "skipping an unreadable event");
                }
            }
        }
    }
    Ok((version, current))
}
