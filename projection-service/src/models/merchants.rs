//! `merchants`: merchant risk per hour of transaction event time (count,
//! amount, alerts, confirmed fraud, fraud rate, a flag above 5%), and the
//! per-transaction lookup that lets labels and verdicts, which name a
//! transaction or an alert rather than a merchant, reach the right hour.
//!
//! Confirmed fraud is the latest signal about a transaction, in log order:
//! a `TransactionLabeled` (any source) or the verdict of an `AlertResolved`
//! on the alert it raised. A flip moves the hour's count by one either way.
//! Signals about transactions this model does not know when it reads them
//! (no merchant, a v1 transaction, never recorded, or recorded later in the
//! log) are ignored: they are not kept waiting for a transaction that may
//! never come. Not partitioned: a label has no customer to route it by.
//!
//! Per UTC day, each merchant's and category's transactions and known
//! fraud (`merchant_days`, `category_days`), folded with
//! `domain::peers::PeerChange::of` as the command side's book is: each
//! batch's changes to a day are one `Step` upserted onto its row, so they
//! need nothing read back, and they commit with the checkpoint like the rest.
//!
//! The DDL and the pure fold (`Merchant::apply`) are the contract's
//! (`read_models::merchants`); this file loads what earlier batches left
//! and writes the rows.

use crate::copy::CopyIn;
use crate::fold::{self, Fold, WRITE_CHUNK};
use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use read_models::merchants::{DaySteps, Delta, Known, MODEL, Merchant, day_date};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct Merchants;

/// A `merchant_transactions` row as read back.
type KnownRow = (
    String,
    String,
    DateTime<Utc>,
    Option<Uuid>,
    bool,
    Option<i64>,
);

#[async_trait::async_trait]
impl Projector for Merchants {
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
        Some(Box::new(MerchantsFold::new(fresh)))
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        fold::apply_once(Box::new(MerchantsFold::new(false)), conn, events).await
    }
}

/// The transactions the batches named and the changes to merchant-hours,
/// folded in memory.
struct MerchantsFold {
    fresh: bool,
    state: Merchant,
}

impl MerchantsFold {
    fn new(fresh: bool) -> MerchantsFold {
        MerchantsFold {
            fresh,
            state: Merchant::default(),
        }
    }

