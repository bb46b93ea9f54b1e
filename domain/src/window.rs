//! The event-time window: a customer's recent transactions sorted by their
//! own timestamps, bounded by age and by count.
//!
//! Sorted by event time (not arrival) so that a late transaction is inserted
//! where it belongs and every later window query counts it; ties keep
//! arrival order. A `VecDeque` because eviction is from the old end and most
//! inserts are at the new end; a late insert shifts the few entries after it.
//! Queries binary-search their bounds, so a window of a few hundred entries
//! costs a handful of comparisons plus the entries actually in range.

use crate::geo::{Coordinates, CountryCode};
use crate::money::Amount;
use crate::transaction::{Transaction, TransactionType};
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;

/// What the rules need of one past transaction, and nothing more.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowEntry {
    pub at: DateTime<Utc>,
    pub amount: Amount,
    /// `None` for schema v1 transactions, which did not say.
    pub kind: Option<TransactionType>,
    pub country: Option<CountryCode>,
    /// Lower-cased, so "Paris" and "PARIS" are one city.
    pub city: Option<Box<str>>,
    /// Set only for card-present transactions (see
    /// [`Transaction::is_card_present`]): where the card physically was.
    pub card_present_at: Option<Coordinates>,
}

impl WindowEntry {
    pub fn of(tx: &Transaction) -> WindowEntry {
        WindowEntry {
            at: tx.timestamp,
            amount: tx.amount,
            kind: tx.transaction_type,
            country: tx.country(),
            city: tx
                .location
                .as_ref()
                .map(|l| l.city.as_str().to_lowercase().into_boxed_str()),
            card_present_at: if tx.is_card_present() {
                tx.coordinates()
            } else {
                None
            },
        }
    }

    /// Money leaving the customer: everything but refunds (v1 transactions,
    /// whose type is unknown, count as spending).
    pub fn is_debit(&self) -> bool {
        self.kind != Some(TransactionType::Refund)
    }
}

/// A card-present sighting: where and when the card was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    pub at: DateTime<Utc>,
    pub place: Coordinates,
}

/// The sorted, bounded window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentWindow {
    entries: VecDeque<WindowEntry>,
    /// The newest card-present sighting that aged out of the window, so
    /// `impossible_travel` still has a "previous" one after a quiet spell.
    evicted_sighting: Option<Sighting>,
    /// The event time of the newest entry that aged out, so "time since the
    /// previous transaction" is known after a quiet spell.
    evicted_newest: Option<DateTime<Utc>>,
}

impl RecentWindow {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &WindowEntry> + '_ {
        self.entries.iter()
    }

    /// Inserts after every entry with the same or an earlier time.
    pub fn insert(&mut self, entry: WindowEntry) {
        let at = self.entries.partition_point(|e| e.at <= entry.at);
        self.entries.insert(at, entry);
    }

    /// Drops entries older than `horizon`, then the oldest beyond `max_len`.
    pub fn evict(&mut self, horizon: DateTime<Utc>, max_len: usize) {
        while let Some(front) = self.entries.front() {
            if front.at >= horizon && self.entries.len() <= max_len {
                break;
            }
            if let Some(gone) = self.entries.pop_front() {
                // Eviction runs oldest first, so the last one kept is the newest.
                self.evicted_newest = Some(gone.at);
                if let Some(place) = gone.card_present_at {
                    self.evicted_sighting = Some(Sighting { at: gone.at, place });
                }
            }
        }
    }

    /// Entries with `from <= at <= to`, oldest first.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl DoubleEndedIterator<Item = &WindowEntry> + '_ {
        let lo = self.entries.partition_point(|e| e.at < from);
        let hi = self.entries.partition_point(|e| e.at <= to).max(lo);
        self.entries.range(lo..hi)
    }

    /// Entries in the window of length `length` that ends at `end`
    /// (`end - length <= at <= end`).
    pub fn trailing(
        &self,
        end: DateTime<Utc>,
        length: Duration,
    ) -> impl DoubleEndedIterator<Item = &WindowEntry> + '_ {
        let from = end
            .checked_sub_signed(length)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.between(from, end)
    }

    /// The event time of the newest transaction at or before `at`.
    pub fn previous_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let hi = self.entries.partition_point(|e| e.at <= at);
        hi.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.at)
            .or(self.evicted_newest.filter(|t| *t <= at))
    }

    /// The newest card-present sighting at or before `at`.
    pub fn sighting_before(&self, at: DateTime<Utc>) -> Option<Sighting> {
        let hi = self.entries.partition_point(|e| e.at <= at);
        self.entries
            .range(..hi)
            .rev()
            .find_map(|e| e.card_present_at.map(|place| Sighting { at: e.at, place }))
            .or(self.evicted_sighting.filter(|s| s.at <= at))
    }

    /// The oldest card-present sighting strictly after `at` (only late or
    /// out-of-order transactions have one).
    pub fn sighting_after(&self, at: DateTime<Utc>) -> Option<Sighting> {
        let lo = self.entries.partition_point(|e| e.at <= at);
        self.entries
            .range(lo..)
            .find_map(|e| e.card_present_at.map(|place| Sighting { at: e.at, place }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minute)
    }

    fn entry(minute: i64, thousandths: u64) -> WindowEntry {
        WindowEntry {
            at: at(minute),
            amount: Amount::from_thousandths(thousandths),
            kind: None,
            country: None,
            city: None,
            card_present_at: None,
        }
    }

    fn amounts(w: &RecentWindow) -> Vec<u64> {
        w.iter().map(|e| e.amount.thousandths()).collect()
    }

    #[test]
    fn inserts_in_event_time_order_ties_in_arrival_order() {
        let mut w = RecentWindow::default();
        w.insert(entry(10, 1));
        w.insert(entry(30, 2));
        w.insert(entry(20, 3));
        w.insert(entry(20, 4));
        w.insert(entry(5, 5));
        assert_eq!(amounts(&w), [5, 1, 3, 4, 2]);
    }

    #[test]
    fn windows_are_inclusive_at_both_ends() {
        let mut w = RecentWindow::default();
        for m in [0, 10, 20, 30] {
            w.insert(entry(m, m as u64));
        }
        let got: Vec<_> = w
            .trailing(at(30), Duration::minutes(20))
            .map(|e| e.at)
            .collect();
        assert_eq!(got, [at(10), at(20), at(30)]);
        assert_eq!(w.between(at(31), at(40)).count(), 0);
        assert_eq!(w.between(at(40), at(31)).count(), 0);
    }

    #[test]
    fn evicts_by_age_then_count_and_remembers_the_last_sighting() {
        let mut w = RecentWindow::default();
        let place = Coordinates::new(1.0, 2.0).unwrap();
        for m in 0..10 {
            let mut e = entry(m, 1);
            if m == 3 {
                e.card_present_at = Some(place);
            }
            w.insert(e);
        }
        w.evict(at(5), 100);
        assert_eq!(w.len(), 5);
        assert_eq!(
            w.sighting_before(at(9)),
            Some(Sighting { at: at(3), place })
        );
        w.evict(at(0), 2);
        assert_eq!(w.len(), 2);
    }
}
