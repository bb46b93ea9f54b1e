//! `new_country`: a card-present transaction (see
//! [`Transaction::is_card_present`](crate::transaction::Transaction::is_card_present))
//! in a country where the customer, with at least `min_history` earlier
//! transactions, has never transacted. The card is physically somewhere
//! it has never been: the first purchase of a cloned card abroad, before
//! there is a second one to make `impossible_travel` or `distinct_cities`
//! fire. A customer's own first trip abroad fires too, so the weight is a
//! fraud team's call: banks ask for a travel notice for a reason.
//!
//! Online purchases never fire: a foreign web shop's country says where the
//! merchant is, not where the card is. Once the customer's capped set of
//! countries is full (`history.max_countries`), no country is new.

use super::{Comparison, Finding, Subject};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_history: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    s.entry.card_present_at?;
    let country = s.entry.country?;
    let history = s.state.transaction_count();
    let fires = history >= u64::from(t.min_history) && s.state.country_is_new(country);
    fires.then(|| Finding {
        observed: 0.0,
        comparison: Comparison::AtMost,
        threshold: 0.0,
        detail: format!(
            "card present in {country}, a country not seen in {history} earlier transactions \
             (known: {})",
            s.state
                .countries()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}
