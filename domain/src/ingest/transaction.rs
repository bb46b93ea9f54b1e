//! `parse_transaction`: a JSON body (schema v1 or v2) into a `Transaction`,
//! or every failing field at once.
//!
//! Schema v2 requires: transaction_id, timestamp, user_id (or its alias
//! customer_id), merchant_id, amount, currency, transaction_type,
//! payment_method, merchant_category, location {city, country, coordinates}
//! and device_info {device_type}; location.state, device_info.ip_address and
//! device_info.user_agent are optional (not every country has states, a POS
//! terminal has no user agent). `location` itself is optional for a
//! card-not-present transaction (a web or mobile device, not a cash
//! withdrawal: `transaction::place_required`), which may have no place to
//! give; when sent, it is read in full. Schema v1 requires transaction_id,
//! customer_id (or user_id), amount and timestamp; its currency is the
//! configured default. Unknown fields, including client-sent `risk_score` or
//! `is_fraud`, are ignored.

use super::errors::{FieldError, FieldReason, WHOLE_BODY};
use super::fields::{Report, enum_value, json_type, object, present, required, string, text};
use crate::geo::{Coordinates, CoordinatesError, CountryCode};
use crate::ids::{CustomerId, IdError, MerchantId, TransactionId};
use crate::money::{Amount, AmountError, Currency};
use crate::text::{MerchantCategory, PlaceName, UserAgent};
use crate::transaction::{
    DeviceInfo, DeviceType, InputSchema, Location, PaymentMethod, Transaction, TransactionType,
    place_required,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// What the ingest needs from outside: the clock and the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseContext {
    /// The time the request arrived (the caller's clock; the domain reads none).
    pub now: DateTime<Utc>,
    /// How far in the future a timestamp may be (client clock skew).
    pub max_future_skew: Duration,
    /// The currency of schema v1 input, which carries none.
    pub default_currency: Currency,
}

/// Fields only schema v2 has: any of them present (non-null) makes a body
/// without an explicit `schema_version` a v2 body.
const V2_MARKERS: &[&str] = &[
    "currency",
    "merchant_id",
    "merchant_category",
    "transaction_type",
    "payment_method",
    "location",
    "device_info",
];

/// Parses one transaction. Never panics, whatever the JSON; an `Err` names
/// at least one field.
pub fn parse_transaction(body: &Value, ctx: &ParseContext) -> Result<Transaction, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new(
            WHOLE_BODY,
            FieldReason::WrongType,
            format!("the body must be a JSON object, not {}", json_type(body)),
        )]);
    };
    let mut report = Report::default();
    let schema = schema_of(&mut report, obj);

    let transaction_id = required(&mut report, obj, "transaction_id", "transaction_id")
        .and_then(|v| id(&mut report, v, "transaction_id", TransactionId::parse));
    let customer_id = customer(&mut report, obj, schema);
    let timestamp = timestamp(&mut report, obj, ctx);
    let amount =
        required(&mut report, obj, "amount", "amount").and_then(|v| amount(&mut report, v));

    let mut tx = match (transaction_id, customer_id, timestamp, amount) {
        (Some(transaction_id), Some(customer_id), Some(timestamp), Some(amount)) => {
            Some(Transaction::v1(
                transaction_id,
                customer_id,
                timestamp,
                amount,
                Some(ctx.default_currency),
            ))
        }
        _ => None,
    };
    if schema == InputSchema::V2 {
        let details = v2_details(&mut report, obj);
        tx = match (tx, details) {
            (Some(tx), Some(details)) => Some(details.complete(tx)),
            _ => None,
        };
    }
    report.finish(tx)
}

