//! The request bodies as JSON Schema (2020-12, as OpenAPI 3.1 uses it),
//! written out by hand because they must be exactly as strict as the
//! domain's parser (`domain::ingest`): what the schema allows is accepted,
//! what it forbids is refused with 4xx, and schemathesis checks both ways
//! (`scripts/schemathesis`). The closed sets (currencies, countries, enums)
//! come from the domain itself, so they cannot drift from it.
//!
//! `location` is required unless the transaction is card-not-present
//! (`domain::transaction::place_required`), which the schema says with
//! `if`/`else` over `device_info.device_type` and `transaction_type`.
//!
//! What a schema cannot say is said in the descriptions: a timestamp may be
//! at most the configured skew in the future; `customer_id` is an alias of
//! `user_id`; schema v1 bodies are accepted too; text is trimmed first.

use crate::configuration::Settings;
use domain::events::Verdict;
use domain::geo::CountryCode;
use domain::ids::MAX_ID_LEN;
use domain::money::Currency;
use domain::text::{Analyst, LabelSource, MerchantCategory, Note, PlaceName, UserAgent};
use domain::transaction::{DeviceType, PaymentMethod, TransactionType, place_required};
use serde_json::{Value, json};

/// The client id alphabet (`domain::ids`).
fn id(description: &str, example: &str) -> Value {
    json!({
        "type": "string",
        "pattern": format!("^[A-Za-z0-9._:-]{{1,{MAX_ID_LEN}}}$"),
        "description": description,
        "examples": [example],
    })
}

/// Bounded free text (`domain::text`): some character that is not white
/// space, no control characters (Unicode Cc), at most `max` characters.
fn text(max: usize, nullable: bool, description: &str, example: &str) -> Value {
    const CC: &str = r"\u0000-\u001f\u007f-\u009f";
    let ty = if nullable {
        json!(["string", "null"])
    } else {
        json!("string")
    };
    json!({
        "type": ty,
        "minLength": 1,
        "maxLength": max,
        "pattern": format!("^[^{CC}]*[^\\s{CC}][^{CC}]*$"),
        "description": format!("{description} Trimmed; 1-{max} characters, no control characters.").trim_start(),
        "examples": [example],
    })
}

fn one_of(values: &[&str], description: &str) -> Value {
    json!({"type": "string", "enum": values, "description": description})
}

/// Every code `accepts` takes, upper case, found by trying every
/// combination of `len` letters (676 or 17,576: instant).
fn codes(len: u32, accepts: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for n in 0..26u32.pow(len) {
        let mut code = String::new();
        let mut rest = n;
        for _ in 0..len {
            code.insert(0, char::from(b'A' + (rest % 26) as u8));
            rest /= 26;
        }
        if accepts(&code) {
            found.push(code);
        }
    }
    found
}

/// The device types and the transaction types of a card-not-present
/// transaction, which may leave out `location`: exactly the pairs
/// `place_required` lets go (a test checks that they are a product).
fn without_place() -> (Vec<&'static str>, Vec<&'static str>) {
    let devices = DeviceType::ALLOWED
        .iter()
        .copied()
        .filter(|d| {
            TransactionType::ALLOWED
                .iter()
                .any(|k| !place_required(DeviceType::parse(d), TransactionType::parse(k)))
        })
        .collect();
    let kinds = TransactionType::ALLOWED
        .iter()
        .copied()
        .filter(|k| {
            DeviceType::ALLOWED
                .iter()
                .any(|d| !place_required(DeviceType::parse(d), TransactionType::parse(k)))
        })
        .collect();
    (devices, kinds)
}

