//! The customer's longer memory, in bounded space (ADR 0014): what the
//! features need beyond the raw 48-hour window.
//!
//! - [`DailyTotals`]: count and sum of amounts per UTC day, 31 days back
//!   from the newest day (16 bytes a day, at most 496 bytes), for the 7- and
//!   30-day windows. Whole days before the transaction's own day come from
//!   here; today's part comes from the raw window, which can cut it at the
//!   transaction's own time.
//! - [`KnownMerchants`]: 32-bit fingerprints of the merchants paid, sorted,
//!   at most `max_merchants` (4 bytes each), for "first use of this
//!   merchant".
//! - [`Places`]: the card-present places (0.1 degree cells, about 10 km),
//!   with counts, at most 8 (24 bytes each); the most used is home.

use crate::devices::Fnv;
use crate::geo::Coordinates;
use crate::ids::MerchantId;
use std::collections::VecDeque;

/// Days kept: today and the 30 before it.
const KEEP_DAYS: i32 = 31;

#[derive(Debug, Clone, Copy, PartialEq)]
struct DayTotal {
    day: i32,
    count: u32,
    sum: f64,
}

/// Count and sum of amounts per UTC day, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyTotals(VecDeque<DayTotal>);

impl DailyTotals {
    /// Counts a transaction of `amount` on `day` (a day older than the kept
    /// range is dropped: no window can reach it any more).
    pub fn add(&mut self, day: i32, amount: f64) {
        let newest = self.0.back().map_or(day, |d| d.day.max(day));
        if day <= newest - KEEP_DAYS {
            return;
        }
        let i = self.0.partition_point(|d| d.day < day);
        match self.0.get_mut(i) {
            Some(d) if d.day == day => {
                d.count = d.count.saturating_add(1);
                d.sum += amount;
            }
            _ => self.0.insert(
                i,
                DayTotal {
                    day,
                    count: 1,
                    sum: amount,
                },
            ),
        }
        while self.0.front().is_some_and(|d| d.day <= newest - KEEP_DAYS) {
            self.0.pop_front();
        }
    }

    /// Count and sum over the days `from..=to`.
    pub fn between(&self, from: i32, to: i32) -> (u32, f64) {
        let lo = self.0.partition_point(|d| d.day < from);
        self.0
            .range(lo..)
            .take_while(|d| d.day <= to)
            .fold((0, 0.0), |(n, s), d| (n + d.count, s + d.sum))
    }

    /// Days with at least one transaction.
    pub fn active_days(&self) -> usize {
        self.0.len()
    }
}

/// Fingerprints of the merchants a customer has paid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownMerchants(Vec<u32>);

fn fingerprint(merchant: &MerchantId) -> u32 {
    let mut h = Fnv::default();
    h.write(merchant.as_str().as_bytes());
    // Fold the 64-bit hash: a customer's few hundred merchants collide with
    // odds of about one in 10^5.
    (h.0 ^ (h.0 >> 32)) as u32
}

impl KnownMerchants {
    /// `Some(true)` for a merchant never paid, `None` when the set is full
    /// and it is not in it (it may have been: unknown).
    pub fn is_new(&self, merchant: &MerchantId, capacity: usize) -> Option<bool> {
        let found = self.0.binary_search(&fingerprint(merchant)).is_ok();
        if found {
            Some(false)
        } else if self.0.len() < capacity {
            Some(true)
        } else {
            None
        }
    }

    pub fn record(&mut self, merchant: &MerchantId, capacity: usize) {
        let f = fingerprint(merchant);
        if let Err(i) = self.0.binary_search(&f)
            && self.0.len() < capacity
        {
            self.0.insert(i, f);
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Most places a customer is remembered at.
const MAX_PLACES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Place {
    cell: (i16, i16),
    /// Where it was first seen in the cell.
    at: Coordinates,
    count: u32,
}

/// Card-present places with their counts; the most used is home.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Places(Vec<Place>);

fn cell(p: Coordinates) -> (i16, i16) {
    // In range by construction (|lat| <= 90, |lon| <= 180).
    (
        (p.lat() * 10.0).round() as i16,
        (p.lon() * 10.0).round() as i16,
    )
}

impl Places {
    /// Counts a card-present transaction at `p`; a ninth place is not kept.
    pub fn record(&mut self, p: Coordinates) {
        let c = cell(p);
        if let Some(place) = self.0.iter_mut().find(|x| x.cell == c) {
            place.count = place.count.saturating_add(1);
        } else if self.0.len() < MAX_PLACES {
            self.0.push(Place {
                cell: c,
                at: p,
                count: 1,
            });
        }
    }

    /// The most used place (the first reached among equals).
    pub fn home(&self) -> Option<Coordinates> {
        let mut best: Option<&Place> = None;
        for p in &self.0 {
            if best.is_none_or(|b| p.count > b.count) {
                best = Some(p);
            }
        }
        best.map(|p| p.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_totals_keep_31_days_and_sum_ranges() {
        let mut d = DailyTotals::default();
        for day in [10, 10, 12, 40] {
            d.add(day, 2.0);
        }
        assert_eq!(
            d.between(10, 40),
            (4, 8.0),
            "day 10 is 30 days before day 40"
        );
        assert_eq!(d.between(11, 39), (1, 2.0));
        d.add(41, 1.0);
        assert_eq!(d.between(0, 100), (3, 5.0), "day 10 fell out at day 41");
        d.add(5, 9.0); // far too old: ignored
        assert_eq!(d.active_days(), 3);
        assert_eq!(d.between(41, 41), (1, 1.0));
    }

    #[test]
    fn merchants_are_new_until_seen_and_unknown_when_full() {
        let mut k = KnownMerchants::default();
        let a = MerchantId::parse("a").unwrap();
        let b = MerchantId::parse("b").unwrap();
        assert_eq!(k.is_new(&a, 1), Some(true));
        k.record(&a, 1);
        k.record(&b, 1);
        assert_eq!(k.is_new(&a, 1), Some(false));
        assert_eq!(k.is_new(&b, 1), None);
    }

    #[test]
    fn home_is_the_most_used_place() {
        let mut p = Places::default();
        let paris = Coordinates::new(48.85, 2.35).unwrap();
        let near_paris = Coordinates::new(48.851, 2.352).unwrap();
        let rome = Coordinates::new(41.9, 12.5).unwrap();
        assert_eq!(p.home(), None);
        p.record(rome);
        p.record(paris);
        p.record(near_paris);
        assert_eq!(p.home(), Some(paris));
    }
}
