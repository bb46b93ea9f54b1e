//! `unusual_hour`: activity in a UTC hour of the day in which the customer
//! had at most `max_prior_at_hour` earlier transactions (0: never active
//! then), once there are `min_history` of them.

use super::{Comparison, Finding, Subject};
use crate::stats::HourHistogram;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_history: u32,
    pub max_prior_at_hour: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_history: 20,
            max_prior_at_hour: 0,
        }
    }
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let history = s.state.transaction_count();
    if history < u64::from(t.min_history) {
        return None;
    }
    let hour = HourHistogram::hour_of(s.tx.timestamp);
    let seen = s.state.hours().count_at(hour);
    (seen <= t.max_prior_at_hour).then(|| Finding {
        observed: seen.into(),
        comparison: Comparison::AtMost,
        threshold: t.max_prior_at_hour.into(),
        detail: format!(
            "{seen} of {history} earlier transactions were in the {hour:02}:00 UTC hour"
        ),
    })
}
