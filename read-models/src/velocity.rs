//! `velocity`: per customer, what happened in each minute of event time
//! (`velocity_minutes`), and the tumbling and sliding windows the dashboards
//! and the query API read, derived from those minutes by the
//! `velocity_windows` view.
//!
//! Keyed by event time, not arrival, so a late transaction lands in the
//! minute it belongs to and every window containing that minute counts it.
//! Minutes are additive (count, sum and max all commute), which is what makes
//! the model batch-size invariant without reading anything back: the batch is
//! folded per (customer, minute) in Rust and added to the stored rows.
//!
//! What counts mirrors the velocity rules, so an analyst sees the figures the
//! rules saw: `tx_count` counts every transaction (as `velocity_count` does),
//! `amount_sum` and `amount_max` only money spent (purchases and withdrawals,
//! as `velocity_amount` does; a refund is money coming back, and a minute of
//! refunds alone has a sum and max of 0). Amounts are in each transaction's
//! own currency, unconverted, as in the rules.
//!
//! Windows are half-open, `[window_start, window_end)`, aligned on UTC
//! (`date_bin` from 2000-01-01T00:00Z, so no session time zone can shift
//! them). The view's branches each group by `customer_id`, so a
//! `WHERE customer_id = $1` is pushed into every branch and answered from the
//! primary key.
//!
//! The contract: the DDL, the pure fold (a customer's minutes, `record`),
//! the windows the view derives from them (`windows`, for time travel,
//! which folds in memory), the row type and the query the query API reads.
//! projection-service `models::velocity` loads and writes the minutes.

use crate::model::Model;
use chrono::{DateTime, Utc};
use domain::transaction::{Transaction, TransactionType};
use std::collections::BTreeMap;

pub const MODEL: Model = Model {
    name: "velocity",
    version: 1,
    partitioned: true,
    ddl: DDL,
    tables: &["velocity_minutes"],
    apply_indexes: &[],
};

pub const DDL: &str = "
CREATE TABLE velocity_minutes (
    customer_id text NOT NULL,
    minute timestamptz NOT NULL,
    tx_count bigint NOT NULL,
    amount_sum numeric(24, 3) NOT NULL,
    amount_max numeric(24, 3) NOT NULL,
    PRIMARY KEY (customer_id, minute)
);
-- Cross-customer dashboards (the busiest customers of the last hour).
CREATE INDEX velocity_minutes_minute ON velocity_minutes (minute);

CREATE VIEW velocity_windows AS
SELECT customer_id, 'tumbling_10m'::text AS window_kind,
       date_bin('10 minutes', minute, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS window_start,
       date_bin('10 minutes', minute, TIMESTAMPTZ '2000-01-01 00:00:00+00')
         + interval '10 minutes' AS window_end,
       sum(tx_count)::bigint AS tx_count,
       sum(amount_sum)::numeric(24, 3) AS amount_sum,
       max(amount_max) AS amount_max
FROM velocity_minutes
GROUP BY customer_id, 3
UNION ALL
SELECT customer_id, 'tumbling_1h'::text,
       date_bin('1 hour', minute, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       date_bin('1 hour', minute, TIMESTAMPTZ '2000-01-01 00:00:00+00') + interval '1 hour',
       sum(tx_count)::bigint,
       sum(amount_sum)::numeric(24, 3),
       max(amount_max)
FROM velocity_minutes
GROUP BY customer_id, 3
UNION ALL
-- Each minute belongs to the five 5-minute windows that start 0..4 minutes
-- before it; only windows holding at least one minute appear.
SELECT m.customer_id, 'sliding_5m'::text,
       m.minute - k.back,
       m.minute - k.back + interval '5 minutes',
       sum(m.tx_count)::bigint,
       sum(m.amount_sum)::numeric(24, 3),
       max(m.amount_max)
FROM velocity_minutes m
CROSS JOIN (VALUES (interval '0 minutes'), (interval '1 minute'), (interval '2 minutes'),
                   (interval '3 minutes'), (interval '4 minutes')) AS k(back)
GROUP BY m.customer_id, 3;
";

/// A customer's windows, newest first; the view's branches group by
/// customer, so the customer filter is pushed into each and the kind filter
/// prunes the others.
pub const VELOCITY_WINDOWS: &str = "SELECT window_kind, window_start, window_end, \
       tx_count, amount_sum::text AS amount_sum, amount_max::text AS amount_max \
     FROM velocity_windows \
     WHERE customer_id = $1 AND ($2::text IS NULL OR window_kind = $2) \
     ORDER BY window_start DESC, window_kind \
     LIMIT $3";

/// The window kinds of `velocity_windows.window_kind`.
pub const TUMBLING_10M: &str = "tumbling_10m";
pub const TUMBLING_1H: &str = "tumbling_1h";
pub const SLIDING_5M: &str = "sliding_5m";

/// One row of `velocity_windows`.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct VelocityRow {
    pub window_kind: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub tx_count: i64,
    pub amount_sum: String,
    pub amount_max: String,
}

/// One minute of one customer, folded from the batches.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Minute {
    pub count: i64,
    /// Thousandths; i128 because a minute of maximal amounts would overflow
    /// i64 after a few thousand transactions, and the column holds 10^21.
    pub sum: i128,
    pub max: u64,
}

