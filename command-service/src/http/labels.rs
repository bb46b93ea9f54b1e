//! `POST /v1/labels` and `POST /v1/labels/batch`: ground truth for
//! transactions (a chargeback, a confirmed fraud), each recorded as
//! `TransactionLabeled` in the transaction's own stream
//! `label-{transaction_id}` (ADR 0003). Per label:
//!
//! - 201 and the label when it is recorded;
//! - 200 and the stored label when it repeats the current label of that
//!   transaction from that source (a retry): nothing is appended;
//! - a label that changes what a source said (a chargeback reversed) is a
//!   new fact, recorded with 201: the newest label per source is the truth;
//! - 404 problem when the transaction is not known (labels for unknown
//!   transactions used to be accepted; now they are refused, and, like
//!   every refused input, kept whole in the `quarantine` stream with the
//!   reason `unknown_transaction`, so the ground truth is still kept). A
//!   label may name its `customer_id`, which finds a transaction too old for
//!   the transaction directory in its customer's stream;
//! - 4xx problem, quarantined, when the body is not a valid label.
//!
//! A label's event time (the envelope's) is when this service received and
//! recorded it, never the transaction's time: nothing learns from a label
//! before it arrived. The batch takes up to `SENTINEL_BATCH_MAX_ITEMS`
//! labels and answers each as it would have been answered alone (`{"results":
//! [{"index", "status", "answer" | "problem"}]}`), resolving
//! [`CONCURRENT_LABELS`] at a time.
//!
//! What is a repeat is decided by `domain::label`, carried out (with the
//! transaction resolved first) by `crate::commands::labels`; this file
//! parses and answers.

use super::app::{App, AppState};
use super::input::{Expected, content_type};
use super::meta::request_meta;
use super::problem::{Problem, store_unavailable};
use crate::commands::labels::LabelError;
use crate::commands::pipeline::Executed;
use crate::ingest::RequestMeta;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::events::TransactionLabeled;
use domain::ids::TransactionId;
use domain::ingest::{FieldError, FieldReason, LabelItem, WHOLE_BODY, parse_label_item};
use domain::text::LabelSource;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

/// Labels of one batch resolved and recorded at once.
pub const CONCURRENT_LABELS: usize = 32;

