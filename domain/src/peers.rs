//! What the log says about merchants and merchant categories: how many
//! transactions each had per day, and how many of those are known fraud,
//! for the features' merchant and category fraud rates.
//!
//! Point in time, by construction:
//! - a label counts from where it is in the log: a transaction decided
//!   before the label was appended never sees it (the label carries the
//!   labelled transaction's merchant, category and day, `TransactionLabeled`
//!   v2, so nothing here keeps a per-transaction table);
//! - windows are whole UTC days before the transaction's own day (1 day is
//!   yesterday, 7 days the seven before today): a day's count can include
//!   transactions later than the one being decided only on that same day,
//!   so today is never read.
//! - a transaction's fraud status is its newest label (any source); a label
//!   that flips it moves its day's fraud count by one.
//!
//! One book serves everyone: the command side keeps it live (folded from the
//! log by its follower, stamped with the position it has folded through);
//! replay, backtest, training and export rebuild it with [`PeerReplay`],
//! which gives any transaction the book exactly as of the position its
//! decision recorded. Bounded: 32 days per merchant and category, at most
//! `max_merchants` merchants (the least recently active go first).

use crate::events::DomainEvent;
use crate::ids::MerchantId;
use crate::text::MerchantCategory;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

/// The windows, in whole days before the transaction's day.
pub const WINDOW_DAYS: [i32; 3] = [1, 7, 30];

/// Days a merchant's counts are kept behind its newest day: the longest
/// window, the day it is measured from, and a day of lateness.
const KEEP_DAYS: i32 = 32;

/// The default bound on merchants remembered (about 0.5 KiB each at most).
pub const DEFAULT_MAX_MERCHANTS: usize = 200_000;

/// The UTC day number of an instant (days since 1970-01-01).
pub fn day_of(at: DateTime<Utc>) -> i32 {
    at.timestamp().div_euclid(86_400) as i32
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DayCount {
    day: i32,
    transactions: u32,
    fraud: u32,
}

/// One merchant's (or category's) counts per day, oldest first, at most
/// `KEEP_DAYS` days back from the newest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Days(VecDeque<DayCount>);

impl Days {
    fn add(&mut self, day: i32, transactions: i32, fraud: i32) {
        let newest = self.0.back().map_or(day, |d| d.day.max(day));
        if day <= newest - KEEP_DAYS {
            return; // older than any window can reach
        }
        let i = self.0.partition_point(|d| d.day < day);
        if self.0.get(i).is_none_or(|d| d.day != day) {
            self.0.insert(
                i,
                DayCount {
                    day,
                    ..DayCount::default()
                },
            );
        }
        if let Some(d) = self.0.get_mut(i) {
            d.transactions = d.transactions.saturating_add_signed(transactions);
            d.fraud = d.fraud.saturating_add_signed(fraud);
        }
        while self.0.front().is_some_and(|d| d.day <= newest - KEEP_DAYS) {
            self.0.pop_front();
        }
    }

    fn newest_day(&self) -> Option<i32> {
        self.0.back().map(|d| d.day)
    }

    fn counts(&self, today: i32) -> PeerCounts {
        let mut counts = PeerCounts::default();
        for d in self.0.iter().rev() {
            for (w, days) in WINDOW_DAYS.iter().enumerate() {
                if d.day < today && d.day >= today - days {
                    counts.transactions[w] += d.transactions;
                    counts.fraud[w] += d.fraud;
                }
            }
        }
        counts
    }
}

/// Transactions and known fraud over each of [`WINDOW_DAYS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounts {
    pub transactions: [u32; 3],
    pub fraud: [u32; 3],
}

impl PeerCounts {
    /// Known fraud per transaction in window `w`; unknown (NaN) without
    /// transactions.
    pub fn rate(&self, w: usize) -> f64 {
        match (self.transactions.get(w), self.fraud.get(w)) {
            (Some(&n), Some(&f)) if n > 0 => f64::from(f) / f64::from(n),
            _ => f64::NAN,
        }
    }

    fn subtract(&mut self, change: &PeerChange, today: i32) {
        for (w, days) in WINDOW_DAYS.iter().enumerate() {
            if change.day < today && change.day >= today - days {
                self.transactions[w] =
                    self.transactions[w].saturating_add_signed(-change.transactions);
                self.fraud[w] = self.fraud[w].saturating_add_signed(-change.fraud);
            }
        }
    }
}

/// What the book knew for one transaction: its merchant's and category's
/// counts, as of log position `as_of` (every event up to it folded in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub as_of: u64,
    pub merchant: PeerCounts,
    pub category: PeerCounts,
}

/// How one event moves the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerChange {
    pub merchant: Option<MerchantId>,
    pub category: Option<MerchantCategory>,
    pub day: i32,
    pub transactions: i32,
    pub fraud: i32,
}

