//! `merchants`: merchant risk per hour of transaction event time (count,
//! amount, alerts, confirmed fraud, fraud rate, a flag above 5%), and the
//! per-transaction lookup that lets labels and verdicts, which name a
//! transaction or an alert rather than a merchant, reach the right hour;
//! and, per UTC day, each merchant's and category's transactions and known
//! fraud from labels (`merchant_days`, `category_days`), the read side of
//! the command side's `domain::peers::PeerBook`.
//!
//! Confirmed fraud is the latest signal about a transaction, in log order:
//! a `TransactionLabeled` (any source) or the verdict of an `AlertResolved`
//! on the alert it raised. A flip moves the hour's count by one either way.
//! Signals about transactions this model does not know when it reads them
//! (no merchant, a v1 transaction, never recorded, or recorded later in the
//! log) are ignored: they are not kept waiting for a transaction that may
//! never come. Not partitioned: a label has no customer to route it by.
//!
//! The days are the book's, folded with the book's own function
//! (`domain::peers::PeerChange::of`): a `TransactionRecorded` counts once
//! at its merchant and category on its UTC day (every time it is in the
//! log, as the book counts it), a `TransactionLabeled` v2 that flips its
//! transaction's status moves that day's fraud by one, and nothing else
//! moves them (a v1 label names no merchant; verdicts arrive as labels).
//! A label counts from where it is in the log, never earlier. A day's
//! counts stop at zero change by change, as the book's unsigned counts do
//! (`Step`). [`PEER_COUNTS_OF_MERCHANTS`] and [`PEER_COUNTS_OF_CATEGORIES`]
//! read the windows of `domain::peers::WINDOW_DAYS` before a day, as
//! `PeerBook::counts` does.
//!
//! Days are kept, all of them: one row per merchant (and category) and
//! active day is small next to the per-transaction rows beside it, gives
//! dashboards the history past 30 days, and makes the answer as of any
//! past time exact. The book keeps only the newest days and at most
//! `max_merchants` merchants (bounded memory); so the two agree for every
//! time the book can still answer (as of a merchant's newest day, the day
//! before, or later: the live case), and the model answers exactly where
//! the book has forgotten.
//!
//! The contract: the model's declaration and DDL; the projector (its SQL
//! fold) is in projection-service `models::merchants`; the pure fold
//! (`Merchant::apply`) and the day reads are here.

use crate::model::Model;
use chrono::{DateTime, NaiveDate, Utc};
use domain::DomainEvent;
use domain::events::Verdict;
use domain::peers::{PeerChange, PeerCounts, WINDOW_DAYS};
use foldhash::HashMap;
use uuid::Uuid;

pub const MODEL: Model = Model {
    name: "merchants",
    // 2: the merchant_risk_signal index. 3: merchant_days, category_days.
    version: 3,
    partitioned: false,
    ddl: DDL,
    tables: &[
        "merchant_risk",
        "merchant_transactions",
        "merchant_days",
        "category_days",
    ],
    // Verdicts name an alert; its transaction is found through this.
    apply_indexes: &["merchant_transactions_alert"],
};

/// `flagged` is `confirmed_fraud / tx_count > 0.05`, written in the SQL as
/// `confirmed_fraud * 20 > tx_count` so the threshold is exact, not a
/// floating-point comparison.
pub const DDL: &str = "
CREATE TABLE merchant_risk (
    merchant_id text NOT NULL,
    hour timestamptz NOT NULL,
    tx_count bigint NOT NULL,
    amount_sum numeric(24, 3) NOT NULL,
    alert_count bigint NOT NULL,
    confirmed_fraud bigint NOT NULL,
    fraud_rate double precision NOT NULL,
    flagged boolean NOT NULL,
    PRIMARY KEY (merchant_id, hour)
);
-- Riskiest merchants in a time range: a range scan on hour that reads the
-- figures from the index alone. One merchant over time is the primary key.
CREATE INDEX merchant_risk_hour ON merchant_risk (hour)
    INCLUDE (merchant_id, tx_count, confirmed_fraud, alert_count, fraud_rate);