pub fn transaction() -> Value {
    let (devices, kinds) = without_place();
    json!({
        "type": "object",
        "description": "A transaction, schema v2. Also accepted: `customer_id` as an alias of \
            `user_id` (if both are sent they must be equal), and schema v1 bodies \
            `{transaction_id, customer_id, amount, timestamp}` (currency: the configured default), \
            told apart by the absence of every v2 field or by `schema_version`. Other fields, \
            such as `risk_score` or `is_fraud`, are ignored. `location` is required unless the \
            transaction is card-not-present: a `web` or `mobile` device and not a withdrawal.",
        "required": [
            "transaction_id", "timestamp", "user_id", "merchant_id", "amount", "currency",
            "transaction_type", "payment_method", "merchant_category", "device_info"
        ],
        // Card-not-present: the place may be left out (or null); else it is required.
        "if": {
            "required": ["device_info", "transaction_type"],
            "properties": {
                "device_info": {
                    "required": ["device_type"],
                    "properties": {"device_type": {"enum": devices}},
                },
                "transaction_type": {"enum": kinds},
            },
        },
        "else": {
            "required": ["location"],
            "properties": {"location": {"type": "object"}},
        },
        "properties": {
            "transaction_id": id("The idempotency key: a repeat with the same payload gets the first answer.", "t-1001"),
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "RFC 3339; at most the configured skew (SENTINEL_MAX_FUTURE_SKEW_SECS, default 300 s) in the future.",
                "examples": ["2026-11-24T10:00:00Z"],
            },
            "user_id": id("The customer.", "cust-42"),
            "merchant_id": id("The merchant.", "m-7"),
            "amount": {
                "description": "Greater than 0 and at most 10^12 in the transaction's currency, rounded to thousandths (so at least 0.0005); a number, or decimal text such as \"12.50\".",
                "anyOf": [
                    {"type": "number", "minimum": 0.0005, "maximum": 1e12},
                    {"type": "string", "pattern": "^([1-9][0-9]{0,11}(\\.[0-9]{1,3})?|0?\\.[0-9]{0,2}[1-9])$"},
                ],
                "examples": [84.2],
            },
            "currency": json!({
                "type": "string",
                "enum": codes(3, |c| Currency::parse(c).is_ok()),
                "description": "ISO 4217 (any letter case is accepted).",
                "examples": ["EUR"],
            }),
            "transaction_type": one_of(TransactionType::ALLOWED, "What kind of money movement."),
            "payment_method": one_of(PaymentMethod::ALLOWED, "How it was paid."),
            "merchant_category": text(MerchantCategory::MAX_CHARS, false, "Compared in lower case.", "grocery"),
            "location": {
                "description": "Where it happened. Required, except for a card-not-present \
                    transaction (device_info.device_type `web` or `mobile`, transaction_type not \
                    `withdrawal`), which may leave it out or send null: the rules that need a \
                    place then treat it as unknown.",
                "anyOf": [{"$ref": "#/components/schemas/Location"}, {"type": "null"}],
            },
            "device_info": {"$ref": "#/components/schemas/DeviceInfo"},
        },
    })
}

pub fn location() -> Value {
    json!({
        "type": "object",
        "required": ["city", "country", "coordinates"],
        "properties": {
            "city": text(PlaceName::MAX_CHARS, false, "", "Berlin"),
            "state": text(PlaceName::MAX_CHARS, true, "Optional.", "BE"),
            "country": {
                "type": "string",
                "enum": codes(2, |c| CountryCode::parse(c).is_ok()),
                "description": "ISO 3166-1 alpha-2 (any letter case is accepted).",
                "examples": ["DE"],
            },
            "coordinates": {
                "type": "array",
                "description": "[latitude, longitude] in degrees.",
                "prefixItems": [
                    {"type": "number", "minimum": -90, "maximum": 90},
                    {"type": "number", "minimum": -180, "maximum": 180},
                ],
                "items": false,
                "minItems": 2,
                "maxItems": 2,
                "examples": [[52.52, 13.405]],
            },
        },
    })
}

pub fn device_info() -> Value {
    json!({
        "type": "object",
        "required": ["device_type"],
        "properties": {
            "device_type": one_of(DeviceType::ALLOWED, "A `pos` device makes the transaction card-present."),
            "ip_address": {
                "type": ["string", "null"],
                "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
                "description": "Optional.",
                "examples": ["192.0.2.10"],
            },
            "user_agent": text(UserAgent::MAX_CHARS, true, "Optional.", "Mozilla/5.0"),
        },
    })
}

