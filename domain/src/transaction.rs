//! The parsed transaction and its value types: the enums clients send,
//! location and device.
//!
//! Every value here is valid by construction ("parse, don't validate"): the
//! ingest builds them from JSON, and deserialising a stored event re-checks
//! them. Fields absent from schema v1 are `Option`s; schema v2 input fills
//! them (see `ingest` for which are required).

use crate::devices::DeviceKey;
use crate::geo::{Coordinates, CountryCode};
use crate::ids::{CustomerId, MerchantId, TransactionId};
use crate::money::{Amount, Currency};
use crate::text::{MerchantCategory, PlaceName, UserAgent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Declares a closed enum that clients send as a snake_case string.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every accepted spelling, for error messages.
            pub const ALLOWED: &'static [&'static str] = &[$($text),+];

            /// Accepts exactly one of [`Self::ALLOWED`].
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// What kind of money movement it is.
    TransactionType { Purchase = "purchase", Refund = "refund", Withdrawal = "withdrawal" }
);
wire_enum!(
    /// How it was paid.
    PaymentMethod {
        CreditCard = "credit_card",
        DebitCard = "debit_card",
        DigitalWallet = "digital_wallet",
    }
);
wire_enum!(
    /// Where it was made from.
    DeviceType { Mobile = "mobile", Web = "web", Pos = "pos" }
);

impl DeviceType {
    /// A browser or an app: the card is not at a terminal (card-not-present),
    /// so there may be no place to report.
    pub fn is_remote(self) -> bool {
        matches!(self, DeviceType::Mobile | DeviceType::Web)
    }
}

/// Whether a transaction must say where it happened (`location`). Only a
/// card-not-present one may leave it out: made from a web or mobile device
/// and not a cash withdrawal (cash comes out of an ATM, which is a place,
/// whatever device started it; see [`Transaction::is_card_present`]). Without
/// a device, or with a POS terminal, the place is required. The one home of
/// this rule: the ingest, its OpenAPI schema and `fraudctl ingest-csv` ask here.
pub fn place_required(device: Option<DeviceType>, kind: Option<TransactionType>) -> bool {
    let remote = device.is_some_and(DeviceType::is_remote);
    !remote || kind == Some(TransactionType::Withdrawal)
}

/// Where a transaction happened. `country` is what makes a transaction
/// international for `withdrawal_sequence`; `city` feeds `distinct_cities`;
/// `coordinates` feed `impossible_travel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub city: PlaceName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PlaceName>,
    pub country: CountryCode,
    pub coordinates: Coordinates,
}

/// The device a transaction was made from.
///
/// `ip_address` and `user_agent` are personal data (docs/trust.md): the
/// ingest parses them in the clear, and the command side then *seals* them
/// ([`DeviceInfo::sealed`]) before anything is decided or recorded: the
/// plaintext is replaced by `sealed` (their ciphertext under the customer's
/// data key, opaque to the domain) and `fingerprint` (a keyed hash of the
/// pair, what the device rules and features compare). Events recorded
/// before crypto-shredding carry the plaintext and no fingerprint; they
/// still replay ([`crate::devices::DeviceKey::of`] hashes them as before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device_type: DeviceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<UserAgent>,
    /// The device's keyed fingerprint, set when the personal fields were
    /// sealed (16 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<DeviceKey>,
    /// The personal fields' ciphertext (see [`PersonalDevice`]); only the
    /// holder of the customer's data key can read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// The personal fields of a device, as they are sealed: the plaintext of
/// [`DeviceInfo::sealed`] is this, serialised as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDevice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<UserAgent>,
}

impl DeviceInfo {
    /// A device as the ingest parses it: personal fields in the clear,
    /// not sealed yet.
    pub fn new(
        device_type: DeviceType,
        ip_address: Option<IpAddr>,
        user_agent: Option<UserAgent>,
    ) -> DeviceInfo {
        DeviceInfo {
            device_type,
            ip_address,
            user_agent,
            fingerprint: None,
            sealed: None,
        }
    }

    /// Its personal fields in the clear, if it names any.
    pub fn personal(&self) -> Option<PersonalDevice> {
        if self.ip_address.is_none() && self.user_agent.is_none() {
            return None;
        }
        Some(PersonalDevice {
            ip_address: self.ip_address,
            user_agent: self.user_agent.clone(),
        })
    }

    /// The bytes that identify the device (user agent, a NUL, the IP as
    /// text): what both the legacy FNV fingerprint and the keyed one hash.
    /// `None` when it names neither (terminals, schema v1).
    pub fn identity(&self) -> Option<Vec<u8>> {
        let agent = self.user_agent.as_ref().map(|a| a.as_str());
        if agent.is_none() && self.ip_address.is_none() {
            return None;
        }
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(agent.unwrap_or("").as_bytes());
        // A separator that no user agent contains (they have no control
        // characters), so ("ab", "c") and ("a", "bc") differ.
        bytes.push(0);
        if let Some(ip) = self.ip_address {
            bytes.extend_from_slice(ip.to_string().as_bytes());
        }
        Some(bytes)
    }

