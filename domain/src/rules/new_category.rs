//! `new_category`: the first use of a merchant category by a customer with at
//! least `min_history` earlier transactions. Weak on its own (people do try
//! new shops), so its default weight is low; it adds up with other rules.

use super::{Comparison, Finding, Subject};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_history: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { min_history: 20 }
    }
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let category = s.tx.merchant_category.as_ref()?;
    let history = s.state.transaction_count();
    let fires = history >= u64::from(t.min_history) && s.state.category_is_new(category);
    fires.then(|| Finding {
        observed: 0.0,
        comparison: Comparison::AtMost,
        threshold: 0.0,
        detail: format!("first use of merchant category '{category}' after {history} transactions"),
    })
}
