//! `velocity_count`: more than `max_transactions` transactions (this one
//! included) in the `window_secs` of event time ending at this one.

use super::{Comparison, Finding, Subject, span};
use chrono::Duration;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub max_transactions: u32,
    pub window_secs: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let window = Duration::seconds(t.window_secs.into());
    let count = s.state.window().trailing(s.tx.timestamp, window).count() + 1;
    (count > t.max_transactions as usize).then(|| Finding {
        observed: count as f64,
        comparison: Comparison::GreaterThan,
        threshold: t.max_transactions.into(),
        detail: format!("{count} transactions in {}", span(t.window_secs)),
    })
}
