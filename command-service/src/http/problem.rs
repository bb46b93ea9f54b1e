//! The one error type of the HTTP API: RFC 9457 `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::ids::QuarantineId;
use domain::ingest::FieldError;
use serde::Serialize;

/// A problem answer. `type` is a relative URI naming the kind of problem.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every failing field, for input that was refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Where the refused input was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub quarantine_id: Option<QuarantineId>,
    #[serde(skip)]
    pub retry_after_secs: Option<u32>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub reason: String,
    pub message: String,
}

impl From<&FieldError> for ProblemField {
    fn from(e: &FieldError) -> Self {
        ProblemField {
            field: e.field.clone(),
            reason: e.reason.code().to_owned(),
            message: e.message.clone(),
        }
    }
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            quarantine_id: None,
            retry_after_secs: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn fields(mut self, errors: &[FieldError]) -> Self {
        self.errors = errors.iter().map(ProblemField::from).collect();
        self
    }

    pub fn quarantined(mut self, id: Option<QuarantineId>) -> Self {
        self.quarantine_id = id;
        self
    }

    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Refused input: 400 for a body that is not JSON, 413 for one too
    /// large, 415 for the wrong content type, 404 for a label of an unknown
    /// transaction, 422 for JSON that is not a valid transaction.
    pub fn invalid_input(errors: &[FieldError]) -> Self {
        use domain::ingest::FieldReason::*;
        let (status, kind, title) = match errors.first().map(|e| e.reason) {
            Some(MalformedJson) => (
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not valid JSON",
            ),
            Some(BodyTooLarge) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The body is over the size limit",
            ),
            Some(BatchTooLarge) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch-too-large",
                "The batch has too many items",
            ),
            Some(UnsupportedMediaType) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Send application/json",
            ),
            Some(UnknownTransaction) => (
                StatusCode::NOT_FOUND,
                "unknown-transaction",
                "No such transaction",
            ),
            _ => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-transaction",
                "The transaction is not valid",
            ),
        };
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Problem::new(status, kind, title)
            .detail(detail)
            .fields(errors)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry = self.retry_after_secs;
        let mut response = (status, axum::Json(&self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
/// The answer when the event store fails: 503, worth a retry.
pub fn store_unavailable(detail: &dyn std::fmt::Display) -> Problem {
    tracing::error!(%detail, "event store unavailable");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store-unavailable",
        "The event store is unavailable",
    )
    .retry_after(2)
}
