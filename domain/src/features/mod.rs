//! The feature catalogue: named, typed, documented, versioned features of a
//! transaction, computed only from what was known before it (ADR 0014).
//!
//! "Known before" is the log's order: the customer's state folded from the
//! events before the transaction, the merchant and category counts as of
//! the position the decision recorded (`crate::peers`), the transaction
//! itself and the rules' findings on it. Windows end at the transaction's
//! own event time, so a late transaction is described as of when it
//! happened. One function ([`compute`]) serves the live decision, backtest,
//! replay, training and export: what a model learns from is exactly what it
//! is scored on.
//!
//! A feature is an `f64`; `NaN` means unknown (no history, no place, no
//! merchant), which the models treat as missing, and JSON writes as `null`.
//! Flags are 0 or 1. Names are stable identifiers (expressions say
//! `f.amount_to_mean`): never rename one; bump [`VERSION`] when a
//! feature's meaning changes.

mod catalogue;
mod compute;
mod replay;

pub use catalogue::{CATALOGUE, COUNT, F, Feature, Kind, VERSION};
pub use compute::{Inputs, compute};
pub use replay::{FeatureReplay, Row};

/// One transaction's features, in catalogue order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features([f64; COUNT]);

impl Default for Features {
    fn default() -> Self {
        Features([f64::NAN; COUNT])
    }
}

impl Features {
    pub fn get(&self, f: F) -> f64 {
        self.0[f as usize]
    }

    pub fn set(&mut self, f: F, value: f64) {
        self.0[f as usize] = value;
    }

    pub fn set_flag(&mut self, f: F, flag: bool) {
        self.set(f, if flag { 1.0 } else { 0.0 });
    }

    /// The values in catalogue order.
    pub fn values(&self) -> &[f64; COUNT] {
        &self.0
    }

    /// `(name, value)` in catalogue order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        CATALOGUE
            .iter()
            .zip(self.0.iter())
            .map(|(f, v)| (f.name, *v))
    }

    /// The value of the feature called `name`.
    pub fn by_name(&self, name: &str) -> Option<f64> {
        catalogue::index_of(name).map(|i| self.0[i])
    }

    /// A JSON object, `null` for unknown values.
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .named()
            .map(|(name, v)| {
                let value = serde_json::Number::from_f64(v)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number);
                (name.to_owned(), value)
            })
            .collect();
        serde_json::Value::Object(map)
    }

    /// Equal value for value, unknown equal to unknown (what "the same
    /// features" means for the live-versus-replay check).
    pub fn same_as(&self, other: &Features) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .all(|(a, b)| (a.is_nan() && b.is_nan()) || a == b)
    }

    /// Names of the features that differ from `other` (for test messages).
    pub fn differences(&self, other: &Features) -> Vec<String> {
        self.named()
            .zip(other.0.iter())
            .filter(|((_, a), b)| !((a.is_nan() && b.is_nan()) || a == *b))
            .map(|((name, a), b)| format!("{name}: {a} vs {b}"))
            .collect()
    }
}
