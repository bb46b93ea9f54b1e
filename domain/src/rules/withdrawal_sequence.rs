//! `withdrawal_sequence`: a cash-out pattern. A withdrawal over
//! `withdrawal_over`, then at least `min_purchases` purchases under
//! `purchase_under` within `purchases_within_secs` after it, then this
//! transaction, in a country other than the withdrawal's, within
//! `international_within_secs` of the withdrawal.
//!
//! Evaluated from the event-time window rather than a state machine, so
//! late or out-of-order steps still match, and a step arriving late can
//! complete the pattern for a later transaction.

use super::{Comparison, Finding, Subject, span};
use crate::money::Amount;
use crate::transaction::TransactionType;
use crate::window::WindowEntry;
use chrono::Duration;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub withdrawal_over: Amount,
    pub purchase_under: Amount,
    pub min_purchases: u32,
    pub purchases_within_secs: u32,
    pub international_within_secs: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let country = s.entry.country?;
    let now = s.tx.timestamp;
    let window = s.state.window();
    let burst = Duration::seconds(t.purchases_within_secs.into());
    let is_start = |w: &WindowEntry| {
        w.kind == Some(TransactionType::Withdrawal)
            && w.amount > t.withdrawal_over
            && w.country.is_some_and(|c| c != country)
    };
    // Newest withdrawal first: the one closest to this transaction explains it best.
    window
        .trailing(now, Duration::seconds(t.international_within_secs.into()))
        .rev()
        .filter(|w| is_start(w))
        .find_map(|w| {
            let burst_end =
                w.at.checked_add_signed(burst)
                    .map_or(now, |end| end.min(now));
            let purchases = window
                .between(w.at, burst_end)
                .filter(|p| {
                    p.at > w.at
                        && p.kind == Some(TransactionType::Purchase)
                        && p.amount < t.purchase_under
                })
                .count();
            (purchases >= t.min_purchases as usize).then(|| Finding {
                observed: purchases as f64,
                comparison: Comparison::AtLeast,
                threshold: t.min_purchases.into(),
                detail: format!(
                    "withdrawal of {:.2} in {}, then {purchases} purchases under {:.2} within {}, \
                     then a transaction in {country} {} later",
                    w.amount.as_f64(),
                    w.country.map_or("?".into(), |c| c.to_string()),
                    t.purchase_under.as_f64(),
                    span(t.purchases_within_secs),
                    span(u32::try_from((now - w.at).num_seconds()).unwrap_or(u32::MAX)),
                ),
            })
        })
}