/// The customer a body names, if it names a valid one: `user_id`, else
/// its alias `customer_id`. For input that failed the ingest, whose
/// personal fields are still sealed under that customer's key (the command
/// side seals, the query side opens: both ask here, so both pick the same
/// key).
pub fn customer_named(body: &Value) -> Option<CustomerId> {
    let obj = body.as_object()?;
    ["user_id", "customer_id"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .and_then(|text| CustomerId::parse(text).ok())
}

/// The schema: an explicit `schema_version` wins, else the v2 markers decide.
fn schema_of(report: &mut Report, obj: &Map<String, Value>) -> InputSchema {
    if let Some(v) = present(obj, "schema_version") {
        return match v.as_u64() {
            Some(1) => InputSchema::V1,
            Some(2) => InputSchema::V2,
            _ => {
                report.fail(
                    "schema_version",
                    FieldReason::UnsupportedSchemaVersion,
                    "schema_version must be 1 or 2",
                );
                // Read the rest as v2, so its errors are reported too.
                InputSchema::V2
            }
        };
    }
    if V2_MARKERS.iter().any(|k| present(obj, k).is_some()) {
        InputSchema::V2
    } else {
        InputSchema::V1
    }
}

fn id<T>(
    report: &mut Report,
    value: &Value,
    path: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Option<T> {
    let raw = string(report, value, path)?;
    match parse(raw) {
        Ok(id) => Some(id),
        Err(e) => {
            let reason = match e {
                IdError::TooLong => FieldReason::TooLong,
                IdError::Empty | IdError::BadCharacter => FieldReason::InvalidId,
            };
            report.fail(path, reason, format!("{path} {e}"));
            None
        }
    }
}

/// `user_id` with its alias `customer_id`; if both are sent they must agree.
fn customer(
    report: &mut Report,
    obj: &Map<String, Value>,
    schema: InputSchema,
) -> Option<CustomerId> {
    let user = present(obj, "user_id");
    let alias = present(obj, "customer_id");
    match (user, alias) {
        (Some(u), Some(c)) => {
            let parsed_u = id(report, u, "user_id", CustomerId::parse);
            let parsed_c = id(report, c, "customer_id", CustomerId::parse);
            match (parsed_u, parsed_c) {
                (Some(u), Some(c)) if u == c => Some(u),
                (Some(_), Some(_)) => {
                    report.fail(
                        "customer_id",
                        FieldReason::ConflictingFields,
                        "customer_id is an alias of user_id and must equal it",
                    );
                    None
                }
                _ => None,
            }
        }
        (Some(u), None) => id(report, u, "user_id", CustomerId::parse),
        (None, Some(c)) => id(report, c, "customer_id", CustomerId::parse),
        (None, None) => {
            // Name the field the way the schema in use calls it.
            let (field, other) = match schema {
                InputSchema::V1 => ("customer_id", "user_id"),
                InputSchema::V2 => ("user_id", "customer_id"),
            };
            report.fail(
                field,
                FieldReason::MissingField,
                format!("{field} (or its alias {other}) is required"),
            );
            None
        }
    }
}

fn timestamp(
    report: &mut Report,
    obj: &Map<String, Value>,
    ctx: &ParseContext,
) -> Option<DateTime<Utc>> {
    let raw = required(report, obj, "timestamp", "timestamp")?;
    let text = string(report, raw, "timestamp")?;
    let Ok(parsed) = DateTime::parse_from_rfc3339(text) else {
        report.fail(
            "timestamp",
            FieldReason::InvalidTimestamp,
            "timestamp must be an RFC 3339 date-time such as 2024-01-15T14:30:00Z",
        );
        return None;
    };
    let at = parsed.with_timezone(&Utc);
    // No limit if now + skew is past chrono's range.
    if let Some(limit) = ctx.now.checked_add_signed(ctx.max_future_skew)
        && at > limit
    {
        report.fail(
            "timestamp",
            FieldReason::TimestampInFuture,
            format!(
                "timestamp is more than {} s in the future",
                ctx.max_future_skew.num_seconds()
            ),
        );
        return None;
    }
    Some(at)
}

fn amount(report: &mut Report, value: &Value) -> Option<Amount> {
    let parsed = match value {
        // Every serde_json number converts to f64 (large integers round,
        // and are then refused as too large anyway).
        Value::Number(n) => n
            .as_f64()
            .map_or(Err(AmountError::NotANumber), Amount::parse),
        Value::String(s) => Amount::parse_str(s),
        other => {
            report.fail(
                "amount",
                FieldReason::WrongType,
                format!("amount must be a number, not {}", json_type(other)),
            );
            return None;
        }
    };
    match parsed {
        Ok(a) => Some(a),
        Err(e) => {
            let reason = match e {
                AmountError::NotFinite => FieldReason::AmountNotFinite,
                AmountError::NotPositive => FieldReason::AmountNotPositive,
                AmountError::TooLarge => FieldReason::AmountTooLarge,
                AmountError::NotANumber => FieldReason::WrongType,
            };
            report.fail("amount", reason, format!("amount {e}"));
            None
        }
    }
}

/// What schema v2 adds to the v1 core.
struct V2Details {
    currency: Currency,
    merchant_id: MerchantId,
    merchant_category: MerchantCategory,
    transaction_type: TransactionType,
    payment_method: PaymentMethod,
    location: Option<Location>,
    device_info: DeviceInfo,
}

impl V2Details {
    fn complete(self, mut tx: Transaction) -> Transaction {
        tx.currency = Some(self.currency);
        tx.merchant_id = Some(self.merchant_id);
        tx.merchant_category = Some(self.merchant_category);
        tx.transaction_type = Some(self.transaction_type);
        tx.payment_method = Some(self.payment_method);
        tx.location = self.location;
        tx.device_info = Some(self.device_info);
        tx.input_schema = InputSchema::V2;
        tx
    }
}

fn v2_details(report: &mut Report, obj: &Map<String, Value>) -> Option<V2Details> {
    let currency = required(report, obj, "currency", "currency").and_then(|v| {
        let code = string(report, v, "currency")?;
        let parsed = Currency::parse(code).ok();
        if parsed.is_none() {
            report.fail(
                "currency",
                FieldReason::UnknownCurrency,
                "currency must be an ISO 4217 code such as USD",
            );
        }
        parsed
    });
    let merchant_id = required(report, obj, "merchant_id", "merchant_id")
        .and_then(|v| id(report, v, "merchant_id", MerchantId::parse));
    let merchant_category = required(report, obj, "merchant_category", "merchant_category")
        .and_then(|v| text(report, v, "merchant_category", MerchantCategory::parse));
    let transaction_type =
        required(report, obj, "transaction_type", "transaction_type").and_then(|v| {
            enum_value(
                report,
                v,
                "transaction_type",
                TransactionType::parse,
                TransactionType::ALLOWED,
            )
        });
    let payment_method = required(report, obj, "payment_method", "payment_method").and_then(|v| {
        enum_value(
            report,
            v,
            "payment_method",
            PaymentMethod::parse,
            PaymentMethod::ALLOWED,
        )
    });
    // `Some(None)`: absent, and allowed to be.
    let location = match present(obj, "location") {
        Some(v) => object(report, v, "location")
            .and_then(|o| location(report, o))
            .map(Some),
        None if place_required(sent_device_type(obj), transaction_type) => {
            report.fail(
                "location",
                FieldReason::MissingField,
                "location is required unless the transaction is card-not-present \
                 (device_info.device_type web or mobile, and not a withdrawal)",
            );
            None
        }
        None => Some(None),
    };
    let device_info = required(report, obj, "device_info", "device_info")
        .and_then(|v| object(report, v, "device_info"))
        .and_then(|o| device_info(report, o));
    Some(V2Details {
        currency: currency?,
        merchant_id: merchant_id?,
        merchant_category: merchant_category?,
        transaction_type: transaction_type?,
        payment_method: payment_method?,
        location: location?,
        device_info: device_info?,
    })
}

/// The device type, if a valid one was sent: read ahead of `device_info`
/// (which reports its own errors, in their place) because whether
/// `location` is required depends on it.
fn sent_device_type(obj: &Map<String, Value>) -> Option<DeviceType> {
    let device = present(obj, "device_info")?.as_object()?;
    present(device, "device_type")?
        .as_str()
        .and_then(DeviceType::parse)
}

fn location(report: &mut Report, obj: &Map<String, Value>) -> Option<Location> {
    let city = required(report, obj, "city", "location.city")
        .and_then(|v| text(report, v, "location.city", PlaceName::parse));
    let state = present(obj, "state").map(|v| text(report, v, "location.state", PlaceName::parse));
    let country = required(report, obj, "country", "location.country").and_then(|v| {
        let code = string(report, v, "location.country")?;
        let parsed = CountryCode::parse(code).ok();
        if parsed.is_none() {
            report.fail(
                "location.country",
                FieldReason::InvalidCountryCode,
                "location.country must be an ISO 3166-1 alpha-2 code such as GB",
            );
        }
        parsed
    });
    let coordinates = required(report, obj, "coordinates", "location.coordinates")
        .and_then(|v| coordinates(report, v));
    Some(Location {
        city: city?,
        // A present-but-bad state has been reported; an absent one is fine.
        state: match state {
            Some(parsed) => Some(parsed?),
            None => None,
        },
        country: country?,
        coordinates: coordinates?,
    })
}

fn coordinates(report: &mut Report, value: &Value) -> Option<Coordinates> {
    const PATH: &str = "location.coordinates";
    let pair = value.as_array().and_then(|a| match a.as_slice() {
        [lat, lon] => Some((lat.as_f64()?, lon.as_f64()?)),
        _ => None,
    });
    let Some((lat, lon)) = pair else {
        report.fail(
            PATH,
            FieldReason::InvalidCoordinates,
            "location.coordinates must be [latitude, longitude], two numbers",
        );
        return None;
    };
    match Coordinates::new(lat, lon) {
        Ok(c) => Some(c),
        Err(e) => {
            if matches!(e, CoordinatesError::Latitude | CoordinatesError::Both) {
                report.fail(
                    PATH,
                    FieldReason::LatitudeOutOfRange,
                    "latitude must be in [-90, 90]",
                );
            }
            if matches!(e, CoordinatesError::Longitude | CoordinatesError::Both) {
                report.fail(
                    PATH,
                    FieldReason::LongitudeOutOfRange,
                    "longitude must be in [-180, 180]",
                );
            }
            None
        }
    }
}

fn device_info(report: &mut Report, obj: &Map<String, Value>) -> Option<DeviceInfo> {
    let device_type =
        required(report, obj, "device_type", "device_info.device_type").and_then(|v| {
            enum_value(
                report,
                v,
                "device_info.device_type",
                DeviceType::parse,
                DeviceType::ALLOWED,
            )
        });
    let ip_address = present(obj, "ip_address").map(|v| {
        let text = string(report, v, "device_info.ip_address")?;
        let ip = text.parse::<IpAddr>().ok();
        if ip.is_none() {
            report.fail(
                "device_info.ip_address",
                FieldReason::InvalidIpAddress,
                "device_info.ip_address must be an IPv4 or IPv6 address",
            );
        }
        ip
    });
    let user_agent = present(obj, "user_agent")
        .map(|v| text(report, v, "device_info.user_agent", UserAgent::parse));
    Some(DeviceInfo::new(
        device_type?,
        match ip_address {
            Some(parsed) => Some(parsed?),
            None => None,
        },
        match user_agent {
            Some(parsed) => Some(parsed?),
            None => None,
        },
    ))
}
