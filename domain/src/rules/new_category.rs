//! `new_category`: the first use of a merchant category by a customer with at
//! least `min_history` earlier transactions.
//!
//! Version 2 can narrow it to what fraud teams watch: the first purchase in
//! a category from `categories` (empty: any category, as version 1), for an
//! amount at least `min_ratio` times the customer's usual purchase (the mean
//! of their earlier purchases; 0: any amount, as version 1). The categories
//! a ruleset lists are its own judgement, typically cash equivalents (gift
//! cards, crypto) and goods that resell easily (electronics, jewelry,
//! luxury goods): what a stolen card is turned into money with. A customer
//! who has bought in such a category before, or whose first such purchase is
//! an ordinary basket for them, does not fire.

use super::{Comparison, Finding, Subject};
use crate::text::MerchantCategory;
use crate::transaction::TransactionType;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_history: u32,
    /// Only these categories can fire (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<MerchantCategory>,
    /// The amount must be at least this many times the customer's mean
    /// purchase (0: any amount).
    #[serde(default)]
    pub min_ratio: f64,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let category = s.tx.merchant_category.as_ref()?;
    let history = s.state.transaction_count();
    if history < u64::from(t.min_history)
        || !s.state.category_is_new(category)
        || !(t.categories.is_empty() || t.categories.contains(category))
    {
        return None;
    }
    if t.min_ratio <= 0.0 {
        return Some(Finding {
            observed: 0.0,
            comparison: Comparison::AtMost,
            threshold: 0.0,
            detail: format!(
                "first use of merchant category '{category}' after {history} transactions"
            ),
        });
    }
    if s.tx.transaction_type == Some(TransactionType::Refund) {
        return None;
    }
    let usual = s.state.purchase_stats();
    let amount = s.entry.amount.as_f64();
    let ratio = amount / usual.mean();
    (usual.count() > 0 && usual.mean() > 0.0 && ratio >= t.min_ratio).then(|| Finding {
        observed: ratio,
        comparison: Comparison::AtLeast,
        threshold: t.min_ratio,
        detail: format!(
            "first use of merchant category '{category}' after {history} transactions, \
             {amount:.2} = {ratio:.1} x the usual purchase {:.2}",
            usual.mean()
        ),
    })
}
