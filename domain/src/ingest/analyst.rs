//! Parsing of the analysts' inputs: an alert acknowledgement `{analyst,
//! note}`, an alert resolution `{verdict, analyst, note}` and a fraud label
//! `{transaction_id, is_fraud, source}`. Same rules as transactions: every
//! failing field at once.

use super::errors::{FieldError, FieldReason, WHOLE_BODY};
use super::fields::{Report, boolean, enum_value, json_type, present, required, text};
use crate::events::{AlertAcknowledged, AlertResolved, TransactionLabeled, Verdict};
use crate::ids::{AlertId, CustomerId, TransactionId};
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

/// Who acts on an alert and why: `analyst` (required) and `note` (optional),
/// shared by every step of an alert's lifecycle. `None` when either failed
/// (the report says why); a note that is absent or `null` is `Some((_, None))`.
fn analyst_and_note(
    report: &mut Report,
    obj: &Map<String, Value>,
) -> Option<(Analyst, Option<Note>)> {
    let analyst = required(report, obj, "analyst", "analyst")
        .and_then(|v| text(report, v, "analyst", Analyst::parse));
    // Outer `None`: no note; `Some(None)`: a note that failed.
    let note = present(obj, "note").map(|v| text(report, v, "note", Note::parse));
    match (analyst, note) {
        (Some(analyst), None) => Some((analyst, None)),
        (Some(analyst), Some(Some(note))) => Some((analyst, Some(note))),
        _ => None,
    }
}

/// `POST /v1/alerts/{id}/acknowledgement`: the alert id comes from the path.
pub fn parse_acknowledgement(
    alert_id: AlertId,
    body: &Value,
) -> Result<AlertAcknowledged, Vec<FieldError>> {
    let obj = body_object(body)?;
    let mut report = Report::default();
    let acknowledged =
        analyst_and_note(&mut report, obj).map(|(analyst, note)| AlertAcknowledged {
            alert_id,
            analyst,
            note,
        });
    report.finish(acknowledged)
}

/// `POST /v1/alerts/{id}/resolution`: the alert id comes from the path.
pub fn parse_resolution(alert_id: AlertId, body: &Value) -> Result<AlertResolved, Vec<FieldError>> {
    let obj = body_object(body)?;
    let mut report = Report::default();
    let verdict = required(&mut report, obj, "verdict", "verdict")
        .and_then(|v| enum_value(&mut report, v, "verdict", Verdict::parse, Verdict::ALLOWED));
    let who = analyst_and_note(&mut report, obj);
    let resolved = match (verdict, who) {
        (Some(verdict), Some((analyst, note))) => Some(AlertResolved {
            alert_id,
            verdict,
            analyst,
            note,
        }),
        _ => None,
    };
    report.finish(resolved)
}

/// `POST /v1/labels`: a fraud label (chargeback, confirmed fraud) for a
/// transaction, used by `fraudctl eval` and the merchant-risk projection.
pub fn parse_label(body: &Value) -> Result<TransactionLabeled, Vec<FieldError>> {
    parse_label_item(body).map(|item| item.label)
}

/// A label as a client sends it (`POST /v1/labels` and each item of
/// `/v1/labels/batch`): the label, and optionally the transaction's
/// customer, which lets the command side find a transaction it no longer
/// remembers by id in that customer's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelItem {
    pub label: TransactionLabeled,
    pub customer_id: Option<CustomerId>,
}

/// `{transaction_id, is_fraud, source, customer_id?}`, every failing field
/// at once.
pub fn parse_label_item(body: &Value) -> Result<LabelItem, Vec<FieldError>> {
    let obj = body_object(body)?;
    let mut report = Report::default();
    let transaction_id = required(&mut report, obj, "transaction_id", "transaction_id")
        .and_then(|v| id(&mut report, v, "transaction_id", TransactionId::parse));
    let is_fraud = required(&mut report, obj, "is_fraud", "is_fraud")
        .and_then(|v| boolean(&mut report, v, "is_fraud"));
    let source = required(&mut report, obj, "source", "source")
        .and_then(|v| text(&mut report, v, "source", LabelSource::parse));
    // Outer `None`: absent; `Some(None)`: sent but not valid.
    let customer_id =
        present(obj, "customer_id").map(|v| id(&mut report, v, "customer_id", CustomerId::parse));
    let item = match (transaction_id, is_fraud, source, customer_id) {
        (Some(transaction_id), Some(is_fraud), Some(source), customer_id)
            if !matches!(customer_id, Some(None)) =>
        {
            Some(LabelItem {
                label: TransactionLabeled::new(transaction_id, is_fraud, source),
                customer_id: customer_id.flatten(),
            })
        }
        _ => None,
    };
    report.finish(item)
}

