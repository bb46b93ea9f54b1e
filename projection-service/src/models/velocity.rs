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
//! The DDL and the pure fold (`record`) are the contract's
//! (`read_models::velocity`); this file loads nothing (minutes add up) and
//! writes the folded minutes.

use crate::copy::CopyIn;
use crate::fold::{self, Fold, WRITE_CHUNK};
use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use foldhash::HashMap;
use read_models::velocity::{self, MODEL, Minute};
use sqlx::PgConnection;
use std::collections::BTreeMap;

pub struct Velocity;

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
            if velocity::record(minutes, t) {
                self.held += 1;
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
        MODEL.name
    }

    fn version(&self) -> u32 {
        MODEL.version
    }

    fn partitioned(&self) -> bool {
        MODEL.partitioned
    }

    fn ddl(&self) -> &'static str {
        MODEL.ddl
    }

    fn apply_indexes(&self) -> &'static [&'static str] {
        MODEL.apply_indexes
    }

    fn tables(&self) -> &'static [&'static str] {
        MODEL.tables
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
