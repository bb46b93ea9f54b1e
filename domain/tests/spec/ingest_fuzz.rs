//! parse_transaction never panics, on any JSON, and an error always names a
//! field. Two generators: arbitrary JSON trees, and valid bodies with one
//! field (top level or nested) replaced by arbitrary JSON.

use crate::ingest::{ctx, v2_body};
use domain::ingest::parse_transaction;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

const KEYS: &[&str] = &[
    "transaction_id",
    "timestamp",
    "user_id",
    "customer_id",
    "merchant_id",
    "amount",
    "currency",
    "transaction_type",
    "payment_method",
    "merchant_category",
    "location",
    "device_info",
    "city",
    "state",
    "country",
    "coordinates",
    "device_type",
    "ip_address",
    "user_agent",
    "schema_version",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop_oneof![-200.0..200.0f64, 0.0..1e13f64].prop_map(Value::from),
        ".{0,80}".prop_map(Value::String),
        prop_oneof![
            Just("NaN"),
            Just("inf"),
            Just("-0"),
            Just("1e999"),
            Just("2025-03-03T11:00:00Z"),
            Just("9999-12-31T23:59:59Z"),
            Just("0000-01-01T00:00:00Z"),
            Just("USD"),
            Just("GB"),
            Just("pos"),
            Just("withdrawal"),
            Just("::1"),
            Just(""),
            Just(" ")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn json_tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kvs| {
                Value::Object(
                    kvs.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn check(body: &Value) -> Result<(), TestCaseError> {
    if let Err(errors) = parse_transaction(body, &ctx()) {
        prop_assert!(!errors.is_empty());
        prop_assert!(
            errors
                .iter()
                .all(|e| !e.field.is_empty() && !e.message.is_empty())
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_json_never_panics(body in json_tree()) {
        check(&body)?;
    }

    #[test]
    fn one_bad_field_in_a_good_body_never_panics(
        key in prop::sample::select(KEYS),
        nested in prop::sample::select(&["", "location", "device_info"][..]),
        value in json_tree(),
    ) {
        let mut body = v2_body();
        let target = if nested.is_empty() { &mut body } else { &mut body[nested] };
        if let Some(obj) = target.as_object_mut() {
            obj.insert(key.to_owned(), value);
        }
        check(&body)?;
    }
}
