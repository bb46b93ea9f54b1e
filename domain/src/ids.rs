//! Identifiers: the client-chosen ids of a transaction, customer and merchant
//! (checked text), and the ids Sentinel mints itself (UUIDs).
//!
//! Client ids end up in stream names (`customer-{id}`), URLs and log lines, so
//! they are restricted to a "UUID-safe" alphabet: 1..=64 characters of
//! `[A-Za-z0-9._:-]`, no whitespace. A value of these types is always valid;
//! deserialising one re-checks it, so a stored event cannot smuggle a bad id in.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The longest client id accepted, in characters (all ASCII, so also bytes).
pub const MAX_ID_LEN: usize = 64;

/// Why a text id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} characters")]
    TooLong,
    #[error("may contain only letters, digits and . _ : -")]
    BadCharacter,
}

/// Checks the shared id alphabet and length.
fn check_id(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
    if text.bytes().all(allowed) {
        Ok(())
    } else {
        Err(IdError::BadCharacter)
    }
}

/// Declares a checked text id: `parse`, `as_str`, `Display`, and serde as a
/// plain JSON string that is re-checked on the way in.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts `text` if it is 1..=64 characters of `[A-Za-z0-9._:-]`.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                check_id(text).map(|()| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, IdError> {
                check_id(&text).map(|()| Self(text))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// The client's transaction id; also the idempotency key of the ingest.
    TransactionId
);
text_id!(
    /// The customer (card holder / wallet owner); names the `customer-{id}` stream.
    CustomerId
);
text_id!(
    /// The merchant the transaction was made with.
    MerchantId
);

/// Declares an id that Sentinel mints (a UUID, v7 in practice). The domain
/// never mints one itself: ids come in with commands so `decide` stays
/// deterministic.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An alert; names the `alert-{id}` stream.
    AlertId
);
uuid_id!(
    /// One quarantined input.
    QuarantineId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_uuid_safe_alphabet() {
        assert!(TransactionId::parse("tx-2024.01:A_9").is_ok());
        assert!(CustomerId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_odd_characters() {
        assert_eq!(CustomerId::parse(""), Err(IdError::Empty));
        assert_eq!(CustomerId::parse(&"a".repeat(65)), Err(IdError::TooLong));
        assert_eq!(CustomerId::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(CustomerId::parse("a/b"), Err(IdError::BadCharacter));
        assert_eq!(CustomerId::parse("é"), Err(IdError::BadCharacter));
    }

    #[test]
    fn deserialising_rechecks() {
        let bad: Result<MerchantId, _> = serde_json::from_str("\"has space\"");
        assert!(bad.is_err());
        let good: MerchantId = serde_json::from_str("\"m-1\"").unwrap();
        assert_eq!(good.as_str(), "m-1");
    }
}
