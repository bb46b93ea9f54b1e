//! parse_transaction: schema v1 and v2, the customer_id alias, and every
//! reason, all reported at once.

use chrono::{Duration, TimeZone, Utc};
use domain::ids::AlertId;
use domain::ingest::{
    FieldReason, ParseContext, WHOLE_BODY, parse_label, parse_resolution, parse_transaction,
};
use domain::money::Currency;
use domain::transaction::{DeviceType, InputSchema, PaymentMethod, TransactionType};
use serde_json::{Value, json};
use uuid::Uuid;

pub fn ctx() -> ParseContext {
    ParseContext {
        now: Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0).unwrap(),
        max_future_skew: Duration::minutes(5),
        default_currency: Currency::parse("EUR").unwrap(),
    }
}

pub fn v2_body() -> Value {
    json!({
        "transaction_id": "tx-100",
        "timestamp": "2025-03-03T11:59:00+01:00",
        "user_id": "c-42",
        "merchant_id": "m-7",
        "amount": 129.99,
        "currency": "USD",
        "transaction_type": "purchase",
        "payment_method": "debit_card",
        "merchant_category": "Electronics",
        "location": {
            "city": "Springfield", "state": "IL", "country": "US",
            "coordinates": [39.78, -89.65]
        },
        "device_info": {"device_type": "pos", "ip_address": "203.0.113.7", "user_agent": "Terminal/1.0"},
        "risk_score": 0.99,
        "is_fraud": true
    })
}

/// The (field, reason) pairs of a failed parse, in order.
fn reasons(body: &Value) -> Vec<(String, FieldReason)> {
    match parse_transaction(body, &ctx()) {
        Ok(tx) => panic!("expected errors, parsed {tx:?}"),
        Err(errors) => errors.into_iter().map(|e| (e.field, e.reason)).collect(),
    }
}

fn with(mut body: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut body;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
    body
}

fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().unwrap().remove(key);
    body
}

fn one(body: Value, field: &str, reason: FieldReason) {
    assert_eq!(reasons(&body), [(field.to_owned(), reason)], "{body}");
}

#[test]
fn parses_a_full_v2_body_and_ignores_client_scores() {
    let tx = parse_transaction(&v2_body(), &ctx()).unwrap();
    assert_eq!(tx.input_schema, InputSchema::V2);
    assert_eq!(tx.customer_id.as_str(), "c-42");
    assert_eq!(
        tx.timestamp,
        Utc.with_ymd_and_hms(2025, 3, 3, 10, 59, 0).unwrap()
    );
    assert_eq!(tx.amount.thousandths(), 129_990);
    assert_eq!(tx.currency.map(|c| c.code()), Some("USD"));
    assert_eq!(tx.transaction_type, Some(TransactionType::Purchase));
    assert_eq!(tx.payment_method, Some(PaymentMethod::DebitCard));
    assert_eq!(
        tx.merchant_category.as_ref().map(|c| c.as_str()),
        Some("electronics")
    );
    let location = tx.location.as_ref().unwrap();
    assert_eq!(
        (location.country.as_str(), location.coordinates.lat()),
        ("US", 39.78)
    );
    let device = tx.device_info.as_ref().unwrap();
    assert_eq!(device.device_type, DeviceType::Pos);
    assert_eq!(
        device.ip_address.map(|ip| ip.to_string()).as_deref(),
        Some("203.0.113.7")
    );
    assert!(tx.is_card_present());
}

#[test]
fn customer_id_is_an_alias_of_user_id() {
    let body = with(
        without(v2_body(), "user_id"),
        &["customer_id"],
        json!("c-42"),
    );
    assert_eq!(
        parse_transaction(&body, &ctx())
            .unwrap()
            .customer_id
            .as_str(),
        "c-42"
    );
    let both = with(v2_body(), &["customer_id"], json!("c-42"));
    assert!(parse_transaction(&both, &ctx()).is_ok());
    let clash = with(v2_body(), &["customer_id"], json!("c-43"));
    one(clash, "customer_id", FieldReason::ConflictingFields);
}

