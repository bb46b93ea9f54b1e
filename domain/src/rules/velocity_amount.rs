//! `velocity_amount`: the money spent (purchases and withdrawals, this one
//! included; refunds are money coming back and do not count) in the
//! `window_secs` of event time ending at this transaction is over `max_sum`.
//! Summed exactly in thousandths, so "exactly 1,000" never fires.

use super::{Comparison, Finding, Subject, span};
use crate::money::Amount;
use chrono::Duration;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub max_sum: Amount,
    pub window_secs: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let window = Duration::seconds(t.window_secs.into());
    let own = if s.entry.is_debit() {
        s.entry.amount
    } else {
        Amount::ZERO
    };
    let sum = s
        .state
        .window()
        .trailing(s.tx.timestamp, window)
        .filter(|e| e.is_debit())
        .fold(own, |sum, e| sum.saturating_add(e.amount));
    (sum > t.max_sum).then(|| Finding {
        observed: sum.as_f64(),
        comparison: Comparison::GreaterThan,
        threshold: t.max_sum.as_f64(),
        detail: format!("{:.2} spent in {}", sum.as_f64(), span(t.window_secs)),
    })
}
