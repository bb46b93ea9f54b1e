//! `POST /v1/transactions` and `POST /v1/transactions/batch`.
//!
//! Each request is read with a size limit, checked for a JSON content type,
//! parsed as JSON, then as a transaction (every failing field at once), and
//! handed to the ingest. Whatever is refused is quarantined with its reasons.

use super::{AppState, request_meta};
use crate::http::problem::Problem;
use crate::ingest::quarantine::Rejected;
use crate::ingest::{IngestError, Outcome, RequestMeta};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Transaction;
use domain::ingest::{FieldError, FieldReason, WHOLE_BODY, parse_transaction};
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;

pub async fn post_one(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let meta = request_meta(&headers);
    let content_type = content_type(&headers);
    let bytes = match read_json_body(&headers, body, app.settings.body_limit_bytes).await {
        Ok(bytes) => bytes,
        Err((bytes, reasons)) => {
            return app
                .refuse(&bytes, content_type, None, reasons, &meta)
                .await
                .into_response();
        }
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let reasons = vec![FieldError::new(
                WHOLE_BODY,
                FieldReason::MalformedJson,
                e.to_string(),
            )];
            return app
                .refuse(&bytes, content_type, None, reasons, &meta)
                .await
                .into_response();
        }
    };
    match parse_transaction(&value, &app.parse_context()) {
        Ok(tx) => answer(app.record(tx, &meta).await),
        Err(reasons) => app
            .refuse(&bytes, content_type, None, reasons, &meta)
            .await
            .into_response(),
    }
}

/// One item's answer in a batch.
#[derive(Serialize)]
pub struct ItemResult {
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<crate::ingest::answer::Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Serialize)]
pub struct BatchAnswer {
    pub results: Vec<ItemResult>,
}

pub async fn post_batch(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let meta = request_meta(&headers);
    let content_type = content_type(&headers);
    let bytes = match read_json_body(&headers, body, app.settings.batch_body_limit_bytes).await {
        Ok(bytes) => bytes,
        Err((bytes, reasons)) => {
            return app
                .refuse(&bytes, content_type, None, reasons, &meta)
                .await
                .into_response();
        }
    };
    let items = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            let reasons = vec![FieldError::new(
                WHOLE_BODY,
                FieldReason::WrongType,
                "a batch is a JSON array",
            )];
            return app
                .refuse(&bytes, content_type, None, reasons, &meta)
                .await
                .into_response();
        }
        Err(e) => {
            let reasons = vec![FieldError::new(
                WHOLE_BODY,
                FieldReason::MalformedJson,
                e.to_string(),
            )];
            return app
                .refuse(&bytes, content_type, None, reasons, &meta)
                .await
                .into_response();
        }
    };
    if items.len() > app.settings.batch_max_items {
        let reasons = vec![FieldError::new(
            WHOLE_BODY,
            FieldReason::BatchTooLarge,
            format!(
                "{} items; at most {} per batch",
                items.len(),
                app.settings.batch_max_items
            ),
        )];
        return app
            .refuse(&bytes, content_type, None, reasons, &meta)
            .await
            .into_response();
    }

    let ctx = app.parse_context();
    let results = join_all(items.iter().enumerate().map(|(index, item)| {
        let (app, meta) = (app.clone(), meta.clone());
        let parsed = parse_transaction(item, &ctx);
        async move {
            let response = match parsed {
                Ok(tx) => app.record(tx, &meta).await,
                Err(reasons) => {
                    let raw = item.to_string();
                    Err(app
                        .refuse(
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
                Ok(Outcome::Recorded(a)) => ItemResult {
                    index,
                    status: 201,
                    answer: Some(a),
                    problem: None,
                },
                Ok(Outcome::Repeated(a)) => ItemResult {
                    index,
                    status: 200,
                    answer: Some(a),
                    problem: None,
                },
                Err(p) => ItemResult {
                    index,
                    status: p.status,
                    answer: None,
                    problem: Some(p),
                },
            }
        }
    }))
    .await;
    (StatusCode::OK, Json(BatchAnswer { results })).into_response()
}

impl super::App {
    /// Decides and records, as an HTTP outcome.
    async fn record(&self, tx: Transaction, meta: &RequestMeta) -> Result<Outcome, Problem> {
        self.ingest.record(tx, meta).await.map_err(|e| match e {
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
            IngestError::Store(detail) => {
                tracing::error!(%detail, "event store unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "The event store is unavailable",
                )
                .retry_after(2)
            }
        })
    }

    /// Quarantines refused input and builds its problem answer.
    async fn refuse(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        batch_index: Option<u32>,
        reasons: Vec<FieldError>,
        meta: &RequestMeta,
    ) -> Problem {
        let problem = Problem::invalid_input(&reasons);
        let rejected = Rejected {
            body,
            content_type,
            batch_index,
            reasons,
        };
        match self.quarantine.record(rejected, meta.metadata()).await {
            Ok(id) => problem.quarantined(Some(id)),
            Err(error) => {
                tracing::error!(%error, "could not quarantine refused input");
                problem
            }
        }
    }
}

fn answer(outcome: Result<Outcome, Problem>) -> Response {
    match outcome {
        Ok(Outcome::Recorded(a)) => (StatusCode::CREATED, Json(a)).into_response(),
        Ok(Outcome::Repeated(a)) => (StatusCode::OK, Json(a)).into_response(),
        Err(p) => p.into_response(),
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// `application/json`, `application/json; charset=utf-8`, `application/x+json`.
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    })
}

/// The body, if it is JSON-typed and within `limit`; otherwise what was read
/// of it and why it is refused.
async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, (Bytes, Vec<FieldError>)> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = |size: String| {
        vec![FieldError::new(
            WHOLE_BODY,
            FieldReason::BodyTooLarge,
            format!("{size}; the limit is {limit} bytes"),
        )]
    };
    if let Some(n) = declared.filter(|&n| n > limit) {
        return Err((Bytes::new(), too_large(format!("{n} bytes"))));
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| (Bytes::new(), too_large("over the limit".into())))?;
    if !is_json(content_type(headers)) {
        let got = content_type(headers)
            .unwrap_or("no content type")
            .to_owned();
        let reasons = vec![FieldError::new(
            WHOLE_BODY,
            FieldReason::UnsupportedMediaType,
            format!("{got}; send application/json"),
        )];
        return Err((bytes, reasons));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/vnd.sentinel+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/jsonp")));
        assert!(!is_json(None));
    }
}
