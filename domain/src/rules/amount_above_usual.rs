//! `amount_above_usual`: the amount is at least `ratio` times the
//! customer's usual amount, once there are `min_history` earlier
//! transactions. "Usual" is the mean amount in the same merchant category
//! when the customer has bought in it at least `min_category_history`
//! times, else the mean over all their purchases: a family's groceries are
//! compared with their groceries, not with their coffee, while a category
//! never used before (where fraud often happens) is compared with
//! everything they buy.
//!
//! Purchases only: a cash withdrawal comes in round sums unrelated to what
//! the customer pays in shops (large ones are `amount_anomaly`'s and
//! `withdrawal_sequence`'s), and a refund is money coming back.
//!
//! A much weaker signal than `amount_anomaly` (a few times the usual, not
//! many deviations above it), meant to add up with others: a new device, an
//! unusual hour, a first-time category, a recent alert.

use super::{Comparison, Finding, Subject};
use crate::transaction::TransactionType;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub ratio: f64,
    pub min_history: u32,
    pub min_category_history: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    if matches!(
        s.tx.transaction_type,
        Some(TransactionType::Withdrawal | TransactionType::Refund)
    ) {
        return None;
    }
    let overall = s.state.purchase_stats();
    if overall.count() < u64::from(t.min_history) {
        return None;
    }
    let in_category =
        s.tx.merchant_category
            .as_ref()
            .and_then(|c| s.state.category_stats(c))
            .filter(|c| c.count() >= u64::from(t.min_category_history).max(1));
    let (usual, basis) = match in_category {
        Some(c) => (c.mean(), format!("its category ({} earlier)", c.count())),
        None => (
            overall.mean(),
            format!("all purchases ({} earlier)", overall.count()),
        ),
    };
    let amount = s.entry.amount.as_f64();
    let limit = t.ratio * usual;
    (usual > 0.0 && amount >= limit).then(|| Finding {
        observed: amount / usual,
        comparison: Comparison::AtLeast,
        threshold: t.ratio,
        detail: format!(
            "amount {amount:.2} is {:.1} x the usual {usual:.2} of {basis}",
            amount / usual
        ),
    })
}
