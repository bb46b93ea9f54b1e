//! `amount_anomaly`: the amount is above mean + `sigmas` standard deviations
//! of the customer's own earlier amounts, once there are `min_history` of
//! them. The deviation used is at least `min_std_dev_ratio` x mean: a
//! customer who always paid exactly 20.00 would otherwise have a deviation of
//! 0 and be flagged for paying 20.01.

use super::{Comparison, Finding, Subject};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub sigmas: f64,
    pub min_history: u32,
    pub min_std_dev_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            sigmas: 4.0,
            min_history: 10,
            min_std_dev_ratio: 0.1,
        }
    }
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let stats = s.state.amount_stats();
    if stats.count() < u64::from(t.min_history) {
        return None;
    }
    let std_dev = stats.std_dev().max(t.min_std_dev_ratio * stats.mean());
    let limit = stats.mean() + t.sigmas * std_dev;
    let amount = s.entry.amount.as_f64();
    (amount > limit).then(|| Finding {
        observed: amount,
        comparison: Comparison::GreaterThan,
        threshold: limit,
        detail: format!(
            "amount {amount:.2} above mean {:.2} + {} x {std_dev:.2} over {} transactions",
            stats.mean(),
            t.sigmas,
            stats.count()
        ),
    })
}