/// A label as answered: what was recorded, and when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LabelAnswer {
    #[schema(value_type = String)]
    pub transaction_id: TransactionId,
    pub is_fraud: bool,
    #[schema(value_type = String)]
    pub source: LabelSource,
    /// When the label was received and recorded (its event time).
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
        (status = 404, description = "No such transaction (quarantined, reason unknown_transaction)", body = Problem, content_type = "application/problem+json"),
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
    let item = parse_label_item(&value);
    match app
        .label(item, &bytes, content_type(&headers), None, &meta)
        .await
    {
        Ok((status, answer)) => (status, Json(answer)).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// One label's answer in a batch.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LabelItemResult {
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<LabelAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LabelBatchAnswer {
    pub results: Vec<LabelItemResult>,
}

#[utoipa::path(
    post,
    path = "/v1/labels/batch",
    tag = "labels",
    request_body(content = crate::http::bodies::LabelBatch, content_type = "application/json"),
    // And 400, 401, 403, 413, 415 and 429, which `openapi::document` adds to every /v1 operation.
    responses(
        (status = 200, description = "One result per item, in order, with the status it would have had alone: 201 recorded, 200 the same label again (the stored one), 404 unknown transaction (quarantined), 422 invalid item (quarantined), 503 the store could not take it", body = LabelBatchAnswer),
        (status = 413, description = "Over the batch body limit (SENTINEL_BATCH_BODY_LIMIT_BYTES) or over SENTINEL_BATCH_MAX_ITEMS items (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a JSON array (quarantined)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["analyst"]))
)]
pub async fn post_label_batch(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let meta = request_meta(&headers);
    let content_type = content_type(&headers);
    let limit = app.settings.batch_body_limit_bytes;
    let (bytes, items) = match app
        .read_json(Expected::Label, &headers, body, limit, &meta)
        .await
    {
        Ok((_, Value::Array(items))) => (None, items),
        Ok((bytes, _)) => (Some(bytes), Vec::new()),
        Err(problem) => return problem.into_response(),
    };
    // A batch refused as a whole is quarantined whole, with its one reason.
    let refused = if let Some(bytes) = bytes {
        let message = "a batch is a JSON array".to_owned();
        Some((bytes.to_vec(), FieldReason::WrongType, message))
    } else if items.len() > app.settings.batch_max_items {
        let max = app.settings.batch_max_items;
        let message = format!("{} items; at most {max} per batch", items.len());
        let whole = Value::Array(items.clone()).to_string().into_bytes();
        Some((whole, FieldReason::BatchTooLarge, message))
    } else {
        None
    };
    if let Some((bytes, reason, message)) = refused {
        let reasons = vec![FieldError::new(WHOLE_BODY, reason, message)];
        return app
            .refuse(Expected::Label, &bytes, content_type, None, reasons, &meta)
            .await
            .into_response();
    }
    let content_type = content_type.map(str::to_owned);
    let results = futures_util::stream::iter(items.into_iter().enumerate())
        .map(|(index, item)| {
            let (app, meta, content_type) = (app.clone(), meta.clone(), content_type.clone());
            async move {
                let raw = item.to_string();
                let parsed = parse_label_item(&item);
                let ct = content_type.as_deref();
                let outcome = app
                    .label(parsed, raw.as_bytes(), ct, Some(index as u32), &meta)
                    .await;
                match outcome {
                    Ok((status, answer)) => LabelItemResult {
                        index,
                        status: status.as_u16(),
                        answer: Some(answer),
                        problem: None,
                    },
                    Err(problem) => LabelItemResult {
                        index,
                        status: problem.status,
                        answer: None,
                        problem: Some(problem),
                    },
                }
            }
        })
        .buffered(CONCURRENT_LABELS)
        .collect::<Vec<_>>()
        .await;
    (StatusCode::OK, Json(LabelBatchAnswer { results })).into_response()
}

impl App {
    /// One label, parsed or not, as an HTTP outcome; what is refused
    /// (invalid, or for an unknown transaction) is quarantined as `raw`.
    async fn label(
        &self,
        parsed: Result<LabelItem, Vec<FieldError>>,
        raw: &[u8],
        content_type: Option<&str>,
        batch_index: Option<u32>,
        meta: &RequestMeta,
    ) -> Result<(StatusCode, LabelAnswer), Problem> {
        let refuse = |reasons| {
            self.refuse(
                Expected::Label,
                raw,
                content_type,
                batch_index,
                reasons,
                meta,
            )
        };
        let item = match parsed {
            Ok(item) => item,
            Err(reasons) => return Err(refuse(reasons).await),
        };
        let recorded = self
            .labels
            .record(
                item.label.clone(),
                item.customer_id.as_ref(),
                meta.metadata(),
            )
            .await;
        match recorded {
            Ok(Executed::Recorded(at)) => {
                Ok((StatusCode::CREATED, LabelAnswer::of(item.label, at)))
            }
            Ok(Executed::Stood(stored)) => {
                Ok((StatusCode::OK, LabelAnswer::of(stored.event, stored.at)))
            }
            Err(LabelError::UnknownTransaction) => {
                let id = &item.label.transaction_id;
                let message = match &item.customer_id {
                    Some(customer) => {
                        format!("no transaction {id} is known, nor in customer {customer}'s stream")
                    }
                    None => format!(
                        "no transaction {id} is known (send customer_id to look for it in its customer's stream)"
                    ),
                };
                let reason =
                    FieldError::new("transaction_id", FieldReason::UnknownTransaction, message);
                Err(refuse(vec![reason]).await)
            }
            Err(LabelError::Store(detail)) => Err(store_unavailable(&detail)),
        }
    }
}
