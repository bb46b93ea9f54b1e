//! The compiled form of an expression: one tree per type (`Bool`, `Num`,
//! `Str`), so the type check is done once, at compile time, and evaluating
//! is a walk with no type tests, no name look-ups and, for everything but
//! string `+` and `lowerAscii()` on text with capitals, no allocation.

use super::error::EvalError;
use crate::features::{F, Features};
use crate::transaction::Transaction;
use std::borrow::Cow;

/// What an expression evaluates against.
#[derive(Clone, Copy)]
pub(super) struct Input<'a> {
    pub tx: &'a Transaction,
    pub features: &'a Features,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// `a op b`, with IEEE semantics for numbers: every comparison with NaN
    /// is false except `!=`.
    #[inline]
    pub fn holds<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// An arithmetic operator on numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Max,
    Min,
}

impl Arith {
    #[inline]
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div => a / b,
            Arith::Rem => a % b,
            // f64::max ignores a NaN operand; an unknown stays unknown here.
            Arith::Max if a.is_nan() || b.is_nan() => f64::NAN,
            Arith::Min if a.is_nan() || b.is_nan() => f64::NAN,
            Arith::Max => a.max(b),
            Arith::Min => a.min(b),
        }
    }
}

/// A string test method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StrTest {
    StartsWith,
    EndsWith,
    Contains,
}

/// The optional string fields of a transaction (and the customer id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxStr {
    Currency,
    CustomerId,
    MerchantId,
    Category,
    TransactionType,
    PaymentMethod,
    DeviceType,
    Country,
    City,
}

impl TxStr {
    pub fn name(self) -> &'static str {
        match self {
            TxStr::Currency => "currency",
            TxStr::CustomerId => "customer_id",
            TxStr::MerchantId => "merchant_id",
            TxStr::Category => "category",
            TxStr::TransactionType => "transaction_type",
            TxStr::PaymentMethod => "payment_method",
            TxStr::DeviceType => "device_type",
            TxStr::Country => "country",
            TxStr::City => "city",
        }
    }

    /// The field's text, if the transaction has it.
    #[inline]
    pub fn get(self, tx: &Transaction) -> Option<&str> {
        match self {
            TxStr::Currency => tx.currency.map(|c| c.code()),
            TxStr::CustomerId => Some(tx.customer_id.as_str()),
            TxStr::MerchantId => tx.merchant_id.as_ref().map(|m| m.as_str()),
            TxStr::Category => tx.merchant_category.as_ref().map(|c| c.as_str()),
            TxStr::TransactionType => tx.transaction_type.map(|t| t.as_str()),
            TxStr::PaymentMethod => tx.payment_method.map(|p| p.as_str()),
            TxStr::DeviceType => tx.device_info.as_ref().map(|d| d.device_type.as_str()),
            TxStr::Country => tx.location.as_ref().map(|l| l.country.as_str()),
            TxStr::City => tx.location.as_ref().map(|l| l.city.as_str()),
        }
    }

    #[inline]
    fn read(self, tx: &Transaction) -> Result<&str, EvalError> {
        self.get(tx).ok_or(EvalError::Absent { field: self.name() })
    }
}

/// A variable an expression reads (for `observed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Var {
    Feature(F),
    Amount,
    /// `tx.hour_local`: the `local_hour` feature.
    HourLocal,
    CardPresent,
    Str(TxStr),
}

impl Var {
    /// The value as an analyst reads it in an explanation.
    pub fn show(self, input: Input<'_>) -> String {
        match self {
            Var::Feature(f) => brief(input.features.get(f)),
            Var::Amount => brief(input.tx.amount.as_f64()),
            Var::HourLocal => brief(input.features.get(F::LocalHour)),
            Var::CardPresent => input.tx.is_card_present().to_string(),
            Var::Str(field) => field.get(input.tx).unwrap_or("absent").to_owned(),
        }
    }
}