CREATE INDEX merchant_risk_flagged ON merchant_risk (hour, fraud_rate DESC) WHERE flagged;
-- The dashboard's risky merchants: hours with an alert or confirmed fraud,
-- a few per cent of all hours.
CREATE INDEX merchant_risk_signal ON merchant_risk (hour) INCLUDE (merchant_id)
    WHERE alert_count > 0 OR confirmed_fraud > 0;

CREATE TABLE merchant_transactions (
    transaction_id text PRIMARY KEY,
    merchant_id text NOT NULL,
    hour timestamptz NOT NULL,
    alert_id uuid,
    is_fraud boolean NOT NULL,
    -- The log position of the latest label or verdict applied to it.
    signal_position bigint
);
CREATE INDEX merchant_transactions_alert ON merchant_transactions (alert_id);

-- domain::peers' counts per UTC day of the transaction: transactions, and
-- those whose newest label (as far as the log has reached) says fraud.
-- The windows before a day are a range of the primary key.
CREATE TABLE merchant_days (
    merchant_id text NOT NULL,
    day date NOT NULL,
    transactions bigint NOT NULL,
    fraud bigint NOT NULL,
    PRIMARY KEY (merchant_id, day)
);
CREATE TABLE category_days (
    merchant_category text NOT NULL,
    day date NOT NULL,
    transactions bigint NOT NULL,
    fraud bigint NOT NULL,
    PRIMARY KEY (merchant_category, day)
);
";

/// Transactions and fraud over each of `WINDOW_DAYS` (`$3`, in order) of
/// whole days before the day `$2`, for each key of `$1` (a key without
/// days gets zeros): one row per key and window, `window` counting from 1.
macro_rules! peer_counts {
    ($table:literal, $key:literal) => {
        concat!(
            "SELECT k.id, w.i AS window, \
               coalesce(sum(d.transactions), 0)::bigint AS transactions, \
               coalesce(sum(d.fraud), 0)::bigint AS fraud \
             FROM (SELECT DISTINCT unnest($1::text[]) AS id) k \
             CROSS JOIN unnest($3::int[]) WITH ORDINALITY AS w(days, i) \
             LEFT JOIN ",
            $table,
            " d ON d.",
            $key,
            " = k.id AND d.day < $2::date AND d.day >= $2::date - w.days \
             GROUP BY k.id, w.i"
        )
    };
}

/// The merchants `$1`'s counts before day `$2` over the windows `$3`
/// (bind [`day_date`] of the day and [`window_days`]); rows into
/// [`peer_counts`].
pub const PEER_COUNTS_OF_MERCHANTS: &str = peer_counts!("merchant_days", "merchant_id");
/// The same for merchant categories `$1`.
pub const PEER_COUNTS_OF_CATEGORIES: &str = peer_counts!("category_days", "merchant_category");
/// Whether any transaction named the category `$1`.
pub const CATEGORY_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM category_days WHERE merchant_category = $1)";

/// One window of one key, as [`PEER_COUNTS_OF_MERCHANTS`] reads it.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct PeerWindowRow {
    pub id: String,
    pub window: i64,
    pub transactions: i64,
    pub fraud: i64,
}

/// The windows' rows as `PeerCounts` per key: what `PeerBook::counts`
/// answers, so the two sides compare directly.
pub fn peer_counts(
    rows: impl IntoIterator<Item = PeerWindowRow>,
) -> std::collections::HashMap<String, PeerCounts> {
    let mut out = std::collections::HashMap::<String, PeerCounts>::new();
    for r in rows {
        let counts = out.entry(r.id).or_default();
        let Some(w) = usize::try_from(r.window - 1)
            .ok()
            .filter(|w| *w < WINDOW_DAYS.len())
        else {
            continue;
        };
        counts.transactions[w] = u32::try_from(r.transactions.max(0)).unwrap_or(u32::MAX);
        counts.fraud[w] = u32::try_from(r.fraud.max(0)).unwrap_or(u32::MAX);
    }
    out
}

/// The windows to bind as `$3`.
pub fn window_days() -> Vec<i32> {
    WINDOW_DAYS.to_vec()
}

/// A `domain::peers::day_of` day number as the date the tables store.
pub fn day_date(day: i32) -> NaiveDate {
    DateTime::<Utc>::UNIX_EPOCH.date_naive() + chrono::Duration::days(i64::from(day))
}