#[test]
fn parses_schema_v1_with_the_default_currency() {
    let body = json!({"transaction_id": "t1", "customer_id": "c1", "amount": 10, "timestamp": "2025-03-03T11:00:00Z"});
    let tx = parse_transaction(&body, &ctx()).unwrap();
    assert_eq!(tx.input_schema, InputSchema::V1);
    assert_eq!(tx.currency.map(|c| c.code()), Some("EUR"));
    assert!(tx.location.is_none() && tx.device_info.is_none() && tx.transaction_type.is_none());
}

#[test]
fn an_empty_object_is_a_v1_body_missing_its_four_fields() {
    let got = reasons(&json!({}));
    let fields: Vec<_> = got.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["transaction_id", "customer_id", "timestamp", "amount"]
    );
    assert!(got.iter().all(|(_, r)| *r == FieldReason::MissingField));
}

#[test]
fn a_v2_body_must_have_every_v2_field() {
    let body = json!({"transaction_id": "t1", "user_id": "c1", "amount": 10,
                      "timestamp": "2025-03-03T11:00:00Z", "currency": "USD"});
    let fields: Vec<_> = reasons(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "merchant_id",
            "merchant_category",
            "transaction_type",
            "payment_method",
            "location",
            "device_info"
        ]
    );
    let nested = with(
        with(v2_body(), &["location"], json!({})),
        &["device_info"],
        json!({}),
    );
    let fields: Vec<_> = reasons(&nested).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "location.city",
            "location.country",
            "location.coordinates",
            "device_info.device_type"
        ]
    );
}

#[test]
fn null_counts_as_missing_and_optional_fields_may_be_absent() {
    one(
        with(v2_body(), &["merchant_id"], Value::Null),
        "merchant_id",
        FieldReason::MissingField,
    );
    let mut body = v2_body();
    body["location"].as_object_mut().unwrap().remove("state");
    body["device_info"] = json!({"device_type": "web", "ip_address": null});
    assert!(parse_transaction(&body, &ctx()).is_ok());
}

#[test]
fn a_web_or_mobile_transaction_may_leave_out_its_place() {
    for device in ["web", "mobile"] {
        for kind in ["purchase", "refund"] {
            let located = with(
                with(v2_body(), &["device_info", "device_type"], json!(device)),
                &["transaction_type"],
                json!(kind),
            );
            // Absent or null: the same (null counts as absent everywhere).
            for body in [
                without(located.clone(), "location"),
                with(located, &["location"], Value::Null),
            ] {
                let tx = parse_transaction(&body, &ctx()).unwrap();
                assert_eq!(tx.input_schema, InputSchema::V2, "{body}");
                assert!(tx.location.is_none(), "{body}");
                assert!(!tx.is_card_present(), "{body}");
                assert_eq!(tx.device_info.map(|d| d.device_type.as_str()), Some(device));
            }
        }
    }
}

#[test]
fn a_place_that_is_sent_is_read_in_full_whatever_the_device() {
    let web = with(v2_body(), &["device_info", "device_type"], json!("web"));
    let fields: Vec<_> = reasons(&with(web.clone(), &["location"], json!({"city": "X"})))
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, ["location.country", "location.coordinates"]);
    one(
        with(web, &["location"], json!("Springfield")),
        "location",
        FieldReason::WrongType,
    );
}