fn note() -> Value {
    text(Note::MAX_CHARS, true, "Optional.", "calling the customer")
}

pub fn acknowledgement() -> Value {
    json!({
        "type": "object",
        "description": "An analyst takes an alert up; the first acknowledgement stands.",
        "required": ["analyst"],
        "properties": {
            "analyst": text(Analyst::MAX_CHARS, false, "Who.", "jane.doe"),
            "note": note(),
        },
    })
}

pub fn resolution() -> Value {
    json!({
        "type": "object",
        "description": "An analyst's verdict on an alert.",
        "required": ["verdict", "analyst"],
        "properties": {
            "verdict": one_of(Verdict::ALLOWED, "The conclusion."),
            "analyst": text(Analyst::MAX_CHARS, false, "Who.", "jane.doe"),
            "note": note(),
        },
    })
}

pub fn label() -> Value {
    // Absent or null: not given.
    let mut customer_id = id(
        "Optional: the transaction's customer, to find a transaction too old for the service's directory in its customer's stream.",
        "cust-42",
    );
    customer_id["type"] = json!(["string", "null"]);
    json!({
        "type": "object",
        "description": "Ground truth about a transaction this service recorded (an unknown one is answered 404 and the label quarantined). Recorded with the time it was received.",
        "required": ["transaction_id", "is_fraud", "source"],
        "properties": {
            "transaction_id": id("The transaction.", "t-1001"),
            "is_fraud": {"type": "boolean"},
            "source": text(LabelSource::MAX_CHARS, false, "Where the truth came from, compared in lower case.", "chargeback"),
            "customer_id": customer_id,
        },
    })
}

pub fn label_batch(settings: &Settings) -> Value {
    json!({
        "type": "array",
        "description": "Labels, each recorded (or refused) on its own.",
        "items": {"$ref": "#/components/schemas/LabelInput"},
        "maxItems": settings.batch_max_items,
    })
}

pub fn batch(settings: &Settings) -> Value {
    json!({
        "type": "array",
        "description": "Transactions, each decided (or refused) on its own.",
        "items": {"$ref": "#/components/schemas/TransactionInput"},
        "maxItems": settings.batch_max_items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_sets_come_from_the_domain() {
        let currencies = codes(3, |c| Currency::parse(c).is_ok());
        assert!(currencies.iter().any(|c| c == "EUR"));
        assert!(!currencies.iter().any(|c| c == "ABC"));
        let countries = codes(2, |c| CountryCode::parse(c).is_ok());
        assert!(countries.iter().any(|c| c == "DE"));
        assert!(countries.len() > 200, "{}", countries.len());
    }

    #[test]
    fn the_place_may_be_left_out_exactly_when_the_domain_says() {
        // The schema's `if` is a product of device types and kinds; it is
        // exact only if `place_required` is one too.
        let (devices, kinds) = without_place();
        assert_eq!(
            (devices.as_slice(), kinds.as_slice()),
            (&["mobile", "web"][..], &["purchase", "refund"][..])
        );
        for d in DeviceType::ALLOWED {
            for k in TransactionType::ALLOWED {
                let optional = !place_required(DeviceType::parse(d), TransactionType::parse(k));
                assert_eq!(
                    optional,
                    devices.contains(d) && kinds.contains(k),
                    "{d} {k}"
                );
            }
        }
        let schema = transaction();
        let required = schema["required"].as_array().expect("required");
        assert!(!required.iter().any(|r| r == "location"));
        assert_eq!(schema["else"]["required"], json!(["location"]));
        assert_eq!(
            schema["if"]["properties"]["device_info"]["properties"]["device_type"]["enum"],
            json!(["mobile", "web"])
        );
    }

    #[test]
    fn amounts_at_the_documented_bounds_are_accepted() {
        use domain::money::Amount;
        assert!(Amount::parse(0.0005).is_ok());
        assert!(Amount::parse(0.000_499_999).is_err());
        assert!(Amount::parse(1e12).is_ok());
        for text in ["1", "999999999999.999", "0.001", ".5", "12.50"] {
            assert!(Amount::parse_str(text).is_ok(), "{text}");
        }
    }
}
