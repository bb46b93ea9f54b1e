//! `POST /v1/transactions` and `POST /v1/transactions/batch`.
//!
//! Each request is read with a size limit, checked for a JSON content type,
//! parsed as JSON (`input`), then as a transaction (every failing field at
//! once), and handed to the ingest. Whatever is refused is quarantined with
//! its reasons. A batch first loads every customer it names that is not
//! cached, in one read (`Ingest::preload`), then decides its items
//! concurrently (one customer's items in order, behind its lock). A batch
//! is admitted whole or refused whole (503 with `Retry-After`) when the
//! transactions in flight would pass `SENTINEL_MAX_IN_FLIGHT`. Each
//! request runs in an `ingest` span (each batch item in an `ingest_item`
//! span under it) that continues the caller's trace.
//!
//! `?include=features` adds to the answer of each transaction decided now
//! the features it was decided on (`domain::features`, by name, `null` for
//! unknown). A repeat's answer has none: features are not remembered with
//! the answers (about 0.5 KiB each); the log is their truth
//! (`domain::features::FeatureReplay` recomputes them).

use super::app::{App, AppState};
use super::input::{Expected, content_type};
use super::meta::{ingest_span, record_ids, request_meta};
use super::problem::{Problem, store_unavailable};
use crate::ingest::{IngestError, Outcome, RequestMeta};
use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::Transaction;
use domain::ingest::{FieldError, FieldReason, WHOLE_BODY, parse_transaction};
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

/// An answer, with the features when they were asked for.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TransactionAnswer {
    #[serde(flatten)]
    pub answer: crate::ingest::answer::Answer,
    /// With `?include=features`, on a transaction decided now (not on a
    /// repeat): every feature of the catalogue by name, as the decision saw
    /// it; `null` where unknown (no history, no place, no merchant).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub features: Option<Value>,
}

/// What `?include=` asked for: a comma-separated list; `features` is the
/// one known value, others are ignored.
#[derive(Clone, Copy, Default)]
struct Include {
    features: bool,
}

impl Include {
    fn of(query: Option<&str>) -> Include {
        let features = query.into_iter().flat_map(|q| q.split('&')).any(|pair| {
            pair.split_once('=').is_some_and(|(k, v)| {
                k == "include" && v.split(',').chain(v.split("%2C")).any(|x| x == "features")
            })
        });
        Include { features }
    }