#[test]
fn a_card_present_transaction_must_say_where_it_happened() {
    use FieldReason::*;
    let nowhere = || without(v2_body(), "location");
    // At a POS terminal,
    one(nowhere(), "location", MissingField);
    // a cash withdrawal, even one started from a phone (the cash comes out
    // of an ATM),
    one(
        with(
            with(nowhere(), &["device_info", "device_type"], json!("mobile")),
            &["transaction_type"],
            json!("withdrawal"),
        ),
        "location",
        MissingField,
    );
    // without a device, or with one we do not know, both are named,
    assert_eq!(
        reasons(&without(nowhere(), "device_info")),
        [
            ("location".to_owned(), MissingField),
            ("device_info".to_owned(), MissingField)
        ]
    );
    assert_eq!(
        reasons(&with(
            nowhere(),
            &["device_info", "device_type"],
            json!("kiosk")
        )),
        [
            ("location".to_owned(), MissingField),
            ("device_info.device_type".to_owned(), UnknownEnumValue)
        ]
    );
    // and the message says when the place may be left out.
    let errors = parse_transaction(&nowhere(), &ctx()).unwrap_err();
    assert!(
        errors[0].message.contains("web or mobile"),
        "{}",
        errors[0].message
    );
}

#[test]
fn each_reason_names_its_field() {
    use FieldReason::*;
    let b = v2_body;
    one(
        with(b(), &["amount"], json!(0)),
        "amount",
        AmountNotPositive,
    );
    one(
        with(b(), &["amount"], json!(-3.5)),
        "amount",
        AmountNotPositive,
    );
    one(
        with(b(), &["amount"], json!("NaN")),
        "amount",
        AmountNotFinite,
    );
    one(
        with(b(), &["amount"], json!("-inf")),
        "amount",
        AmountNotFinite,
    );
    one(
        with(b(), &["amount"], json!(2e12)),
        "amount",
        AmountTooLarge,
    );
    one(with(b(), &["amount"], json!(true)), "amount", WrongType);
    one(
        with(b(), &["currency"], json!("XYZ")),
        "currency",
        UnknownCurrency,
    );
    one(with(b(), &["currency"], json!(840)), "currency", WrongType);
    one(
        with(b(), &["timestamp"], json!("yesterday")),
        "timestamp",
        InvalidTimestamp,
    );
    one(
        with(b(), &["timestamp"], json!("2025-03-03 11:00:00")),
        "timestamp",
        InvalidTimestamp,
    );
    one(
        with(b(), &["timestamp"], json!("2025-03-03T12:05:01Z")),
        "timestamp",
        TimestampInFuture,
    );
    one(
        with(b(), &["transaction_type"], json!("transfer")),
        "transaction_type",
        UnknownEnumValue,
    );
    one(
        with(b(), &["payment_method"], json!("cash")),
        "payment_method",
        UnknownEnumValue,
    );
    one(
        with(b(), &["device_info", "device_type"], json!("kiosk")),
        "device_info.device_type",
        UnknownEnumValue,
    );
    one(
        with(b(), &["location", "coordinates"], json!([91, 0])),
        "location.coordinates",
        LatitudeOutOfRange,
    );
    one(
        with(b(), &["location", "coordinates"], json!([0, -181])),
        "location.coordinates",
        LongitudeOutOfRange,
    );
    one(
        with(b(), &["location", "coordinates"], json!([1])),
        "location.coordinates",
        InvalidCoordinates,
    );
    one(
        with(b(), &["location", "coordinates"], json!({"lat": 1})),
        "location.coordinates",
        InvalidCoordinates,
    );
    one(
        with(b(), &["location", "country"], json!("USA")),
        "location.country",
        InvalidCountryCode,
    );
    one(
        with(b(), &["location", "country"], json!("QQ")),
        "location.country",
        InvalidCountryCode,
    );
    one(
        with(b(), &["location"], json!("Springfield")),
        "location",
        WrongType,
    );
    one(
        with(b(), &["transaction_id"], json!("has space")),
        "transaction_id",
        InvalidId,
    );
    one(
        with(b(), &["transaction_id"], json!("")),
        "transaction_id",
        InvalidId,
    );
    one(
        with(b(), &["user_id"], json!("x".repeat(65))),
        "user_id",
        TooLong,
    );
    one(
        with(b(), &["merchant_id"], json!("m/1")),
        "merchant_id",
        InvalidId,
    );
    one(
        with(b(), &["merchant_category"], json!(" ")),
        "merchant_category",
        InvalidValue,
    );
    one(
        with(b(), &["device_info", "ip_address"], json!("999.1.1.1")),
        "device_info.ip_address",
        InvalidIpAddress,
    );
    one(
        with(b(), &["device_info", "user_agent"], json!("u".repeat(513))),
        "device_info.user_agent",
        TooLong,
    );
    one(
        with(b(), &["schema_version"], json!(3)),
        "schema_version",
        UnsupportedSchemaVersion,
    );
}