/// A number briefly: integers without a fraction, others to 4 decimals
/// (trailing zeros dropped), the very large and very small in scientific
/// notation; NaN is "unknown".
pub(super) fn brief(v: f64) -> String {
    fn trim(text: &str) -> &str {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            text
        }
    }
    let magnitude = v.abs();
    if v.is_nan() {
        "unknown".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if v == 0.0 {
        "0".to_owned()
    } else if v.fract() == 0.0 && magnitude < 1e15 {
        // Counts, flags and whole amounts: integer formatting is much
        // cheaper than float formatting with a precision.
        (v as i64).to_string()
    } else if !(1e-3..1e15).contains(&magnitude) {
        let text = format!("{v:.3e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim(mantissa)),
            None => text,
        }
    } else {
        trim(&format!("{v:.4}")).to_owned()
    }
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Bool {
    Const(bool),
    CardPresent,
    Not(Box<Bool>),
    And(Box<Bool>, Box<Bool>),
    Or(Box<Bool>, Box<Bool>),
    If(Box<Bool>, Box<Bool>, Box<Bool>),
    /// The most common rule shape, `f.x > 10`, without two boxes to follow.
    FeatureCmp(Cmp, F, f64),
    Num(Cmp, Box<Num>, Box<Num>),
    Str(Cmp, Box<Str>, Box<Str>),
    /// `==` (true) or `!=` (false) between two bools.
    Equal(bool, Box<Bool>, Box<Bool>),
    NumIn(Box<Num>, Box<[f64]>),
    /// A transaction field in a list of strings (`tx.country in ['NG']`).
    FieldIn(TxStr, Box<[Box<str>]>),
    StrIn(Box<Str>, Box<[Box<str>]>),
    /// `has(f.x)`: the feature is known.
    Known(F),
    /// `has(tx.x)`: the transaction has the field.
    Present(TxStr),
    StrTest(StrTest, Box<Str>, Box<Str>),
}

/// A number expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Num {
    Const(f64),
    Feature(F),
    Amount,
    Neg(Box<Num>),
    Arith(Arith, Box<Num>, Box<Num>),
    /// `int(x)`: towards zero.
    Trunc(Box<Num>),
    /// `size(s)`: characters (code points).
    Size(Box<Str>),
    If(Box<Bool>, Box<Num>, Box<Num>),
}

/// A string expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Str {
    Const(Box<str>),
    Field(TxStr),
    Concat(Box<Str>, Box<Str>),
    Lower(Box<Str>),
    If(Box<Bool>, Box<Str>, Box<Str>),
}

impl Bool {
    /// CEL's logic: `&&` and `||` evaluate left to right, stop as soon as
    /// one side decides, and an error on one side is absorbed when the other
    /// side decides (`false && error` and `error && false` are false).
    pub fn eval(&self, input: Input<'_>) -> Result<bool, EvalError> {
        match self {
            Bool::Const(b) => Ok(*b),
            Bool::CardPresent => Ok(input.tx.is_card_present()),
            Bool::Not(a) => Ok(!a.eval(input)?),
            Bool::And(a, b) => match a.eval(input) {
                Ok(false) => Ok(false),
                Ok(true) => b.eval(input),
                Err(e) => match b.eval(input) {
                    Ok(false) => Ok(false),
                    _ => Err(e),
                },
            },
            Bool::Or(a, b) => match a.eval(input) {
                Ok(true) => Ok(true),
                Ok(false) => b.eval(input),
                Err(e) => match b.eval(input) {
                    Ok(true) => Ok(true),
                    _ => Err(e),
                },
            },
            Bool::If(c, a, b) => {
                if c.eval(input)? {
                    a.eval(input)
                } else {
                    b.eval(input)
                }
            }
            Bool::FeatureCmp(op, f, c) => Ok(op.holds(&input.features.get(*f), c)),
            Bool::Num(op, a, b) => Ok(op.holds(&a.eval(input)?, &b.eval(input)?)),
            Bool::Str(op, a, b) => {
                let a = a.eval(input)?;
                Ok(op.holds(a.as_ref(), b.eval(input)?.as_ref()))
            }
            Bool::Equal(equal, a, b) => Ok((a.eval(input)? == b.eval(input)?) == *equal),
            Bool::NumIn(a, list) => {
                let v = a.eval(input)?;
                Ok(list.contains(&v))
            }
            Bool::FieldIn(field, list) => {
                let v = field.read(input.tx)?;
                Ok(list.iter().any(|s| **s == *v))
            }
            Bool::StrIn(a, list) => {
                let v = a.eval(input)?;
                Ok(list.iter().any(|s| **s == *v))
            }
            Bool::Known(f) => Ok(!input.features.get(*f).is_nan()),
            Bool::Present(field) => Ok(field.get(input.tx).is_some()),
            Bool::StrTest(test, a, b) => {
                let a = a.eval(input)?;
                let b = b.eval(input)?;
                Ok(match test {
                    StrTest::StartsWith => a.starts_with(b.as_ref()),
                    StrTest::EndsWith => a.ends_with(b.as_ref()),
                    StrTest::Contains => a.contains(b.as_ref()),
                })
            }
        }
    }
}