    /// Reads what earlier batches left about the transactions and alerts
    /// `events` name that memory does not hold.
    async fn load(
        &mut self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        let mut tx_ids = Vec::new();
        let mut alert_ids = Vec::new();
        for e in events {
            let id = match &e.event {
                DomainEvent::TransactionRecorded(r) => r.transaction.transaction_id.as_str(),
                DomainEvent::TransactionLabeled(l) => l.transaction_id.as_str(),
                DomainEvent::AlertResolved(r) => {
                    if !self.state.by_alert.contains_key(&r.alert_id.0) {
                        alert_ids.push(r.alert_id.0);
                    }
                    continue;
                }
                _ => continue,
            };
            if !self.state.known.contains_key(id) {
                tx_ids.push(id.to_owned());
            }
        }
        if tx_ids.is_empty() && alert_ids.is_empty() {
            return Ok(());
        }
        let loaded: Vec<KnownRow> = sqlx::query_as(
            "SELECT transaction_id, merchant_id, hour, alert_id, is_fraud, signal_position \
                 FROM merchant_transactions \
                 WHERE transaction_id = ANY($1::text[]) OR alert_id = ANY($2::uuid[])",
        )
        .bind(&tx_ids)
        .bind(&alert_ids)
        .fetch_all(&mut *conn)
        .await?;
        for (id, merchant_id, hour, alert_id, is_fraud, signal_position) in loaded {
            if self.state.known.contains_key(&id) {
                continue;
            }
            if let Some(a) = alert_id {
                self.state.by_alert.insert(a, id.clone());
            }
            self.state.known.insert(
                id,
                Known {
                    merchant_id,
                    hour,
                    alert_id,
                    is_fraud,
                    signal_position,
                    dirty: false,
                },
            );
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Fold for MerchantsFold {
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        if !self.fresh {
            self.load(conn, events).await?;
        }
        for e in events {
            self.state.apply(e.position.0, &e.event);
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let known = std::mem::take(&mut self.state.known);
        self.state.by_alert.clear();
        let mut dirty: Vec<(String, Known)> = known.into_iter().filter(|(_, k)| k.dirty).collect();
        // Row order does not change the result; sorted so every run issues
        // the same statements.
        dirty.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let deltas = std::mem::take(&mut self.state.deltas);
        let mut deltas: Vec<_> = deltas.into_iter().filter(|(_, d)| !d.is_zero()).collect();
        deltas.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Every day a change reached is written, even if its counts did
        // not move: the row says the day was seen, as the book's entry does.
        let days = [
            (
                &DAYS[0],
                sorted(std::mem::take(&mut self.state.merchant_days)),
            ),
            (
                &DAYS[1],
                sorted(std::mem::take(&mut self.state.category_days)),
            ),
        ];
        if std::mem::take(&mut self.fresh) {
            // The tables are empty: every row is new.
            copy_transactions(conn, &dirty).await?;
            copy_risk(conn, &deltas).await?;
            for (table, steps) in &days {
                copy_days(conn, table, steps).await?;
            }
            return Ok(());
        }
        for chunk in dirty.chunks(WRITE_CHUNK) {
            write_transactions(conn, chunk).await?;
        }
        for chunk in deltas.chunks(WRITE_CHUNK) {
            write_risk(conn, chunk).await?;
        }
        for (table, steps) in &days {
            for chunk in steps.chunks(WRITE_CHUNK) {
                write_days(conn, table, chunk).await?;
            }
        }
        Ok(())
    }

    fn held(&self) -> usize {
        self.state.known.len()
            + self.state.deltas.len()
            + self.state.merchant_days.len()
            + self.state.category_days.len()
    }
}

async fn write_transactions(
    conn: &mut PgConnection,
    dirty: &[(String, Known)],
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(dirty.len());
    let mut merchants = Vec::with_capacity(dirty.len());
    let mut hours = Vec::with_capacity(dirty.len());
    let mut alerts = Vec::with_capacity(dirty.len());
    let mut fraud = Vec::with_capacity(dirty.len());
    let mut positions = Vec::with_capacity(dirty.len());
    for (id, k) in dirty {
        ids.push(id.clone());
        merchants.push(k.merchant_id.clone());
        hours.push(k.hour);
        alerts.push(k.alert_id);
        fraud.push(k.is_fraud);
        positions.push(k.signal_position);
    }
    sqlx::query(
        "INSERT INTO merchant_transactions \
           (transaction_id, merchant_id, hour, alert_id, is_fraud, signal_position) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::uuid[], \
           $5::bool[], $6::bigint[]) \
         ON CONFLICT (transaction_id) DO UPDATE SET is_fraud = EXCLUDED.is_fraud, \
           signal_position = EXCLUDED.signal_position",
    )
    .bind(&ids)
    .bind(&merchants)
    .bind(&hours)
    .bind(&alerts)
    .bind(&fraud)
    .bind(&positions)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn copy_transactions(
    conn: &mut PgConnection,
    dirty: &[(String, Known)],
) -> Result<(), sqlx::Error> {
    let mut copy = CopyIn::start(
        conn,
        "merchant_transactions \
           (transaction_id, merchant_id, hour, alert_id, is_fraud, signal_position)",
    )
    .await?;
    for (id, k) in dirty {
        copy.text(id)
            .text(&k.merchant_id)
            .timestamp(k.hour)
            .opt_uuid(k.alert_id)
            .bool(k.is_fraud)
            .opt_int(k.signal_position);
        copy.end_row().await?;
    }
    copy.finish().await?;
    Ok(())
}

/// The hours' rows into the empty table, with the figures `write_risk`'s
/// SQL derives (an integer-to-float division, exact the same either side).
async fn copy_risk(
    conn: &mut PgConnection,
    deltas: &[((String, DateTime<Utc>), Delta)],
) -> Result<(), sqlx::Error> {
    let mut copy = CopyIn::start(
        conn,
        "merchant_risk (merchant_id, hour, tx_count, amount_sum, alert_count, \
           confirmed_fraud, fraud_rate, flagged)",
    )
    .await?;
    for ((merchant, hour), d) in deltas {
        let fraud_rate = if d.tx_count > 0 {
            d.confirmed_fraud as f64 / d.tx_count as f64
        } else {
            0.0
        };
        copy.text(merchant)
            .timestamp(*hour)
            .int(d.tx_count)
            .thousandths(d.amount_thousandths)
            .int(d.alert_count)
            .int(d.confirmed_fraud)
            .float(fraud_rate)
            .bool(d.confirmed_fraud * 20 > d.tx_count);
        copy.end_row().await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Adds the batch's deltas to the hours' rows; sums of integers, so any
/// split of the log into batches adds up to the same rows.
async fn write_risk(
    conn: &mut PgConnection,
    deltas: &[((String, DateTime<Utc>), Delta)],
) -> Result<(), sqlx::Error> {
    let mut merchants = Vec::new();
    let mut hours = Vec::new();
    let mut tx_count = Vec::new();
    let mut amount = Vec::new();
    let mut alert_count = Vec::new();
    let mut fraud = Vec::new();
    for ((merchant, hour), d) in deltas {
        merchants.push(merchant.clone());
        hours.push(*hour);
        tx_count.push(d.tx_count);
        // i128 and text: one batch's sum may pass i64 thousandths.
        amount.push(d.amount_thousandths.to_string());
        alert_count.push(d.alert_count);
        fraud.push(d.confirmed_fraud);
    }
    if merchants.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO merchant_risk AS m (merchant_id, hour, tx_count, amount_sum, alert_count, \
           confirmed_fraud, fraud_rate, flagged) \
         SELECT t.merchant, t.hour, t.txs, t.amount / 1000.0, t.alerts, t.fraud, \
           CASE WHEN t.txs > 0 THEN t.fraud::float8 / t.txs ELSE 0 END, \
           t.fraud * 20 > t.txs \
         FROM UNNEST($1::text[], $2::timestamptz[], $3::bigint[], $4::numeric[], $5::bigint[], \
           $6::bigint[]) AS t(merchant, hour, txs, amount, alerts, fraud) \
         ON CONFLICT (merchant_id, hour) DO UPDATE SET \
           tx_count = m.tx_count + EXCLUDED.tx_count, \
           amount_sum = m.amount_sum + EXCLUDED.amount_sum, \
           alert_count = m.alert_count + EXCLUDED.alert_count, \
           confirmed_fraud = m.confirmed_fraud + EXCLUDED.confirmed_fraud, \
           fraud_rate = CASE WHEN m.tx_count + EXCLUDED.tx_count > 0 \
             THEN (m.confirmed_fraud + EXCLUDED.confirmed_fraud)::float8 \
               / (m.tx_count + EXCLUDED.tx_count) \
             ELSE 0 END, \
           flagged = (m.confirmed_fraud + EXCLUDED.confirmed_fraud) * 20 \
             > m.tx_count + EXCLUDED.tx_count",
    )
    .bind(&merchants)
    .bind(&hours)
    .bind(&tx_count)
    .bind(&amount)
    .bind(&alert_count)
    .bind(&fraud)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One day table: its COPY target and its upsert.
struct DayTable {
    copy: &'static str,
    write: &'static str,
}

/// Moves the days' rows by the batch's steps (`greatest(old + add,
/// floor)`) and inserts the days not seen before (their steps from zero),
/// in one statement. The projector is the tables' only writer, so the rows
/// the update did not find are new.
macro_rules! day_table {
    ($table:literal, $key:literal) => {
        DayTable {
            copy: concat!($table, " (", $key, ", day, transactions, fraud)"),
            write: concat!(
                "WITH s AS (SELECT * FROM UNNEST($1::text[], $2::date[], $3::bigint[], \
                   $4::bigint[], $5::bigint[], $6::bigint[]) \
                   AS s(id, day, t_add, t_floor, f_add, f_floor)), \
                 moved AS (UPDATE ",
                $table,
                " AS d SET \
                   transactions = greatest(d.transactions + s.t_add, s.t_floor), \
                   fraud = greatest(d.fraud + s.f_add, s.f_floor) \
                   FROM s WHERE d.",
                $key,
                " = s.id AND d.day = s.day RETURNING d.",
                $key,
                " AS id, d.day) \
                 INSERT INTO ",
                $table,
                " (",
                $key,
                ", day, transactions, fraud) \
                 SELECT s.id, s.day, greatest(s.t_add, s.t_floor), greatest(s.f_add, s.f_floor) \
                 FROM s WHERE NOT EXISTS \
                   (SELECT 1 FROM moved m WHERE m.id = s.id AND m.day = s.day)"
            ),
        }
    };
}

const DAYS: [DayTable; 2] = [
    day_table!("merchant_days", "merchant_id"),
    day_table!("category_days", "merchant_category"),
];

type DayRows = Vec<((String, i32), DaySteps)>;

/// Row order does not change the result; sorted so every run issues the
/// same statements.
fn sorted(steps: impl IntoIterator<Item = ((String, i32), DaySteps)>) -> DayRows {
    let mut rows: DayRows = steps.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// The days' rows into the empty table: each step from zero.
async fn copy_days(
    conn: &mut PgConnection,
    days: &DayTable,
    rows: &[((String, i32), DaySteps)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = CopyIn::start(conn, days.copy).await?;
    for ((key, day), s) in rows {
        copy.text(key)
            .text(&day_date(*day).to_string())
            .int(s.transactions.from_zero())
            .int(s.fraud.from_zero());
        copy.end_row().await?;
    }
    copy.finish().await?;
    Ok(())
}

async fn write_days(
    conn: &mut PgConnection,
    days: &DayTable,
    rows: &[((String, i32), DaySteps)],
) -> Result<(), sqlx::Error> {
    let mut keys = Vec::with_capacity(rows.len());
    let mut dates = Vec::with_capacity(rows.len());
    let (mut t_add, mut t_floor, mut f_add, mut f_floor) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((key, day), s) in rows {
        keys.push(key.clone());
        dates.push(day_date(*day));
        t_add.push(s.transactions.add);
        t_floor.push(s.transactions.floor);
        f_add.push(s.fraud.add);
        f_floor.push(s.fraud.floor);
    }
    sqlx::query(days.write)
        .bind(&keys)
        .bind(&dates)
        .bind(&t_add)
        .bind(&t_floor)
        .bind(&f_add)
        .bind(&f_floor)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