impl PeerChange {
    /// A recorded transaction counts once at its merchant and category; a
    /// label that flips its transaction's status moves the fraud count of
    /// the transaction's day. Nothing else moves the book.
    pub fn of(event: &DomainEvent) -> Option<PeerChange> {
        match event {
            DomainEvent::TransactionRecorded(r) => {
                let t = &r.transaction;
                (t.merchant_id.is_some() || t.merchant_category.is_some()).then(|| PeerChange {
                    merchant: t.merchant_id.clone(),
                    category: t.merchant_category.clone(),
                    day: day_of(t.timestamp),
                    transactions: 1,
                    fraud: 0,
                })
            }
            DomainEvent::TransactionLabeled(l) if l.flips() => {
                let t = l.transaction.as_ref()?;
                Some(PeerChange {
                    merchant: t.merchant_id.clone(),
                    category: t.merchant_category.clone(),
                    day: day_of(t.timestamp),
                    transactions: 0,
                    fraud: if l.is_fraud { 1 } else { -1 },
                })
            }
            _ => None,
        }
    }
}

/// The merchants' and categories' daily counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBook {
    merchants: HashMap<MerchantId, Days>,
    categories: HashMap<MerchantCategory, Days>,
    max_merchants: usize,
}

impl Default for PeerBook {
    fn default() -> Self {
        PeerBook::new(DEFAULT_MAX_MERCHANTS)
    }
}

impl PeerBook {
    pub fn new(max_merchants: usize) -> Self {
        PeerBook {
            merchants: HashMap::new(),
            categories: HashMap::new(),
            max_merchants: max_merchants.max(1),
        }
    }

    pub fn merchant_count(&self) -> usize {
        self.merchants.len()
    }

    /// Folds one event in; returns the change it made, if any.
    pub fn apply(&mut self, event: &DomainEvent) -> Option<PeerChange> {
        let change = PeerChange::of(event)?;
        self.apply_change(&change);
        Some(change)
    }

    pub fn apply_change(&mut self, c: &PeerChange) {
        if let Some(m) = &c.merchant {
            self.merchants
                .entry(m.clone())
                .or_default()
                .add(c.day, c.transactions, c.fraud);
            if self.merchants.len() > self.max_merchants {
                self.forget_merchants();
            }
        }
        if let Some(k) = &c.category {
            self.categories
                .entry(k.clone())
                .or_default()
                .add(c.day, c.transactions, c.fraud);
        }
    }

    /// Drops the least recently active tenth of the merchants (by their
    /// newest day), so forgetting costs one sort per many insertions.
    fn forget_merchants(&mut self) {
        let mut newest: Vec<i32> = self
            .merchants
            .values()
            .map(|d| d.newest_day().unwrap_or(i32::MIN))
            .collect();
        newest.sort_unstable();
        let keep = self.max_merchants - self.max_merchants / 10;
        let cut = newest
            .get(newest.len().saturating_sub(keep))
            .copied()
            .unwrap_or(i32::MIN);
        self.merchants
            .retain(|_, d| d.newest_day().unwrap_or(i32::MIN) > cut);
    }

    /// The counts a transaction at `at` sees for its merchant and category.
    pub fn counts(
        &self,
        merchant: Option<&MerchantId>,
        category: Option<&MerchantCategory>,
        at: DateTime<Utc>,
    ) -> (PeerCounts, PeerCounts) {
        let today = day_of(at);
        let of = |d: Option<&Days>| d.map(|d| d.counts(today)).unwrap_or_default();
        (
            of(merchant.and_then(|m| self.merchants.get(m))),
            of(category.and_then(|k| self.categories.get(k))),
        )
    }

    /// [`PeerBook::counts`] stamped with the position folded through.
    pub fn snapshot(
        &self,
        as_of: u64,
        merchant: Option<&MerchantId>,
        category: Option<&MerchantCategory>,
        at: DateTime<Utc>,
    ) -> PeerSnapshot {
        let (merchant, category) = self.counts(merchant, category, at);
        PeerSnapshot {
            as_of,
            merchant,
            category,
        }
    }
}

/// The book rebuilt from the log in position order, able to answer "as of
/// position P" for a recent P: it keeps the changes of the last
/// `recent_cap` positions and takes back those after P. A live decision
/// records the position its book had folded through (a follower a few
/// milliseconds behind the head), so replay gives it exactly what it saw.
#[derive(Debug, Clone)]
pub struct PeerReplay {
    book: PeerBook,
    recent: VecDeque<(u64, PeerChange)>,
    recent_cap: usize,
    position: u64,
}

impl Default for PeerReplay {
    fn default() -> Self {
        PeerReplay::new(PeerBook::default(), 1 << 16)
    }
}

impl PeerReplay {
    pub fn new(book: PeerBook, recent_cap: usize) -> Self {
        PeerReplay {
            book,
            recent: VecDeque::new(),
            recent_cap,
            position: 0,
        }
    }

    pub fn book(&self) -> &PeerBook {
        &self.book
    }

    /// The position folded through.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Folds the event at `position` (positions must ascend).
    pub fn apply(&mut self, position: u64, event: &DomainEvent) {
        self.position = self.position.max(position);
        if let Some(change) = self.book.apply(event) {
            self.recent.push_back((position, change));
            if self.recent.len() > self.recent_cap {
                self.recent.pop_front();
            }
        }
    }

