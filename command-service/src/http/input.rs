//! What every POST with a JSON body shares: reading the body within a size
//! limit, checking that it is JSON, and refusing what cannot be accepted.
//!
//! A refusal is never silent: the input is appended whole, with every
//! reason, to the `quarantine` stream, and the client gets a problem answer
//! naming every failing field and the quarantine id.

use super::app::App;
use super::problem::Problem;
use crate::ingest::RequestMeta;
use crate::ingest::quarantine::Rejected;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use domain::ingest::{FieldError, FieldReason, WHOLE_BODY};
use serde_json::Value;

/// What a body was meant to be; names the 422 problem of a refused one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Transaction,
    Acknowledgement,
    Resolution,
    Label,
}

impl App {
    /// The body parsed as JSON; or, if it is too large, not JSON-typed or
    /// not JSON, the problem answer for it (the input already quarantined).
    pub async fn read_json(
        &self,
        expected: Expected,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
        meta: &RequestMeta,
    ) -> Result<(Bytes, Value), Problem> {
        let content_type = content_type(headers);
        let bytes = match read_json_body(headers, body, limit).await {
            Ok(bytes) => bytes,
            Err((bytes, reasons)) => {
                return Err(self
                    .refuse(expected, &bytes, content_type, None, reasons, meta)
                    .await);
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok((bytes, value)),
            Err(e) => {
                let reasons = vec![FieldError::new(
                    WHOLE_BODY,
                    FieldReason::MalformedJson,
                    e.to_string(),
                )];
                Err(self
                    .refuse(expected, &bytes, content_type, None, reasons, meta)
                    .await)
            }
        }
    }

    /// Quarantines refused input and builds its problem answer.
    pub async fn refuse(
        &self,
        expected: Expected,
        body: &[u8],
        content_type: Option<&str>,
        batch_index: Option<u32>,
        reasons: Vec<FieldError>,
        meta: &RequestMeta,
    ) -> Problem {
        let problem = invalid_input(expected, &reasons);
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

/// `Problem::invalid_input`, with the 422 named after what was expected
/// (the other statuses are about the body as a whole, whatever it was for).
fn invalid_input(expected: Expected, reasons: &[FieldError]) -> Problem {
    let mut problem = Problem::invalid_input(reasons);
    if problem.status_code() == StatusCode::UNPROCESSABLE_ENTITY {
        let (kind, title) = match expected {
            Expected::Transaction => return problem,
            Expected::Acknowledgement => (
                "invalid-acknowledgement",
                "The acknowledgement is not valid",
            ),
            Expected::Resolution => ("invalid-resolution", "The resolution is not valid"),
            Expected::Label => ("invalid-label", "The label is not valid"),
        };
        problem.kind = format!("/problems/{kind}");
        problem.title = title.to_owned();
    }
    problem
}

pub fn content_type(headers: &HeaderMap) -> Option<&str> {
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
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/vnd.sentinel+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/jsonp")));
        assert!(!is_json(None));
    }

    #[test]
    fn a_refused_analyst_input_is_named_so() {
        let missing = [FieldError::new(
            "verdict",
            FieldReason::MissingField,
            "verdict is required",
        )];
        let kind = |e| invalid_input(e, &missing).kind;
        assert_eq!(kind(Expected::Transaction), "/problems/invalid-transaction");
        assert_eq!(
            kind(Expected::Acknowledgement),
            "/problems/invalid-acknowledgement"
        );
        assert_eq!(kind(Expected::Resolution), "/problems/invalid-resolution");
        assert_eq!(kind(Expected::Label), "/problems/invalid-label");
        let not_json = [FieldError::new(WHOLE_BODY, FieldReason::MalformedJson, "x")];
        assert_eq!(
            invalid_input(Expected::Label, &not_json).kind,
            "/problems/malformed-json"
        );
    }
}