/// A customer's minutes, by minute: the fold's state.
pub type Minutes = BTreeMap<DateTime<Utc>, Minute>;

pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp().div_euclid(60) * 60;
    // Flooring to a minute never leaves chrono's range.
    DateTime::from_timestamp(secs, 0).unwrap_or(at)
}

/// Folds one transaction into its customer's minutes; true if it opened a
/// minute the customer did not have.
pub fn record(minutes: &mut Minutes, t: &Transaction) -> bool {
    let mut opened = false;
    let m = minutes.entry(minute_of(t.timestamp)).or_insert_with(|| {
        opened = true;
        Minute::default()
    });
    m.count += 1;
    if t.transaction_type != Some(TransactionType::Refund) {
        m.sum += i128::from(t.amount.thousandths());
        m.max = m.max.max(t.amount.thousandths());
    }
    opened
}

/// Thousandths as `numeric(24, 3)::text` prints them.
pub fn thousandths_text(x: i128) -> String {
    let sign = if x < 0 { "-" } else { "" };
    let abs = x.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// The rows `velocity_windows` holds for one customer's minutes, computed
/// as the view computes them, each kind newest first, at most `limit` per
/// kind (what [`VELOCITY_WINDOWS`] returns for that kind).
pub fn windows(minutes: &Minutes, limit: usize) -> Vec<VelocityRow> {
    let mut rows = Vec::new();
    // `date_bin` from 2000-01-01T00:00Z, a whole number of hours after the
    // epoch, so binning from the epoch is the same.
    let bin = |at: DateTime<Utc>, secs: i64| {
        DateTime::from_timestamp(at.timestamp().div_euclid(secs) * secs, 0).unwrap_or(at)
    };
    let tumbling = |secs: i64| {
        let mut w: BTreeMap<DateTime<Utc>, Minute> = BTreeMap::new();
        for (at, m) in minutes {
            add(w.entry(bin(*at, secs)).or_default(), m);
        }
        w
    };
    let mut sliding: BTreeMap<DateTime<Utc>, Minute> = BTreeMap::new();
    for (at, m) in minutes {
        for back in 0..5 {
            add(
                sliding
                    .entry(*at - chrono::Duration::minutes(back))
                    .or_default(),
                m,
            );
        }
    }
    for (kind, secs, w) in [
        (TUMBLING_10M, 600, tumbling(600)),
        (TUMBLING_1H, 3600, tumbling(3600)),
        (SLIDING_5M, 300, sliding),
    ] {
        rows.extend(
            w.into_iter()
                .rev()
                .take(limit)
                .map(|(start, m)| VelocityRow {
                    window_kind: kind.to_owned(),
                    window_start: start,
                    window_end: start + chrono::Duration::seconds(secs),
                    tx_count: m.count,
                    amount_sum: thousandths_text(m.sum),
                    amount_max: thousandths_text(i128::from(m.max)),
                }),
        );
    }
    rows
}

fn add(into: &mut Minute, m: &Minute) {
    into.count += m.count;
    into.sum += m.sum;
    into.max = into.max.max(m.max);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn thousandths_print_as_numeric_3() {
        assert_eq!(thousandths_text(0), "0.000");
        assert_eq!(thousandths_text(12_050), "12.050");
        assert_eq!(thousandths_text(-5), "-0.005");
    }

    /// The view's three kinds, computed from the same minutes.
    #[test]
    fn windows_are_the_views() {
        let mut minutes = Minutes::new();
        minutes.insert(
            at("2026-01-01T10:09:00Z"),
            Minute {
                count: 2,
                sum: 3_000,
                max: 2_000,
            },
        );
        minutes.insert(
            at("2026-01-01T10:11:00Z"),
            Minute {
                count: 1,
                sum: 500,
                max: 500,
            },
        );
        let rows = windows(&minutes, 500);
        let kind = |k: &str| -> Vec<(DateTime<Utc>, i64, String, String)> {
            rows.iter()
                .filter(|r| r.window_kind == k)
                .map(|r| {
                    (
                        r.window_start,
                        r.tx_count,
                        r.amount_sum.clone(),
                        r.amount_max.clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            kind(TUMBLING_10M),
            vec![
                (
                    at("2026-01-01T10:10:00Z"),
                    1,
                    "0.500".into(),
                    "0.500".into()
                ),
                (
                    at("2026-01-01T10:00:00Z"),
                    2,
                    "3.000".into(),
                    "2.000".into()
                ),
            ]
        );
        assert_eq!(
            kind(TUMBLING_1H),
            vec![(
                at("2026-01-01T10:00:00Z"),
                3,
                "3.500".into(),
                "2.000".into()
            )]
        );
        let sliding = kind(SLIDING_5M);
        // 10:05..=10:11 start a window holding one of the minutes.
        assert_eq!(sliding.len(), 7);
        assert_eq!(sliding[0].0, at("2026-01-01T10:11:00Z"));
        let both = sliding
            .iter()
            .find(|w| w.0 == at("2026-01-01T10:08:00Z"))
            .map(|w| w.1);
        assert_eq!(both, Some(3));
        assert!(rows.iter().all(|r| r.window_end > r.window_start));
        assert_eq!(windows(&minutes, 1).len(), 3, "the limit is per kind");
    }
}
