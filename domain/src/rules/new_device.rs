//! `new_device`: a web or app transaction from a device (user agent and IP
//! address, see [`crate::devices`]) that this established customer (at
//! least `min_history` earlier transactions) had not used before, or first
//! used less than `fresh_secs` ago. The freshness keeps the whole run of a
//! takeover or a card-testing burst flagged, not only its first purchase:
//! the second purchase from a browser that appeared a minute ago is no less
//! suspicious than the first. A customer's own new phone fires too, which is
//! why the weight is meant to stay under an alert on its own; it alerts
//! together with another signal (an amount above the customer's usual, an
//! unusual hour, a burst).

use super::{Comparison, Finding, Subject, span};
use crate::devices::DeviceKey;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_history: u32,
    /// A device first seen at most this long before still counts as new
    /// (0: only its very first use).
    pub fresh_secs: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let key = DeviceKey::of(s.tx)?;
    let history = s.state.transaction_count();
    if history < u64::from(t.min_history) {
        return None;
    }
    let (age, uses) = match s.state.devices().get(key) {
        // A late transaction from a device first seen after it was new then.
        Some(d) => ((s.tx.timestamp - d.first_seen).num_seconds().max(0), d.uses),
        None => (0, 0),
    };
    (age <= i64::from(t.fresh_secs)).then(|| Finding {
        observed: age as f64,
        comparison: Comparison::AtMost,
        threshold: t.fresh_secs.into(),
        detail: if uses == 0 {
            format!("first transaction from this device (user agent and IP) after {history} transactions")
        } else {
            format!(
                "device first used {} ago ({uses} earlier transactions from it), new after {history} transactions",
                span(u32::try_from(age).unwrap_or(u32::MAX))
            )
        },
    })
}
