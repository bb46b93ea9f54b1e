//! `alert_follow_up`: the customer had an alerted transaction within
//! `window_secs` (event time, either side) of this one. Fraud comes in
//! episodes: once a takeover or a cloned card has been caught, the purchases
//! that follow in the same minutes are the same fraudster's. On its own it
//! must not alert (the card holder's own purchases after a false alarm would
//! all be flagged), so its weight is meant to stay under p3 and it tips a
//! transaction over only together with another signal, however weak.

use super::{Comparison, Finding, Subject, span};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub window_secs: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let alerted = s.state.last_alert_at()?;
    let gap = (s.tx.timestamp - alerted).num_seconds().unsigned_abs();
    (gap <= u64::from(t.window_secs)).then(|| Finding {
        observed: gap as f64,
        comparison: Comparison::AtMost,
        threshold: t.window_secs.into(),
        detail: format!(
            "an alert on this customer {} {}",
            span(u32::try_from(gap).unwrap_or(u32::MAX)),
            if s.tx.timestamp >= alerted {
                "earlier"
            } else {
                "later"
            }
        ),
    })
}
