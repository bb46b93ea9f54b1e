//! `card_testing`: a small purchase from a new device. Whoever holds stolen
//! card details first checks that they work with a purchase too small to be
//! noticed, from their own browser or phone. Fires on a web or app purchase
//! of at most `max_ratio` times the customer's usual purchase (the mean of
//! at least `min_history` earlier purchases) from a device (user agent and
//! IP address, see [`crate::devices`]) the customer had not used before, or
//! first used at most `fresh_secs` ago.
//!
//! `new_device` alone fires on a customer's own new laptop; a new device
//! whose first purchase is a fraction of what the customer usually pays is
//! much rarer, and it is the moment before the real spending starts.

use super::{Comparison, Finding, Subject, span};
use crate::devices::DeviceKey;
use crate::transaction::TransactionType;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub max_ratio: f64,
    pub min_history: u32,
    /// A device first seen at most this long before still counts as new
    /// (0: only its very first use).
    pub fresh_secs: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    if matches!(
        s.tx.transaction_type,
        Some(TransactionType::Withdrawal | TransactionType::Refund)
    ) {
        return None;
    }
    let key = DeviceKey::of(s.tx)?;
    let usual = s.state.purchase_stats();
    if usual.count() < u64::from(t.min_history) || usual.mean() <= 0.0 {
        return None;
    }
    let age = match s.state.devices().get(key) {
        Some(d) => (s.tx.timestamp - d.first_seen).num_seconds().max(0),
        None => 0,
    };
    if age > i64::from(t.fresh_secs) {
        return None;
    }
    let amount = s.entry.amount.as_f64();
    let ratio = amount / usual.mean();
    (ratio <= t.max_ratio).then(|| Finding {
        observed: ratio,
        comparison: Comparison::AtMost,
        threshold: t.max_ratio,
        detail: format!(
            "{amount:.2} = {ratio:.2} x the usual purchase {:.2}, from a device {}",
            usual.mean(),
            if age == 0 {
                "never used before".to_owned()
            } else {
                format!(
                    "first used {} ago",
                    span(u32::try_from(age).unwrap_or(u32::MAX))
                )
            }
        ),
    })
}