/// How a run of changes moves one count of one day: `new = max(old + add,
/// floor)`. The book's counts are unsigned and stop at zero change by
/// change (`max(v + c, 0)`); such steps compose to this form, since
/// `max(max(v + a, f) + c, 0) = max(v + (a + c), max(f + c, 0))`, so a
/// batch's changes to a day are one step, written as one upsert, and any
/// split of the log into batches gives the same counts as the book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    pub add: i64,
    pub floor: i64,
}

impl Step {
    /// This step followed by a change of `by`.
    pub fn then(self, by: i64) -> Step {
        Step {
            add: self.add + by,
            floor: (self.floor + by).max(0),
        }
    }

    /// The count of a day that had none.
    pub fn from_zero(self) -> i64 {
        self.add.max(self.floor)
    }
}

/// One batch's steps for one day of one merchant or category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaySteps {
    pub transactions: Step,
    pub fraud: Step,
}

impl DaySteps {
    fn then(&mut self, c: &PeerChange) {
        self.transactions = self.transactions.then(i64::from(c.transactions));
        self.fraud = self.fraud.then(i64::from(c.fraud));
    }
}

/// What the model keeps about one transaction.
#[derive(Debug, Clone)]
pub struct Known {
    pub merchant_id: String,
    pub hour: DateTime<Utc>,
    pub alert_id: Option<Uuid>,
    pub is_fraud: bool,
    pub signal_position: Option<i64>,
    /// Needs writing at the end of the batch.
    pub dirty: bool,
}

/// The change one batch makes to one merchant-hour.
#[derive(Debug, Default)]
pub struct Delta {
    pub tx_count: i64,
    pub amount_thousandths: i128,
    pub alert_count: i64,
    pub confirmed_fraud: i64,
}

impl Delta {
    pub fn is_zero(&self) -> bool {
        self.tx_count == 0
            && self.amount_thousandths == 0
            && self.alert_count == 0
            && self.confirmed_fraud == 0
    }
}

/// `ts` cut down to a whole number of `secs` since the epoch.
pub fn truncate(ts: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let s = ts.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(secs), 0).unwrap_or(ts)
}

/// The transactions the model knows and the changes to merchant-hours:
/// the fold's state (the projector loads into `known` and `by_alert` what
/// earlier batches left, and writes the dirty rows and the deltas).
#[derive(Debug, Default)]
pub struct Merchant {
    pub known: HashMap<String, Known>,
    pub by_alert: HashMap<Uuid, String>,
    pub deltas: HashMap<(String, DateTime<Utc>), Delta>,
    /// The batch's changes to merchants' days (`domain::peers` day numbers).
    pub merchant_days: HashMap<(String, i32), DaySteps>,
    /// The batch's changes to categories' days.
    pub category_days: HashMap<(String, i32), DaySteps>,
}

impl Merchant {
    /// Folds one event (at log `position`).
    pub fn apply(&mut self, position: u64, event: &DomainEvent) {
        if let Some(c) = PeerChange::of(event) {
            if let Some(m) = &c.merchant {
                self.merchant_days
                    .entry((m.as_str().to_owned(), c.day))
                    .or_default()
                    .then(&c);
            }
            if let Some(k) = &c.category {
                self.category_days
                    .entry((k.as_str().to_owned(), c.day))
                    .or_default()
                    .then(&c);
            }
        }
        let (known, by_alert, deltas) = (&mut self.known, &mut self.by_alert, &mut self.deltas);
        let position = position as i64;
        match event {
            DomainEvent::TransactionRecorded(r) => {
                let t = &r.transaction;
                let Some(merchant) = &t.merchant_id else {
                    return;
                };
                let id = t.transaction_id.as_str();
                // Recorded once per id by the ingest; a repeat changes nothing.
                if known.contains_key(id) {
                    return;
                }
                let hour = truncate(t.timestamp, 3600);
                let d = deltas
                    .entry((merchant.as_str().to_owned(), hour))
                    .or_default();
                d.tx_count += 1;
                d.amount_thousandths += i128::from(t.amount.thousandths());
                let alert_id = r.alert_id.map(|a| a.0);
                if let Some(a) = alert_id {
                    d.alert_count += 1;
                    by_alert.insert(a, id.to_owned());
                }
                known.insert(
                    id.to_owned(),
                    Known {
                        merchant_id: merchant.as_str().to_owned(),
                        hour,
                        alert_id,
                        is_fraud: false,
                        signal_position: None,
                        dirty: true,
                    },
                );
            }
            DomainEvent::TransactionLabeled(l) => {
                set_fraud(
                    known,
                    deltas,
                    l.transaction_id.as_str(),
                    l.is_fraud,
                    position,
                );
            }
            DomainEvent::AlertResolved(r) => {
                if let Some(id) = by_alert.get(&r.alert_id.0) {
                    let is_fraud = r.verdict == Verdict::ConfirmedFraud;
                    set_fraud(known, deltas, id, is_fraud, position);
                }
            }
            _ => {}
        }
    }
}

