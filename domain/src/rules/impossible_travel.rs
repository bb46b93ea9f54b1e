//! `impossible_travel`: the speed implied between this card-present
//! transaction and its neighbouring card-present transactions in event time
//! (the one before, and for a late transaction also the one after) is over
//! `max_speed_kmh`, by great-circle distance.
//!
//! Version 2 also compares with every card-present transaction within
//! `lookback_secs` on either side, not only the neighbour: a cloned card
//! used three times in a far city is impossible against the holder's
//! purchase at home for all three, while the neighbour of the second and
//! third is the first, a few streets away. Genuine travel never fires for
//! it: when each hop is possible, so is any chain of them (distances add up
//! at most as fast as the times do).
//!
//! Two guards against noise: pairs closer than `min_distance_km` never fire
//! (terminal coordinates are often a merchant's registered address, off by
//! kilometres), and the time between two transactions counts as at least
//! `min_interval_secs` (two swipes in the same second would otherwise imply
//! an infinite speed). Card-present is defined on
//! [`Transaction::is_card_present`](crate::transaction::Transaction::is_card_present).

use super::{Comparison, Finding, Subject};
use crate::window::Sighting;
use chrono::Duration;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub max_speed_kmh: f64,
    pub min_distance_km: f64,
    pub min_interval_secs: u32,
    /// Also compare with every card-present transaction this close in time
    /// (0: the neighbours only, as version 1 did).
    #[serde(default)]
    pub lookback_secs: u32,
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
    let lookback = Duration::seconds(t.lookback_secs.into());
    let from = here.at.checked_sub_signed(lookback).unwrap_or(here.at);
    let to = here.at.checked_add_signed(lookback).unwrap_or(here.at);
    let within = window
        .between(from, to)
        .filter_map(|e| e.card_present_at.map(|place| Sighting { at: e.at, place }));
    let worst = [
        window.sighting_before(here.at),
        window.sighting_after(here.at),
    ]
    .into_iter()
    .flatten()
    .chain(within)
    .filter_map(|there| trip(t, here, there))
    .max_by(|a, b| a.kmh.total_cmp(&b.kmh))?;
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