/// An id field: a string of 1..=64 characters of `[A-Za-z0-9._:-]`.
fn id<T, E>(
    report: &mut Report,
    value: &Value,
    field: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Option<T> {
    let parsed = value.as_str().and_then(|s| parse(s).ok());
    if parsed.is_none() {
        report.fail(
            field,
            FieldReason::InvalidId,
            format!("{field} must be 1..=64 characters of [A-Za-z0-9._:-]"),
        );
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    const ALERT: AlertId = AlertId(Uuid::from_u128(7));

    fn failures(errors: &[FieldError]) -> Vec<(&str, FieldReason)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason))
            .collect()
    }

    #[test]
    fn an_acknowledgement_takes_an_analyst_and_an_optional_note() {
        let with_note =
            parse_acknowledgement(ALERT, &json!({"analyst": "ana", "note": "looking into it"}))
                .expect("valid");
        assert_eq!(with_note.alert_id, ALERT);
        assert_eq!(with_note.analyst.as_str(), "ana");
        assert_eq!(
            with_note.note.as_ref().map(Note::as_str),
            Some("looking into it")
        );
        // No note, or a null one, is no note.
        for body in [
            json!({"analyst": "ana"}),
            json!({"analyst": "ana", "note": null}),
        ] {
            let parsed = parse_acknowledgement(ALERT, &body).expect("valid");
            assert!(parsed.note.is_none(), "{body}");
        }
        // A verdict is not an acknowledgement's business; it is ignored.
        let extra = json!({"analyst": "ana", "verdict": "maybe"});
        assert!(parse_acknowledgement(ALERT, &extra).is_ok());
    }

    #[test]
    fn an_invalid_acknowledgement_names_every_field() {
        let errors = parse_acknowledgement(ALERT, &json!({"note": 3})).expect_err("invalid");
        assert_eq!(
            failures(&errors),
            [
                ("analyst", FieldReason::MissingField),
                ("note", FieldReason::WrongType)
            ]
        );
        let errors = parse_acknowledgement(ALERT, &json!({"analyst": 5})).expect_err("invalid");
        assert_eq!(failures(&errors), [("analyst", FieldReason::WrongType)]);
        // A valid analyst does not hide a bad note.
        let errors =
            parse_acknowledgement(ALERT, &json!({"analyst": "ana", "note": []})).expect_err("bad");
        assert_eq!(failures(&errors), [("note", FieldReason::WrongType)]);
    }

    #[test]
    fn an_acknowledgement_body_must_be_an_object() {
        for body in [json!([]), json!("ana"), json!(null), json!(1)] {
            let errors = parse_acknowledgement(ALERT, &body).expect_err("not an object");
            assert_eq!(
                failures(&errors),
                [(WHOLE_BODY, FieldReason::WrongType)],
                "{body}"
            );
        }
    }

    #[test]
    fn a_resolution_still_names_its_fields_in_order() {
        let errors =
            parse_resolution(ALERT, &json!({"verdict": "maybe", "note": 3})).expect_err("invalid");
        assert_eq!(
            failures(&errors),
            [
                ("verdict", FieldReason::UnknownEnumValue),
                ("analyst", FieldReason::MissingField),
                ("note", FieldReason::WrongType)
            ]
        );
        let ok = parse_resolution(
            ALERT,
            &json!({"verdict": "false_positive", "analyst": "bo"}),
        )
        .expect("valid");
        assert_eq!((ok.verdict, ok.note), (Verdict::FalsePositive, None));
    }

    #[test]
    fn a_label_item_may_name_its_customer() {
        let item = parse_label_item(
            &json!({"transaction_id": "t1", "is_fraud": true, "source": "chargeback", "customer_id": "c-1"}),
        )
        .expect("valid");
        assert_eq!(item.customer_id.as_ref().map(|c| c.as_str()), Some("c-1"));
        assert!(item.label.is_fraud);
        let without =
            parse_label_item(&json!({"transaction_id": "t1", "is_fraud": false, "source": "x"}))
                .expect("valid");
        assert_eq!(without.customer_id, None);
        let bad = parse_label_item(
            &json!({"transaction_id": "t1", "is_fraud": true, "source": "x", "customer_id": "a b"}),
        )
        .expect_err("invalid");
        assert_eq!(failures(&bad), [("customer_id", FieldReason::InvalidId)]);
    }
}
