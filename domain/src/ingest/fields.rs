//! Small readers for JSON fields that record every failure in a `Report`
//! instead of stopping at the first, so one answer names every bad field.
//! Each reader returns `None` exactly when it has recorded an error (or the
//! optional field is absent), which the callers rely on.

use super::errors::{FieldError, FieldReason};
use crate::text::TextError;
use serde_json::{Map, Value};

/// The errors found so far.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub errors: Vec<FieldError>,
}

impl Report {
    pub fn fail(&mut self, field: &str, reason: FieldReason, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason, message));
    }

    /// Ends a parse: the value if nothing failed, else every error. A `None`
    /// with no error recorded would be a bug in a reader; it is still
    /// reported (never a panic, never an `Ok` with a hole in it).
    pub fn finish<T>(mut self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => {
                if self.errors.is_empty() {
                    self.fail(
                        super::errors::WHOLE_BODY,
                        FieldReason::InvalidValue,
                        "the input could not be read",
                    );
                }
                Err(self.errors)
            }
        }
    }
}

/// The value at `key`, treating JSON `null` as absent.
pub(crate) fn present<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A required field: records `missing_field` when absent or null.
pub(crate) fn required<'v>(
    report: &mut Report,
    obj: &'v Map<String, Value>,
    key: &str,
    path: &str,
) -> Option<&'v Value> {
    let value = present(obj, key);
    if value.is_none() {
        report.fail(
            path,
            FieldReason::MissingField,
            format!("{path} is required"),
        );
    }
    value
}

/// The JSON type of `value`, for `wrong_type` messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn string<'v>(report: &mut Report, value: &'v Value, path: &str) -> Option<&'v str> {
    let text = value.as_str();
    if text.is_none() {
        report.fail(
            path,
            FieldReason::WrongType,
            format!("{path} must be a string, not {}", json_type(value)),
        );
    }
    text
}

pub(crate) fn object<'v>(
    report: &mut Report,
    value: &'v Value,
    path: &str,
) -> Option<&'v Map<String, Value>> {
    let obj = value.as_object();
    if obj.is_none() {
        report.fail(
            path,
            FieldReason::WrongType,
            format!("{path} must be an object, not {}", json_type(value)),
        );
    }
    obj
}

/// A string field parsed into a closed enum.
pub(crate) fn enum_value<T>(
    report: &mut Report,
    value: &Value,
    path: &str,
    parse: fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Option<T> {
    let text = string(report, value, path)?;
    let parsed = parse(text);
    if parsed.is_none() {
        report.fail(
            path,
            FieldReason::UnknownEnumValue,
            format!("{path} must be one of: {}", allowed.join(", ")),
        );
    }
    parsed
}

/// A string field parsed into bounded text.
pub(crate) fn text<T>(
    report: &mut Report,
    value: &Value,
    path: &str,
    parse: fn(&str) -> Result<T, TextError>,
) -> Option<T> {
    let raw = string(report, value, path)?;
    match parse(raw) {
        Ok(v) => Some(v),
        Err(e) => {
            let reason = match e {
                TextError::TooLong => FieldReason::TooLong,
                TextError::Empty | TextError::ControlCharacter => FieldReason::InvalidValue,
            };
            report.fail(path, reason, format!("{path} {e}"));
            None
        }
    }
}

/// A boolean field.
pub(crate) fn boolean(report: &mut Report, value: &Value, path: &str) -> Option<bool> {
    let b = value.as_bool();
    if b.is_none() {
        report.fail(
            path,
            FieldReason::WrongType,
            format!("{path} must be a boolean, not {}", json_type(value)),
        );
    }
    b
}