#[test]
fn both_coordinates_out_of_range_are_two_reasons() {
    let body = with(
        v2_body(),
        &["location", "coordinates"],
        json!([-95.0, 200.0]),
    );
    assert_eq!(
        reasons(&body),
        [
            (
                "location.coordinates".to_owned(),
                FieldReason::LatitudeOutOfRange
            ),
            (
                "location.coordinates".to_owned(),
                FieldReason::LongitudeOutOfRange
            ),
        ]
    );
}

#[test]
fn every_failing_field_is_reported_at_once() {
    let body = json!({
        "transaction_id": "bad id", "timestamp": "2999-01-01T00:00:00Z", "user_id": "c1",
        "merchant_id": "m1", "amount": -1, "currency": "ABC", "transaction_type": "gift",
        "payment_method": "cash", "merchant_category": "food",
        "location": {"city": "X", "country": "ZZ", "coordinates": [100, 0]},
        "device_info": {"device_type": "fax", "ip_address": "nope"}
    });
    let got: Vec<_> = reasons(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        got,
        [
            "transaction_id",
            "timestamp",
            "amount",
            "currency",
            "transaction_type",
            "payment_method",
            "location.country",
            "location.coordinates",
            "device_info.device_type",
            "device_info.ip_address",
        ]
    );
}

#[test]
fn the_future_skew_boundary_is_inclusive() {
    assert!(
        parse_transaction(
            &with(v2_body(), &["timestamp"], json!("2025-03-03T12:05:00Z")),
            &ctx()
        )
        .is_ok()
    );
}

#[test]
fn amounts_may_be_decimal_strings() {
    let tx = parse_transaction(&with(v2_body(), &["amount"], json!("0.10")), &ctx()).unwrap();
    assert_eq!(tx.amount.thousandths(), 100);
}

#[test]
fn a_body_that_is_not_an_object_is_refused_whole() {
    for body in [json!([]), json!("x"), json!(null), json!(1)] {
        assert_eq!(
            reasons(&body),
            [(WHOLE_BODY.to_owned(), FieldReason::WrongType)]
        );
    }
}

#[test]
fn resolutions_and_labels_parse_or_name_every_field() {
    let alert = AlertId(Uuid::from_u128(1));
    let ok = parse_resolution(
        alert,
        &json!({"verdict": "false_positive", "analyst": "ana", "note": "ok"}),
    );
    assert_eq!(
        ok.unwrap().note.map(|n| n.to_string()).as_deref(),
        Some("ok")
    );
    let bad = parse_resolution(alert, &json!({"verdict": "maybe", "note": 3})).unwrap_err();
    let fields: Vec<_> = bad.iter().map(|e| (e.field.as_str(), e.reason)).collect();
    assert_eq!(
        fields,
        [
            ("verdict", FieldReason::UnknownEnumValue),
            ("analyst", FieldReason::MissingField),
            ("note", FieldReason::WrongType)
        ]
    );
    let label =
        parse_label(&json!({"transaction_id": "t1", "is_fraud": true, "source": "Chargeback"}))
            .unwrap();
    assert_eq!(
        (label.is_fraud, label.source.as_str()),
        (true, "chargeback")
    );
    let bad = parse_label(&json!({"transaction_id": "t 1", "is_fraud": "yes"})).unwrap_err();
    assert_eq!(bad.len(), 3);
}