    /// The device with its personal fields replaced by their ciphertext
    /// and keyed fingerprint (the command side's crypto computes both).
    pub fn sealed(self, fingerprint: DeviceKey, sealed: String) -> DeviceInfo {
        DeviceInfo {
            device_type: self.device_type,
            ip_address: None,
            user_agent: None,
            fingerprint: Some(fingerprint),
            sealed: Some(sealed),
        }
    }
}

/// Which input schema a transaction arrived in. Serialised as `1` or `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum InputSchema {
    /// `{transaction_id, customer_id, amount, timestamp}`.
    V1,
    /// The full shape with currency, merchant, location and device.
    V2,
}

impl TryFrom<u8> for InputSchema {
    type Error = String;
    fn try_from(v: u8) -> Result<InputSchema, String> {
        match v {
            1 => Ok(InputSchema::V1),
            2 => Ok(InputSchema::V2),
            other => Err(format!("unknown input schema version {other}")),
        }
    }
}

impl From<InputSchema> for u8 {
    fn from(v: InputSchema) -> u8 {
        match v {
            InputSchema::V1 => 1,
            InputSchema::V2 => 2,
        }
    }
}

/// A transaction that passed the ingest. Serialised in the client's v2 shape
/// (with `customer_id` for `user_id`), plus `input_schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: TransactionId,
    pub customer_id: CustomerId,
    /// When it happened (event time), normalised to UTC.
    pub timestamp: DateTime<Utc>,
    pub amount: Amount,
    /// Always set by the ingest (v1 input gets the configured default); only
    /// transactions recorded before currencies were captured (stored v1
    /// events, upcast) have none.
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<MerchantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_category: Option<MerchantCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<TransactionType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    /// `None` for schema v1, and for card-not-present v2 transactions sent
    /// without a place (see [`place_required`]): the rules and features that
    /// need a place treat it as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_info: Option<DeviceInfo>,
    pub input_schema: InputSchema,
}

impl Transaction {
    /// A minimal transaction, as schema v1 carries it (tests, upcasting).
    pub fn v1(
        transaction_id: TransactionId,
        customer_id: CustomerId,
        timestamp: DateTime<Utc>,
        amount: Amount,
        currency: Option<Currency>,
    ) -> Transaction {
        Transaction {
            transaction_id,
            customer_id,
            timestamp,
            amount,
            currency,
            merchant_id: None,
            merchant_category: None,
            transaction_type: None,
            payment_method: None,
            location: None,
            device_info: None,
            input_schema: InputSchema::V1,
        }
    }

    /// Card-present: the card (or phone) was physically at a terminal, so
    /// the transaction pins the customer to a place and time. We take that to
    /// be a transaction with coordinates made at a POS device, or a cash
    /// withdrawal (an ATM) with coordinates. Web and app purchases are not:
    /// their coordinates are where the merchant or an IP geolocation is, not
    /// where the customer stands, so they would make `impossible_travel` fire
    /// on ordinary online shopping.
    pub fn is_card_present(&self) -> bool {
        let at_terminal = self
            .device_info
            .as_ref()
            .is_some_and(|d| d.device_type == DeviceType::Pos);
        let cash = self.transaction_type == Some(TransactionType::Withdrawal);
        self.location.is_some() && (at_terminal || cash)
    }

    pub fn coordinates(&self) -> Option<Coordinates> {
        self.location.as_ref().map(|l| l.coordinates)
    }

    pub fn country(&self) -> Option<CountryCode> {
        self.location.as_ref().map(|l| l.country)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_only_their_spellings() {
        assert_eq!(
            TransactionType::parse("refund"),
            Some(TransactionType::Refund)
        );
        assert_eq!(TransactionType::parse("Refund"), None);
        assert_eq!(
            PaymentMethod::parse("digital_wallet"),
            Some(PaymentMethod::DigitalWallet)
        );
        assert_eq!(DeviceType::ALLOWED, &["mobile", "web", "pos"]);
        let json = serde_json::to_string(&PaymentMethod::CreditCard).unwrap();
        assert_eq!(json, "\"credit_card\"");
    }

    #[test]
    fn only_a_remote_non_cash_transaction_may_leave_out_its_place() {
        use DeviceType::*;
        use TransactionType::*;
        for device in [Web, Mobile] {
            assert!(!place_required(Some(device), Some(Purchase)), "{device}");
            assert!(!place_required(Some(device), Some(Refund)), "{device}");
            assert!(!place_required(Some(device), None), "{device}");
            assert!(place_required(Some(device), Some(Withdrawal)), "{device}");
        }
        assert!(place_required(Some(Pos), Some(Purchase)));
        assert!(place_required(None, Some(Purchase)));
        assert!(place_required(None, None));
    }

    #[test]
    fn input_schema_serialises_as_a_number() {
        assert_eq!(serde_json::to_string(&InputSchema::V2).unwrap(), "2");
        assert!(serde_json::from_str::<InputSchema>("3").is_err());
    }
}