    /// The snapshot as of `as_of` (at most the position folded through).
    /// `None` when `as_of` is older than the changes kept: the answer would
    /// not be exact.
    pub fn snapshot(
        &self,
        as_of: u64,
        merchant: Option<&MerchantId>,
        category: Option<&MerchantCategory>,
        at: DateTime<Utc>,
    ) -> Option<PeerSnapshot> {
        let mut snapshot = self.book.snapshot(as_of, merchant, category, at);
        let today = day_of(at);
        let mut reached = false;
        for (p, c) in self.recent.iter().rev() {
            if *p <= as_of {
                reached = true;
                break;
            }
            if merchant.is_some() && c.merchant.as_ref() == merchant {
                snapshot.merchant.subtract(c, today);
            }
            if category.is_some() && c.category.as_ref() == category {
                snapshot.category.subtract(c, today);
            }
        }
        // Exact when a kept change at or before `as_of` was reached, or
        // nothing was ever dropped from `recent`.
        (reached || self.recent.len() < self.recent_cap || as_of >= self.position)
            .then_some(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{LabeledTransaction, TransactionLabeled};
    use crate::ids::{CustomerId, TransactionId};
    use crate::text::LabelSource;
    use chrono::{Duration, TimeZone};

    fn day(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::days(n)
    }

    fn m(id: &str) -> MerchantId {
        MerchantId::parse(id).unwrap()
    }

    fn tx(merchant: &str, at: DateTime<Utc>) -> PeerChange {
        PeerChange {
            merchant: Some(m(merchant)),
            category: Some(MerchantCategory::parse("grocery").unwrap()),
            day: day_of(at),
            transactions: 1,
            fraud: 0,
        }
    }

    fn label(merchant: &str, at: DateTime<Utc>, is_fraud: bool, was: bool) -> DomainEvent {
        TransactionLabeled {
            transaction: Some(LabeledTransaction {
                customer_id: CustomerId::parse("c").unwrap(),
                merchant_id: Some(m(merchant)),
                merchant_category: None,
                timestamp: at,
            }),
            was_fraud: Some(was),
            ..TransactionLabeled::new(
                TransactionId::parse("t").unwrap(),
                is_fraud,
                LabelSource::parse("chargeback").unwrap(),
            )
        }
        .into()
    }

    #[test]
    fn windows_are_whole_days_before_today() {
        let mut book = PeerBook::default();
        for d in [0, 5, 9, 9, 10] {
            book.apply_change(&tx("m1", day(d)));
        }
        book.apply(&label("m1", day(9), true, false));
        let (c, k) = book.counts(Some(&m("m1")), None, day(10));
        assert_eq!(c.transactions, [2, 3, 4], "today (day 10) is not read");
        assert_eq!(c.fraud, [1, 1, 1]);
        assert_eq!(k, PeerCounts::default());
        assert!((c.rate(0) - 0.5).abs() < 1e-12);
        assert!(PeerCounts::default().rate(2).is_nan());
        // A reversal takes it back; a repeat of the status moves nothing.
        book.apply(&label("m1", day(9), false, true));
        book.apply(&label("m1", day(9), false, false));
        assert_eq!(book.counts(Some(&m("m1")), None, day(10)).0.fraud, [0; 3]);
    }

    #[test]
    fn days_older_than_the_longest_window_are_forgotten() {
        let mut book = PeerBook::default();
        book.apply_change(&tx("m1", day(0)));
        book.apply_change(&tx("m1", day(40)));
        book.apply_change(&tx("m1", day(1))); // too old to matter any more
        let days = &book.merchants[&m("m1")];
        assert_eq!(days.0.len(), 1);
    }

    #[test]
    fn merchants_are_bounded_least_recent_first() {
        let mut book = PeerBook::new(100);
        for i in 0..150 {
            book.apply_change(&tx(&format!("m{i}"), day(i)));
        }
        assert!(book.merchant_count() <= 100);
        assert!(book.merchants.contains_key(&m("m149")));
        assert!(!book.merchants.contains_key(&m("m0")));
    }

    #[test]
    fn replay_answers_as_of_an_earlier_position() {
        let mut replay = PeerReplay::default();
        let mut position = 0;
        let mut push = |replay: &mut PeerReplay, e: DomainEvent| {
            position += 1;
            replay.apply(position, &e);
        };
        push(&mut replay, label("m1", day(1), true, false)); // 1
        push(&mut replay, label("m1", day(2), true, false)); // 2
        push(&mut replay, label("m1", day(3), true, false)); // 3
        let at = day(5);
        let s = |as_of| replay.snapshot(as_of, Some(&m("m1")), None, at).unwrap();
        assert_eq!(s(3).merchant.fraud, [0, 3, 3]);
        assert_eq!(s(1).merchant.fraud, [0, 1, 1]);
        assert_eq!(s(0).merchant.fraud, [0, 0, 0]);
        assert_eq!(s(1).as_of, 1);
    }
}