/// Sets the fraud state of a known transaction, counting a flip once in its
/// hour; a transaction the model does not know is ignored.
fn set_fraud(
    known: &mut HashMap<String, Known>,
    deltas: &mut HashMap<(String, DateTime<Utc>), Delta>,
    id: &str,
    is_fraud: bool,
    position: i64,
) {
    let Some(k) = known.get_mut(id) else {
        return;
    };
    if k.is_fraud != is_fraud {
        let d = deltas.entry((k.merchant_id.clone(), k.hour)).or_default();
        d.confirmed_fraud += if is_fraud { 1 } else { -1 };
        k.is_fraud = is_fraud;
    }
    k.signal_position = Some(position);
    k.dirty = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::MerchantId;
    use domain::peers::{PeerBook, day_of};

    /// Changes of +-1 (and 0) to a few days, some driving a count below
    /// zero, folded by the book change by change and by `Step`s in batches
    /// of every size: the counts before the next day agree.
    #[test]
    fn steps_in_any_batching_count_as_the_book_does() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let merchant = MerchantId::parse("m").unwrap();
        let base = day_of(
            DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
                .unwrap()
                .into(),
        );
        let changes: Vec<PeerChange> = (0..400)
            .map(|_| PeerChange {
                merchant: Some(merchant.clone()),
                category: None,
                day: base + next(5) as i32,
                transactions: next(3) as i32 - (next(4) == 0) as i32,
                fraud: next(3) as i32 - 1,
            })
            .collect();
        let mut book = PeerBook::default();
        for c in &changes {
            book.apply_change(c);
        }
        let at = day_date(base + 5).and_hms_opt(0, 0, 0).unwrap().and_utc();
        let (expected, _) = book.counts(Some(&merchant), None, at);
        for batch in 1..=changes.len() {
            let mut days: std::collections::BTreeMap<i32, (i64, i64)> = Default::default();
            for chunk in changes.chunks(batch) {
                let mut steps: HashMap<i32, DaySteps> = HashMap::default();
                for c in chunk {
                    steps.entry(c.day).or_default().then(c);
                }
                for (day, s) in steps {
                    let v = days.entry(day).or_insert((0, 0));
                    *v = (
                        (v.0 + s.transactions.add).max(s.transactions.floor),
                        (v.1 + s.fraud.add).max(s.fraud.floor),
                    );
                }
            }
            let mut got = PeerCounts::default();
            for (w, n) in WINDOW_DAYS.iter().enumerate() {
                for (day, (t, f)) in &days {
                    if *day < base + 5 && *day >= base + 5 - n {
                        got.transactions[w] += *t as u32;
                        got.fraud[w] += *f as u32;
                    }
                }
            }
            assert_eq!(got, expected, "batches of {batch}");
        }
        assert!(expected.fraud[2] > 0 && expected.transactions[2] > 0);
        // The counts did hit zero: plain sums would not be the book's.
        let plain: i64 = changes.iter().map(|c| i64::from(c.fraud)).sum();
        assert_ne!(plain, i64::from(expected.fraud[2]));
    }

    #[test]
    fn days_are_dates_of_the_day_numbers() {
        let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-01T23:59:59Z")
            .unwrap()
            .into();
        assert_eq!(day_date(day_of(at)), at.date_naive());
        assert_eq!(day_date(0).to_string(), "1970-01-01");
    }
}