impl Num {
    pub fn eval(&self, input: Input<'_>) -> Result<f64, EvalError> {
        match self {
            Num::Const(v) => Ok(*v),
            Num::Feature(f) => Ok(input.features.get(*f)),
            Num::Amount => Ok(input.tx.amount.as_f64()),
            Num::Neg(a) => Ok(-a.eval(input)?),
            Num::Arith(op, a, b) => Ok(op.apply(a.eval(input)?, b.eval(input)?)),
            Num::Trunc(a) => Ok(a.eval(input)?.trunc()),
            Num::Size(s) => Ok(s.eval(input)?.chars().count() as f64),
            Num::If(c, a, b) => {
                if c.eval(input)? {
                    a.eval(input)
                } else {
                    b.eval(input)
                }
            }
        }
    }
}

impl Str {
    pub fn eval<'a>(&'a self, input: Input<'a>) -> Result<Cow<'a, str>, EvalError> {
        match self {
            Str::Const(s) => Ok(Cow::Borrowed(s)),
            Str::Field(field) => field.read(input.tx).map(Cow::Borrowed),
            Str::Concat(a, b) => {
                let mut text = a.eval(input)?.into_owned();
                text.push_str(&b.eval(input)?);
                Ok(Cow::Owned(text))
            }
            Str::Lower(a) => Ok(lower_ascii(a.eval(input)?)),
            Str::If(c, a, b) => {
                if c.eval(input)? {
                    a.eval(input)
                } else {
                    b.eval(input)
                }
            }
        }
    }
}

/// ASCII letters to lower case; borrowed when there is nothing to change.
pub(super) fn lower_ascii(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_printed_briefly() {
        assert_eq!(brief(950.0), "950");
        assert_eq!(brief(-3.0), "-3");
        assert_eq!(brief(0.0), "0");
        assert_eq!(brief(2.5), "2.5");
        assert_eq!(brief(1.0 / 3.0), "0.3333");
        assert_eq!(brief(0.00012), "1.2e-4");
        assert_eq!(brief(2e20), "2e20");
        assert_eq!(brief(f64::NAN), "unknown");
        assert_eq!(brief(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn max_and_min_keep_unknown_unknown() {
        assert!(Arith::Max.apply(f64::NAN, 1.0).is_nan());
        assert!(Arith::Min.apply(1.0, f64::NAN).is_nan());
        assert_eq!(Arith::Max.apply(1.0, 2.0), 2.0);
        assert!(Arith::Div.apply(0.0, 0.0).is_nan());
        assert_eq!(Arith::Div.apply(1.0, 0.0), f64::INFINITY);
    }
}
