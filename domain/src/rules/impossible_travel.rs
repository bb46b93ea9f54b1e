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
//!
//! [`worst_trip`] is the one home of this computation: the rule calls it on
//! the customer's event-time window, and the geo read model on the sightings
//! it remembers (a sorted slice of [`SightingEntry`]), so the two cannot
//! drift apart.

use super::{Comparison, Finding, Subject};
use crate::geo::Coordinates;
use crate::window::{RecentWindow, Sighting};
use chrono::{DateTime, Duration, Utc};
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

/// A trip between a new card-present sighting and a known one that breaks
/// the speed limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trip<T> {
    /// The known sighting at the other end, as the caller keeps it.
    pub other: T,
    pub km: f64,
    /// Whole seconds between the two, at least `min_interval_secs`.
    pub secs: u64,
    /// `km / hours()`.
    pub kmh: f64,
}

impl<T> Trip<T> {
    pub fn hours(&self) -> f64 {
        self.secs as f64 / 3600.0
    }

    pub fn minutes(&self) -> f64 {
        self.secs as f64 / 60.0
    }
}

/// A customer's known card-present sightings in event-time order, ties in
/// arrival order, each with what the caller wants back in a [`Trip`].
pub trait Sightings {
    type Other;

    /// The newest at or before `at` (the last to arrive among equal times).
    fn before(&self, at: DateTime<Utc>) -> Option<(Sighting, Self::Other)>;

    /// The oldest strictly after `at`.
    fn after(&self, at: DateTime<Utc>) -> Option<(Sighting, Self::Other)>;

    /// Every one with `from <= at <= to`, oldest first.
    fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = (Sighting, Self::Other)>;
}

/// The rule's view: the card-present entries of the window (and, before
/// them, the newest sighting that aged out of it).
impl Sightings for RecentWindow {
    type Other = ();

    fn before(&self, at: DateTime<Utc>) -> Option<(Sighting, ())> {
        self.sighting_before(at).map(|s| (s, ()))
    }

    fn after(&self, at: DateTime<Utc>) -> Option<(Sighting, ())> {
        self.sighting_after(at).map(|s| (s, ()))
    }

    fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = (Sighting, ())> {
        RecentWindow::between(self, from, to).filter_map(|e| {
            e.card_present_at
                .map(|place| (Sighting { at: e.at, place }, ()))
        })
    }
}

/// An entry of a caller's list that may be a card-present sighting.
pub trait SightingEntry {
    /// Its event time: the list is sorted by it, ties in arrival order.
    fn at(&self) -> DateTime<Utc>;

    /// Where the card was; `None` when it was not card-present.
    fn card_present_at(&self) -> Option<Coordinates>;
}

/// A caller's sorted list (the geo read model's remembered sightings):
/// trips name the entry itself.
impl<'a, T: SightingEntry> Sightings for &'a [T] {
    type Other = &'a T;

    fn before(&self, at: DateTime<Utc>) -> Option<(Sighting, &'a T)> {
        let hi = self.partition_point(|e| e.at() <= at);
        self[..hi].iter().rev().find_map(sighting)
    }

    fn after(&self, at: DateTime<Utc>) -> Option<(Sighting, &'a T)> {
        let lo = self.partition_point(|e| e.at() <= at);
        self[lo..].iter().find_map(sighting)
    }

    fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = (Sighting, &'a T)> {
        let lo = self.partition_point(|e| e.at() < from);
        let hi = self.partition_point(|e| e.at() <= to).max(lo);
        self[lo..hi].iter().filter_map(sighting)
    }
}

fn sighting<T: SightingEntry>(e: &T) -> Option<(Sighting, &T)> {
    let place = e.card_present_at()?;
    Some((Sighting { at: e.at(), place }, e))
}

/// The trip between two sightings if it breaks the limit.
fn trip<T>(t: &Thresholds, here: Sighting, (there, other): (Sighting, T)) -> Option<Trip<T>> {
    let km = here.place.distance_km(&there.place);
    let secs = (here.at - there.at).num_seconds().unsigned_abs();
    let secs = secs.max(t.min_interval_secs.into());
    let kmh = km / (secs as f64 / 3600.0);
    (km >= t.min_distance_km && kmh > t.max_speed_kmh).then_some(Trip {
        other,
        km,
        secs,
        kmh,
    })
}

/// The fastest trip over the limit between the new card-present sighting
/// `here` and the `known` ones (which do not include it): the neighbour
/// before, the neighbour after, and every one within `lookback_secs` on
/// either side. On equal speeds the last of them in that order wins.
pub fn worst_trip<S: Sightings>(
    t: &Thresholds,
    here: Sighting,
    known: &S,
) -> Option<Trip<S::Other>> {
    let lookback = Duration::seconds(t.lookback_secs.into());
    let from = here.at.checked_sub_signed(lookback).unwrap_or(here.at);
    let to = here.at.checked_add_signed(lookback).unwrap_or(here.at);
    [known.before(here.at), known.after(here.at)]
        .into_iter()
        .flatten()
        .chain(known.between(from, to))
        .filter_map(|there| trip(t, here, there))
        .max_by(|a, b| a.kmh.total_cmp(&b.kmh))
}

pub fn evaluate(t: &Thresholds, s: Subject<'_>) -> Option<Finding> {
    let place = s.entry.card_present_at?;
    let here = Sighting {
        at: s.entry.at,
        place,
    };
    let worst = worst_trip(t, here, s.state.window())?;
    Some(Finding {
        observed: worst.kmh,
        comparison: Comparison::GreaterThan,
        threshold: t.max_speed_kmh,
        detail: format!(
            "{:.0} km in {:.0} min between card-present transactions ({:.0} km/h)",
            worst.km,
            worst.minutes(),
            worst.kmh
        ),
    })
}
