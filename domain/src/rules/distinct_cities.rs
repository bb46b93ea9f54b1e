//! `distinct_cities`: transactions in more than `max_cities` distinct cities
//! (this one's included) in the `window_secs` of event time ending at this
//! transaction. A city is its lower-cased name within its country, so
//! "Paris, FR" and "Paris, US" are two cities.

use super::{Comparison, Finding, Subject, span};
use chrono::Duration;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub max_cities: u32,
    pub window_secs: u32,
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    // Only a transaction that names a city can add one.
    let own_city = s.entry.city.as_deref()?;
    let window = Duration::seconds(t.window_secs.into());
    // Linear de-duplication: the list holds only a few cities.
    let mut cities = vec![(s.entry.country, own_city)];
    for e in s.state.window().trailing(s.tx.timestamp, window) {
        if let Some(city) = e.city.as_deref() {
            let key = (e.country, city);
            if !cities.contains(&key) {
                cities.push(key);
            }
        }
    }
    let count = cities.len();
    (count > t.max_cities as usize).then(|| Finding {
        observed: count as f64,
        comparison: Comparison::GreaterThan,
        threshold: t.max_cities.into(),
        detail: format!("{count} distinct cities in {}", span(t.window_secs)),
    })
}
