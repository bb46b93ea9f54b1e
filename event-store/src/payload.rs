//! An event's JSON payload as stored, parsed only by whoever reads it.
//!
//! Following the log should not build a JSON tree per event only for the
//! reader to turn it into its own type: [`Payload::parse`] goes from the
//! stored text to the reader's type in one pass.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::sync::Arc;

/// JSON text, known to be valid. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(Arc<str>);

impl Payload {
    /// Checks that `text` is JSON and keeps it as it is.
    pub fn from_json(text: impl Into<Arc<str>>) -> Result<Self, serde_json::Error> {
        let text = text.into();
        serde_json::from_str::<&RawValue>(&text)?;
        Ok(Payload(text))
    }

    /// For text a JSON column or an earlier check already vouched for.
    pub(crate) fn trusted(text: impl Into<Arc<str>>) -> Self {
        Payload(text.into())
    }

    pub fn from_value(value: &serde_json::Value) -> Self {
        Payload(value.to_string().into())
    }

    /// Whether both hold the same JSON value: the same text, or text that
    /// parses to the same value (key order and spacing do not matter).
    pub fn same_json(&self, other: &Payload) -> bool {
        self.0 == other.0 || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Deserializes the payload straight into `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The payload as a JSON tree.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        self.parse()
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Same JSON value (not same text): key order and spacing do not matter.
impl PartialEq<serde_json::Value> for Payload {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.to_value().is_ok_and(|v| &v == other)
    }
}

impl serde::Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Payload(raw.get().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_text_and_compares_as_json() {
        let p = Payload::from_json(r#"{"b": 1, "a": [true]}"#).expect("json");
        assert_eq!(p.as_str(), r#"{"b": 1, "a": [true]}"#);
        assert_eq!(p, json!({"a": [true], "b": 1}));
        assert_ne!(p, json!({"a": [false], "b": 1}));
    }

    #[test]
    fn same_json_ignores_key_order_and_spacing() {
        let sorted = Payload::from_value(&json!({"a": 1, "b": [2]}));
        let written = Payload::from_json(r#"{"b": [2], "a": 1}"#).expect("json");
        assert!(sorted.same_json(&written));
        assert!(sorted.same_json(&sorted));
        let other = Payload::from_json(r#"{"b": [3], "a": 1}"#).expect("json");
        assert!(!sorted.same_json(&other));
    }

    #[test]
    fn refuses_what_is_not_json() {
        assert!(Payload::from_json("{nope").is_err());
        assert!(Payload::from_json("").is_err());
    }

    #[test]
    fn serializes_as_the_json_it_holds() {
        let p = Payload::from_value(&json!({"n": 1}));
        let wrapped =
            serde_json::to_string(&json!({"payload": p.to_value().expect("v")})).expect("ser");
        let direct = serde_json::to_string(
            &serde_json::json!({"payload": serde_json::to_value(&p).expect("ser")}),
        )
        .expect("ser");
        assert_eq!(wrapped, direct);
        let back: Payload = serde_json::from_str(r#"{"n":1}"#).expect("de");
        assert_eq!(back, json!({"n": 1}));
    }
}
