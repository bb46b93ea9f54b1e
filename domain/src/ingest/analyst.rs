//! Parsing of the analysts' inputs: an alert resolution
//! `{verdict, analyst, note}` and a fraud label `{transaction_id, is_fraud,
//! source}`. Same rules as transactions: every failing field at once.

use super::errors::{FieldError, FieldReason, WHOLE_BODY};
use super::fields::{Report, boolean, enum_value, json_type, present, required, text};
use crate::events::{AlertResolved, TransactionLabeled, Verdict};
use crate::ids::{AlertId, TransactionId};
use crate::text::{Analyst, LabelSource, Note};
use serde_json::{Map, Value};

fn body_object(body: &Value) -> Result<&Map<String, Value>, Vec<FieldError>> {
    body.as_object().ok_or_else(|| {
        vec![FieldError::new(
            WHOLE_BODY,
            FieldReason::WrongType,
            format!("the body must be a JSON object, not {}", json_type(body)),
        )]
    })
}

/// `POST /v1/alerts/{id}/resolution`: the alert id comes from the path.
pub fn parse_resolution(alert_id: AlertId, body: &Value) -> Result<AlertResolved, Vec<FieldError>> {
    let obj = body_object(body)?;
    let mut report = Report::default();
    let verdict = required(&mut report, obj, "verdict", "verdict")
        .and_then(|v| enum_value(&mut report, v, "verdict", Verdict::parse, Verdict::ALLOWED));
    let analyst = required(&mut report, obj, "analyst", "analyst")
        .and_then(|v| text(&mut report, v, "analyst", Analyst::parse));
    let note = present(obj, "note").map(|v| text(&mut report, v, "note", Note::parse));
    let resolved = match (verdict, analyst, note) {
        (Some(verdict), Some(analyst), None) => Some(AlertResolved {
            alert_id,
            verdict,
            analyst,
            note: None,
        }),
        (Some(verdict), Some(analyst), Some(Some(note))) => Some(AlertResolved {
            alert_id,
            verdict,
            analyst,
            note: Some(note),
        }),
        _ => None,
    };
    report.finish(resolved)
}

/// `POST /v1/labels`: a fraud label (chargeback, confirmed fraud) for a
/// transaction, used by `fraudctl eval` and the merchant-risk projection.
pub fn parse_label(body: &Value) -> Result<TransactionLabeled, Vec<FieldError>> {
    let obj = body_object(body)?;
    let mut report = Report::default();
    let transaction_id =
        required(&mut report, obj, "transaction_id", "transaction_id").and_then(|v| {
            let parsed = v.as_str().and_then(|s| TransactionId::parse(s).ok());
            if parsed.is_none() {
                report.fail(
                    "transaction_id",
                    FieldReason::InvalidId,
                    "transaction_id must be 1..=64 characters of [A-Za-z0-9._:-]",
                );
            }
            parsed
        });
    let is_fraud = required(&mut report, obj, "is_fraud", "is_fraud")
        .and_then(|v| boolean(&mut report, v, "is_fraud"));
    let source = required(&mut report, obj, "source", "source")
        .and_then(|v| text(&mut report, v, "source", LabelSource::parse));
    let label = match (transaction_id, is_fraud, source) {
        (Some(transaction_id), Some(is_fraud), Some(source)) => Some(TransactionLabeled {
            transaction_id,
            is_fraud,
            source,
        }),
        _ => None,
    };
    report.finish(label)
}
