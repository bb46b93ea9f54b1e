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

use crate::copy::CopyIn;
use crate::fold::{self, Fold, WRITE_CHUNK};
use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::transaction::TransactionType;
use foldhash::HashMap;
use sqlx::PgConnection;
use std::collections::BTreeMap;

pub struct Velocity;

const DDL: &str = "
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

/// One minute of one customer, folded from the batches.
#[derive(Default)]
struct Minute {
    count: i64,
    /// Thousandths; i128 because a minute of maximal amounts would overflow
    /// i64 after a few thousand transactions, and the column holds 10^21.
    sum: i128,
    max: u64,
}

fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp().div_euclid(60) * 60;
    // Flooring to a minute never leaves chrono's range.
    DateTime::from_timestamp(secs, 0).unwrap_or(at)
}

/// The minutes the batches touched, per customer, folded in memory. Minutes
/// add up, so nothing is ever read back: a flush adds them to the rows (or,
/// into a rebuild's empty table, copies them in).
#[derive(Default)]
struct VelocityFold {
    minutes: HashMap<String, BTreeMap<DateTime<Utc>, Minute>>,
    held: usize,
    fresh: bool,
}

#[async_trait::async_trait]
impl Fold for VelocityFold {
    async fn apply(
        &mut self,
        _conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        for e in events {
            let DomainEvent::TransactionRecorded(r) = &e.event else {
                continue;
            };
            let t = &r.transaction;
            let customer = t.customer_id.as_str();
            let minutes = match self.minutes.get_mut(customer) {
                Some(m) => m,
                None => self.minutes.entry(customer.to_owned()).or_default(),
            };
            let m = minutes.entry(minute_of(t.timestamp)).or_insert_with(|| {
                self.held += 1;
                Minute::default()
            });
            m.count += 1;
            if t.transaction_type != Some(TransactionType::Refund) {
                m.sum += i128::from(t.amount.thousandths());
                m.max = m.max.max(t.amount.thousandths());
            }
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut all: Vec<(String, BTreeMap<DateTime<Utc>, Minute>)> =
            self.minutes.drain().collect();
        self.held = 0;
        // Ordered, so rows are written (and locked) in key order.
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if std::mem::take(&mut self.fresh) {
            return copy_rows(conn, all).await;
        }
        let mut rows = all
            .into_iter()
            .flat_map(|(c, minutes)| minutes.into_iter().map(move |(at, m)| (c.clone(), at, m)));
        loop {
            let chunk: Vec<_> = rows.by_ref().take(WRITE_CHUNK).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            store(conn, chunk).await?;
        }
    }

    fn held(&self) -> usize {
        self.held
    }
}

/// Every minute into the empty table.
async fn copy_rows(
    conn: &mut PgConnection,
    all: Vec<(String, BTreeMap<DateTime<Utc>, Minute>)>,
) -> Result<(), sqlx::Error> {
    let mut copy = CopyIn::start(
        conn,
        "velocity_minutes (customer_id, minute, tx_count, amount_sum, amount_max)",
    )
    .await?;
    for (customer, minutes) in &all {
        for (at, m) in minutes {
            copy.text(customer)
                .timestamp(*at)
                .int(m.count)
                .thousandths(m.sum)
                .thousandths(i128::from(i64::try_from(m.max).unwrap_or(i64::MAX)));
            copy.end_row().await?;
        }
    }
    copy.finish().await?;
    Ok(())
}

async fn store(
    conn: &mut PgConnection,
    rows: Vec<(String, DateTime<Utc>, Minute)>,
) -> Result<(), sqlx::Error> {
    let mut customer = Vec::with_capacity(rows.len());
    let mut minute = Vec::with_capacity(rows.len());
    let mut count = Vec::with_capacity(rows.len());
    let mut sum = Vec::with_capacity(rows.len());
    let mut max = Vec::with_capacity(rows.len());
    for (c, at, m) in rows {
        customer.push(c);
        minute.push(at);
        count.push(m.count);
        // Through text: sqlx has no numeric type without extra features.
        sum.push(m.sum.to_string());
        max.push(i64::try_from(m.max).unwrap_or(i64::MAX));
    }
    sqlx::query(
        "INSERT INTO velocity_minutes (customer_id, minute, tx_count, amount_sum, amount_max) \
         SELECT t.customer, t.minute, t.count, t.sum::numeric / 1000, t.max / 1000.0 \
         FROM UNNEST($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::bigint[]) \
           AS t(customer, minute, count, sum, max) \
         ON CONFLICT (customer_id, minute) DO UPDATE SET \
           tx_count = velocity_minutes.tx_count + EXCLUDED.tx_count, \
           amount_sum = velocity_minutes.amount_sum + EXCLUDED.amount_sum, \
           amount_max = GREATEST(velocity_minutes.amount_max, EXCLUDED.amount_max)",
    )
    .bind(&customer)
    .bind(&minute)
    .bind(&count)
    .bind(&sum)
    .bind(&max)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Projector for Velocity {
    fn name(&self) -> &'static str {
        "velocity"
    }

    fn version(&self) -> u32 {
        1
    }

    fn partitioned(&self) -> bool {
        true
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn tables(&self) -> &'static [&'static str] {
        &["velocity_minutes"]
    }

    fn fold(&self, fresh: bool) -> Option<Box<dyn Fold>> {
        Some(Box::new(VelocityFold {
            fresh,
            ..VelocityFold::default()
        }))
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        fold::apply_once(Box::<VelocityFold>::default(), conn, events).await
    }
}
