//! Money: `Amount` (exact fixed-point) and `Currency` (ISO 4217).
//!
//! Amounts are kept as an integer count of thousandths of the currency's major
//! unit. Why not `f64`: window sums and "exactly at the threshold" comparisons
//! must be exact and must not depend on the order the terms were added in
//! (late events insert in the middle). Why thousandths: they carry every ISO
//! 4217 card currency exactly (the largest exponent in use is 3: BHD, KWD,
//! ...); finer digits are rounded half away from zero. With the maximum of
//! 10^12 major units the count stays below 2^53, so it converts to and from a
//! JSON number without loss.
//!
//! There is no FX conversion here: thresholds apply to the amount in the
//! transaction's own currency.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A positive monetary amount, exact to a thousandth of the major unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u64);

/// Why an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a finite number")]
    NotFinite,
    #[error("must be greater than 0 (at least 0.001)")]
    NotPositive,
    #[error("must be at most 1000000000000")]
    TooLarge,
    #[error("is not a decimal number")]
    NotANumber,
}

impl Amount {
    /// Thousandths per major unit.
    pub const SCALE: u64 = 1_000;
    /// The largest amount accepted, in major units.
    pub const MAX_MAJOR: f64 = 1e12;
    pub const ZERO: Amount = Amount(0);

    /// Accepts a finite number in `(0, 10^12]`, rounded to a thousandth.
    pub fn parse(major: f64) -> Result<Amount, AmountError> {
        if !major.is_finite() {
            return Err(AmountError::NotFinite);
        }
        if major > Self::MAX_MAJOR {
            return Err(AmountError::TooLarge);
        }
        // In range, so the product is below 2^53 and the cast is exact.
        let thousandths = (major * Self::SCALE as f64).round();
        if thousandths < 1.0 {
            return Err(AmountError::NotPositive);
        }
        Ok(Amount(thousandths as u64))
    }

    /// Accepts decimal text such as `"12.50"` (clients that send amounts as
    /// strings to avoid float rounding); `"NaN"` and `"inf"` are not finite.
    pub fn parse_str(text: &str) -> Result<Amount, AmountError> {
        let value: f64 = text.trim().parse().map_err(|_| AmountError::NotANumber)?;
        Amount::parse(value)
    }

    /// An amount from thousandths of the major unit (tests, thresholds).
    pub const fn from_thousandths(thousandths: u64) -> Amount {
        Amount(thousandths)
    }

    pub const fn thousandths(self) -> u64 {
        self.0
    }

    /// The amount in major units, for statistics and display.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Sums never wrap: a window of maximal amounts saturates instead.
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / Self::SCALE, self.0 % Self::SCALE)
    }
}

/// Serialised as a JSON number of major units (`12.5`), exactly.
impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let major = f64::deserialize(deserializer)?;
        Amount::parse(major).map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217 currency, serialised as its three-letter code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

/// The code is not an ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not an ISO 4217 currency code")]
pub struct UnknownCurrency;

impl Currency {
    /// Accepts a three-letter ISO 4217 code, in any letter case.
    pub fn parse(code: &str) -> Result<Currency, UnknownCurrency> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(UnknownCurrency);
        }
        let upper = [
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ];
        let upper = std::str::from_utf8(&upper).map_err(|_| UnknownCurrency)?;
        iso_currency::Currency::from_code(upper)
            .map(Currency)
            .ok_or(UnknownCurrency)
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Currency, D::Error> {
        let code = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rounds_to_thousandths() {
        assert_eq!(Amount::parse(19.99).unwrap().thousandths(), 19_990);
        assert_eq!(Amount::parse(0.0016).unwrap().thousandths(), 2);
        assert_eq!(
            Amount::parse(1e12).unwrap().thousandths(),
            1_000_000_000_000_000
        );
        assert_eq!(Amount::parse_str(" 12.50 ").unwrap().to_string(), "12.500");
    }

    #[test]
    fn refuses_what_is_not_a_positive_finite_amount() {
        assert_eq!(Amount::parse(f64::NAN), Err(AmountError::NotFinite));
        assert_eq!(Amount::parse(f64::INFINITY), Err(AmountError::NotFinite));
        assert_eq!(Amount::parse(0.0), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse(-5.0), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse(0.0004), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse(1.000_1e12), Err(AmountError::TooLarge));
        assert_eq!(Amount::parse_str("NaN"), Err(AmountError::NotFinite));
        assert_eq!(Amount::parse_str("12,5"), Err(AmountError::NotANumber));
    }

    #[test]
    fn currency_codes() {
        assert_eq!(Currency::parse("usd").unwrap().code(), "USD");
        assert_eq!(Currency::parse("KWD").unwrap().to_string(), "KWD");
        assert!(Currency::parse("ZZZ").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("ÜSD").is_err());
        let json = serde_json::to_string(&Currency::parse("EUR").unwrap()).unwrap();
        assert_eq!(json, "\"EUR\"");
    }

    proptest! {
        #[test]
        fn amount_json_round_trip_is_exact(thousandths in 1u64..=1_000_000_000_000_000) {
            let amount = Amount::from_thousandths(thousandths);
            let json = serde_json::to_string(&amount).unwrap();
            let back: Amount = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, amount);
        }
    }
}
