//! `unusual_hour`: activity in an hour of the day in which the customer had
//! at most `max_prior_at_hour` earlier transactions (0: never active then),
//! once there are `min_history` of them.
//!
//! Version 2 adds two switches. `local_time` reads the hour in the card
//! holder's local solar time (see
//! [`CustomerState::local_hour`](crate::aggregate::CustomerState::local_hour))
//! instead of UTC: "off hours" is about when the person is asleep, and 03:00
//! UTC is the afternoon in Sydney. `night` narrows the rule to a band of
//! hours (`[from, to)`, wrapping past midnight) and counts the customer's
//! earlier transactions in the whole band, not in the one hour: a purchase
//! at 03:00 from a customer who was never active at night, rather than at
//! any hour a week of history happens not to cover (which is most hours for
//! most people, and was too common to mean anything).

use super::{Comparison, Finding, Subject};
use crate::stats::{HourHistogram, in_band};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_history: u32,
    pub max_prior_at_hour: u32,
    /// Read hours in the card holder's local solar time (false: UTC, as
    /// version 1 did; what a ruleset without the key gets).
    #[serde(default)]
    pub local_time: bool,
    /// Only hours in `[from, to)` (0..=23, wrapping when from > to) can
    /// fire, and the earlier transactions counted are those in the band.
    /// None: any hour, counting that hour only (version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub night: Option<[u8; 2]>,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let history = s.state.transaction_count();
    if history < u64::from(t.min_history) {
        return None;
    }
    let (hour, hours, clock) = if t.local_time {
        (s.state.local_hour(s.tx), s.state.local_hours(), "local")
    } else {
        (
            HourHistogram::hour_of(s.tx.timestamp),
            s.state.hours(),
            "UTC",
        )
    };
    let (seen, when) = match t.night {
        Some([from, to]) => {
            let (from, to) = (usize::from(from), usize::from(to));
            if !in_band(hour, from, to) {
                return None;
            }
            (
                hours.count_between(from, to),
                format!("between {from:02}:00 and {to:02}:00 {clock} (this one at {hour:02}:xx)"),
            )
        }
        None => (
            hours.count_at(hour),
            format!("in the {hour:02}:00 {clock} hour"),
        ),
    };
    (seen <= t.max_prior_at_hour).then(|| Finding {
        observed: seen.into(),
        comparison: Comparison::AtMost,
        threshold: t.max_prior_at_hour.into(),
        detail: format!("{seen} of {history} earlier transactions were {when}"),
    })
}
