//! `amount_anomaly`: the amount is above mean + `sigmas` standard deviations
//! of the customer's own earlier amounts, once there are `min_history` of
//! them. The deviation used is at least `min_std_dev_ratio` x mean: a
//! customer who always paid exactly 20.00 would otherwise have a deviation of
//! 0 and be flagged for paying 20.01.
//!
//! Version 2 (`same_kind`) compares like with like: a purchase with the
//! customer's earlier purchases, a cash withdrawal with their earlier
//! withdrawals, and never a refund (money coming back). Version 1 compared
//! everything with one mean over all amounts, so a customer's first ordinary
//! 200 from an ATM, among 20s at the coffee shop, looked like a spike. A
//! customer's first withdrawal has no basis of its own and does not fire
//! here; a large one is `velocity_amount`'s (and `withdrawal_sequence`'s).

use super::{Comparison, Finding, Subject};
use crate::transaction::TransactionType;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub sigmas: f64,
    pub min_history: u32,
    pub min_std_dev_ratio: f64,
    /// Compare with the same kind of transaction only (false: with every
    /// amount, as version 1 did; what a ruleset without the key gets).
    #[serde(default)]
    pub same_kind: bool,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let (stats, basis) = if !t.same_kind {
        (s.state.amount_stats(), "transactions")
    } else {
        match s.tx.transaction_type {
            Some(TransactionType::Refund) => return None,
            Some(TransactionType::Withdrawal) => (s.state.withdrawal_stats(), "withdrawals"),
            // v1 transactions (type unknown) are counted as purchases.
            Some(TransactionType::Purchase) | None => (s.state.purchase_stats(), "purchases"),
        }
    };
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
            "amount {amount:.2} above mean {:.2} + {} x {std_dev:.2} over {} earlier {basis}",
            stats.mean(),
            t.sigmas,
            stats.count()
        ),
    })
}
