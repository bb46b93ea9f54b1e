//! `impossible_travel`: the speed implied between this card-present
//! transaction and its neighbouring card-present transactions in event time
//! (the one before, and for a late transaction also the one after) is over
//! `max_speed_kmh`, by great-circle distance.
//!
//! Two guards against noise: pairs closer than `min_distance_km` never fire
//! (terminal coordinates are often a merchant's registered address, off by
//! kilometres), and the time between two transactions counts as at least
//! `min_interval_secs` (two swipes in the same second would otherwise imply
//! an infinite speed). Card-present is defined on
//! [`Transaction::is_card_present`](crate::transaction::Transaction::is_card_present).

use super::{Comparison, Finding, Subject};
use crate::window::Sighting;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub max_speed_kmh: f64,
    pub min_distance_km: f64,
    pub min_interval_secs: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_speed_kmh: 900.0,
            min_distance_km: 50.0,
            min_interval_secs: 60,
        }
    }
}

/// A trip between two sightings that breaks the speed limit.
struct Trip {
    km: f64,
    minutes: f64,
    kmh: f64,
}

fn trip(t: &Thresholds, here: Sighting, there: Sighting) -> Option<Trip> {
    let km = here.place.distance_km(&there.place);
    let secs = (here.at - there.at).num_seconds().unsigned_abs();
    let secs = secs.max(t.min_interval_secs.into()) as f64;
    let kmh = km / (secs / 3600.0);
    (km >= t.min_distance_km && kmh > t.max_speed_kmh).then_some(Trip {
        km,
        minutes: secs / 60.0,
        kmh,
    })
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let place = s.entry.card_present_at?;
    let here = Sighting {
        at: s.entry.at,
        place,
    };
    let window = s.state.window();
    let before = window
        .sighting_before(here.at)
        .and_then(|p| trip(t, here, p));
    let after = window
        .sighting_after(here.at)
        .and_then(|n| trip(t, here, n));
    let worst = match (before, after) {
        (Some(b), Some(a)) => Some(if a.kmh > b.kmh { a } else { b }),
        (b, a) => b.or(a),
    }?;
    Some(Finding {
        observed: worst.kmh,
        comparison: Comparison::GreaterThan,
        threshold: t.max_speed_kmh,
        detail: format!(
            "{:.0} km in {:.0} min between card-present transactions ({:.0} km/h)",
            worst.km, worst.minutes, worst.kmh
        ),
    })
}
