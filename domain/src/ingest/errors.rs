//! `FieldError` and `FieldReason`: what the ingest says about bad input. The
//! same values go into the RFC 9457 answer (`errors: [{field, reason}]`) and
//! into the `InputQuarantined` event, so their codes are stable.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `field` of errors about the body as a whole (malformed JSON, wrong
/// content type, not an object, too large).
pub const WHOLE_BODY: &str = "$";

/// Why a field was refused. Serialised as a stable snake_case code; add new
/// reasons at will, but never rename or reuse a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldReason {
    /// The body is not JSON.
    MalformedJson,
    /// The request's content type is not JSON.
    UnsupportedMediaType,
    /// The body is over the size limit.
    BodyTooLarge,
    /// A batch has more items than allowed.
    BatchTooLarge,
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong JSON type (string for number, ...).
    WrongType,
    /// A string is not one of the enum's values.
    UnknownEnumValue,
    /// An amount is NaN or infinite (sent as a string).
    AmountNotFinite,
    /// An amount is zero, negative, or rounds to zero.
    AmountNotPositive,
    /// An amount is over the maximum.
    AmountTooLarge,
    /// Not an ISO 4217 code.
    UnknownCurrency,
    /// Not an RFC 3339 timestamp.
    InvalidTimestamp,
    /// Later than now plus the allowed clock skew.
    TimestampInFuture,
    /// Latitude not in [-90, 90].
    LatitudeOutOfRange,
    /// Longitude not in [-180, 180].
    LongitudeOutOfRange,
    /// Coordinates are not a `[lat, lon]` pair of numbers.
    InvalidCoordinates,
    /// Not an ISO 3166-1 alpha-2 code.
    InvalidCountryCode,
    /// An id is empty or has characters outside `[A-Za-z0-9._:-]`.
    InvalidId,
    /// A string is longer than its limit.
    TooLong,
    /// Not an IPv4 or IPv6 address.
    InvalidIpAddress,
    /// Any other malformed value (empty text, control characters).
    InvalidValue,
    /// Two fields that must agree do not (`user_id` and `customer_id`).
    ConflictingFields,
    /// An explicit `schema_version` this service does not know.
    UnsupportedSchemaVersion,
    /// A label names a transaction this service has no record of.
    UnknownTransaction,
    /// A code written by a newer version of this software.
    #[serde(other)]
    Unknown,
}

impl FieldReason {
    /// Every reason (for documentation, e.g. an OpenAPI enum), `Unknown` last.
    pub const ALL: &'static [FieldReason] = &[
        FieldReason::MalformedJson,
        FieldReason::UnsupportedMediaType,
        FieldReason::BodyTooLarge,
        FieldReason::BatchTooLarge,
        FieldReason::MissingField,
        FieldReason::WrongType,
        FieldReason::UnknownEnumValue,
        FieldReason::AmountNotFinite,
        FieldReason::AmountNotPositive,
        FieldReason::AmountTooLarge,
        FieldReason::UnknownCurrency,
        FieldReason::InvalidTimestamp,
        FieldReason::TimestampInFuture,
        FieldReason::LatitudeOutOfRange,
        FieldReason::LongitudeOutOfRange,
        FieldReason::InvalidCoordinates,
        FieldReason::InvalidCountryCode,
        FieldReason::InvalidId,
        FieldReason::TooLong,
        FieldReason::InvalidIpAddress,
        FieldReason::InvalidValue,
        FieldReason::ConflictingFields,
        FieldReason::UnsupportedSchemaVersion,
        FieldReason::UnknownTransaction,
        FieldReason::Unknown,
    ];

    /// The stable code, as serialised.
    pub fn code(self) -> &'static str {
        use FieldReason::*;
        match self {
            MalformedJson => "malformed_json",
            UnsupportedMediaType => "unsupported_media_type",
            BodyTooLarge => "body_too_large",
            BatchTooLarge => "batch_too_large",
            MissingField => "missing_field",
            WrongType => "wrong_type",
            UnknownEnumValue => "unknown_enum_value",
            AmountNotFinite => "amount_not_finite",
            AmountNotPositive => "amount_not_positive",
            AmountTooLarge => "amount_too_large",
            UnknownCurrency => "unknown_currency",
            InvalidTimestamp => "invalid_timestamp",
            TimestampInFuture => "timestamp_in_future",
            LatitudeOutOfRange => "latitude_out_of_range",
            LongitudeOutOfRange => "longitude_out_of_range",
            InvalidCoordinates => "invalid_coordinates",
            InvalidCountryCode => "invalid_country_code",
            InvalidId => "invalid_id",
            TooLong => "too_long",
            InvalidIpAddress => "invalid_ip_address",
            InvalidValue => "invalid_value",
            ConflictingFields => "conflicting_fields",
            UnsupportedSchemaVersion => "unsupported_schema_version",
            UnknownTransaction => "unknown_transaction",
            Unknown => "unknown",
        }
    }
}

impl fmt::Display for FieldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One failing field: a JSON path (`"location.coordinates"`, `"$"` for the
/// whole body), a stable reason code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub reason: FieldReason,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: FieldReason, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_serde_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &reason in FieldReason::ALL {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, serde_json::Value::from(reason.code()));
            assert!(seen.insert(reason.code()), "{reason}");
        }
        let future: FieldReason = serde_json::from_str("\"some_new_code\"").unwrap();
        assert_eq!(future, FieldReason::Unknown);
    }
}