    /// The answer of an outcome, with its features if asked for.
    fn answer(self, outcome: Outcome) -> (StatusCode, TransactionAnswer) {
        match outcome {
            Outcome::Recorded(answer, features) => (
                StatusCode::CREATED,
                TransactionAnswer {
                    answer,
                    features: self.features.then(|| features.to_json()),
                },
            ),
            Outcome::Repeated(answer) => (
                StatusCode::OK,
                TransactionAnswer {
                    answer,
                    features: None,
                },
            ),
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/transactions",
    tag = "transactions",
    params(("include" = Option<String>, Query, description = "`features`: add the features the transaction was decided on to a 201 answer (comma-separated; other values are ignored)", example = "features")),
    request_body(content = crate::http::bodies::TransactionInput, content_type = "application/json"),
    // And 400, 401, 403, 413, 415 and 429, which `openapi::document` adds to every /v1 operation.
    responses(
        (status = 201, description = "Decided and recorded (with `features` when `include=features`)", body = TransactionAnswer),
        (status = 200, description = "A repeat of a recorded transaction: the first answer", body = crate::ingest::answer::Answer),
        (status = 409, description = "The transaction id was used with another payload", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid transaction; every failing field named (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "At capacity or event store unavailable; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["ingest"]))
)]
pub async fn post_one(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut meta = request_meta(&headers);
    meta.policy = Some(app.ingest.policy_now());
    let span = ingest_span("/v1/transactions", &mut meta);
    let include = Include::of(query.as_deref());
    one(app, headers, body, meta, include)
        .instrument(span)
        .await
}

async fn one(
    app: AppState,
    headers: HeaderMap,
    body: Body,
    meta: RequestMeta,
    include: Include,
) -> Response {
    let limit = app.settings.body_limit_bytes;
    let (bytes, value) = match app
        .read_json(Expected::Transaction, &headers, body, limit, &meta)
        .await
    {
        Ok(read) => read,
        Err(problem) => return problem.into_response(),
    };
    match parse_transaction(&value, &app.parse_context()) {
        Ok(tx) => {
            record_ids(&tracing::Span::current(), &tx);
            match app.record(tx, &meta).await {
                Ok(outcome) => {
                    let (status, answer) = include.answer(outcome);
                    (status, Json(answer)).into_response()
                }
                Err(p) => p.into_response(),
            }
        }
        Err(reasons) => app
            .refuse(
                Expected::Transaction,
                &bytes,
                content_type(&headers),
                None,
                reasons,
                &meta,
            )
            .await
            .into_response(),
    }
}

/// One item's answer in a batch.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<TransactionAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<ItemResult>,
}

#[utoipa::path(
    post,
    path = "/v1/transactions/batch",
    tag = "transactions",
    params(("include" = Option<String>, Query, description = "`features`: add to each item answered 201 the features it was decided on (comma-separated; other values are ignored)", example = "features")),
    request_body(content = crate::http::bodies::TransactionBatch, content_type = "application/json"),
    // And 400, 401, 403, 413, 415 and 429, which `openapi::document` adds to every /v1 operation.
    responses(
        (status = 200, description = "One result per item, in order, with the status it would have had alone (a bad item fails alone, 422; an item the store could not take, 503)", body = BatchAnswer),
        (status = 413, description = "Over the batch body limit (SENTINEL_BATCH_BODY_LIMIT_BYTES) or over SENTINEL_BATCH_MAX_ITEMS items (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a JSON array (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "At capacity: the whole batch was refused and nothing recorded; retry it after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["ingest"]))
)]
pub async fn post_batch(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut meta = request_meta(&headers);
    // One policy for the whole batch, whatever is promoted meanwhile.
    meta.policy = Some(app.ingest.policy_now());
    let span = ingest_span("/v1/transactions/batch", &mut meta);
    let include = Include::of(query.as_deref());
    batch(app, headers, body, meta, include)
        .instrument(span)
        .await
}

async fn batch(
    app: AppState,
    headers: HeaderMap,
    body: Body,
    meta: RequestMeta,
    include: Include,
) -> Response {
    let content_type = content_type(&headers);
    let limit = app.settings.batch_body_limit_bytes;
    // A batch refused as a whole is quarantined whole, with its one reason.
    let refuse_whole = |bytes: axum::body::Bytes, reason: FieldReason, message: String| {
        let (app, meta) = (app.clone(), meta.clone());
        async move {
            let reasons = vec![FieldError::new(WHOLE_BODY, reason, message)];
            app.refuse(
                Expected::Transaction,
                &bytes,
                content_type,
                None,
                reasons,
                &meta,
            )
            .await
            .into_response()
        }
    };
    let (bytes, items) = match app
        .read_json(Expected::Transaction, &headers, body, limit, &meta)
        .await
    {
        Ok((bytes, Value::Array(items))) => (bytes, items),
        Ok((bytes, _)) => {
            let message = "a batch is a JSON array".to_owned();
            return refuse_whole(bytes, FieldReason::WrongType, message).await;
        }
        Err(problem) => return problem.into_response(),
    };
    let max = app.settings.batch_max_items;
    if items.len() > max {
        let message = format!("{} items; at most {max} per batch", items.len());
        return refuse_whole(bytes, FieldReason::BatchTooLarge, message).await;
    }

    // The whole batch is taken or refused at the door: a client told 503
    // retries it whole (repeats are answered from memory), and nothing is
    // parsed or loaded for a batch that cannot be decided now.
    let _admitted = match app.ingest.admit(items.len()) {
        Ok(admitted) => admitted,
        Err(e) => return problem_of(e).into_response(),
    };
    let ctx = app.parse_context();
    let parsed: Vec<_> = items
        .iter()
        .map(|item| parse_transaction(item, &ctx))
        .collect();
    app.ingest
        .preload(parsed.iter().filter_map(|p| p.as_ref().ok()))
        .await;
    let results = join_all(
        items
            .iter()
            .zip(parsed)
            .enumerate()
            .map(|(index, (item, parsed))| {
                let (app, meta) = (app.clone(), meta.clone());
                let span = tracing::info_span!(
                    "ingest_item",
                    index,
                    transaction_id = tracing::field::Empty,
                    customer_id = tracing::field::Empty,
                );
                if let Ok(tx) = &parsed {
                    record_ids(&span, tx);
                }
                async move {
                    let response = match parsed {
                        Ok(tx) => app.record_admitted(tx, &meta).await,
                        Err(reasons) => {
                            let raw = item.to_string();
                            Err(app
                                .refuse(
                                    Expected::Transaction,
                                    raw.as_bytes(),
                                    content_type,
                                    Some(index as u32),
                                    reasons,
                                    &meta,
                                )
                                .await)
                        }
                    };
                    match response {
                        Ok(outcome) => {
                            let (status, answer) = include.answer(outcome);
                            ItemResult {
                                index,
                                status: status.as_u16(),
                                answer: Some(answer),
                                problem: None,
                            }
                        }
                        Err(p) => ItemResult {
                            index,
                            status: p.status,
                            answer: None,
                            problem: Some(p),
                        },
                    }
                }
                .instrument(span)
            }),
    )
    .await;
    (StatusCode::OK, Json(BatchAnswer { results })).into_response()
}

impl App {
    /// Decides and records, as an HTTP outcome.
    async fn record(&self, tx: Transaction, meta: &RequestMeta) -> Result<Outcome, Problem> {
        self.ingest.record(tx, meta).await.map_err(problem_of)
    }

    /// The same for an item of a batch admitted whole.
    async fn record_admitted(
        &self,
        tx: Transaction,
        meta: &RequestMeta,
    ) -> Result<Outcome, Problem> {
        self.ingest
            .record_admitted(tx, meta)
            .await
            .map_err(problem_of)
    }
}

/// The answer to an ingest error.
fn problem_of(e: IngestError) -> Problem {
    match e {
        IngestError::Conflict(id) => Problem::new(
            StatusCode::CONFLICT,
            "transaction-conflict",
            "Transaction id reused",
        )
        .detail(format!(
            "transaction {id} was already recorded with a different payload"
        )),
        IngestError::Overloaded => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "At capacity")
                .detail("too many transactions in flight; retry shortly")
                .retry_after(1)
        }
        IngestError::Store(detail) => store_unavailable(&detail),
    }
}
