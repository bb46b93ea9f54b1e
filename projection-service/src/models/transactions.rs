//! `transactions`: one row per decided transaction (decision, score, rules
//! fired, lateness, the alert it raised, the shadow policy's outcome) and
//! the latest label each transaction received. Partitioned by customer;
//! labels (which name a transaction, not a customer) are projected by
//! partition 0 into their own table, so they never wait for the
//! transaction's partition.
//!
//! The DDL and the pure fold (`TransactionBatch::apply`: the rows and labels
//! each event makes) are the contract's (`read_models::transactions`); this
//! file writes them: upserts live, COPY into a rebuild's fresh table.

use crate::copy::CopyIn;
use crate::fold::Fold;
use crate::projector::{ProjectedEvent, Projector};
use read_models::transactions::{Label, MODEL, Rows, TransactionBatch};
use sqlx::PgConnection;
use std::collections::HashMap;

pub struct Transactions;

/// The batch's transaction rows and last labels, folded by the contract.
fn collect(events: &[ProjectedEvent]) -> TransactionBatch {
    let mut batch = TransactionBatch::default();
    for e in events {
        batch.apply(e.position.0, e.event_time, e.recorded_time, &e.event);
    }
    batch
}

#[async_trait::async_trait]
impl Projector for Transactions {
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
        fresh.then(|| Box::new(CopyIntoFresh) as Box<dyn Fold>)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        let TransactionBatch { rows, labels } = collect(events);
        if !rows.is_empty() {
            insert(conn, &rows).await?;
        }
        write_labels(conn, labels).await
    }
}

/// A rebuild's writes: each page's rows copied straight into the fresh
/// table (nothing held in memory). A transaction id recorded twice in the
/// log would break the copy's primary key; that page then goes through the
/// upsert instead, which keeps the first, as live projection does.
struct CopyIntoFresh;

#[async_trait::async_trait]
impl Fold for CopyIntoFresh {
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        let TransactionBatch { rows, labels } = collect(events);
        if !rows.is_empty() {
            sqlx::query("SAVEPOINT copy_rows")
                .execute(&mut *conn)
                .await?;
            match copy(conn, &rows).await {
                Ok(()) => {
                    sqlx::query("RELEASE SAVEPOINT copy_rows")
                        .execute(&mut *conn)
                        .await?;
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    sqlx::query("ROLLBACK TO SAVEPOINT copy_rows")
                        .execute(&mut *conn)
                        .await?;
                    insert(conn, &rows).await?;
                }
                Err(e) => return Err(e),
            }
        }
        write_labels(conn, labels).await
    }

    async fn flush(&mut self, _conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }

    fn held(&self) -> usize {
        0
    }
}

async fn copy(conn: &mut PgConnection, rows: &Rows) -> Result<(), sqlx::Error> {
    let mut copy = CopyIn::start(
        conn,
        "transactions (transaction_id, customer_id, merchant_id, merchant_category, \
           event_time, recorded_time, position, amount, currency, transaction_type, \
           payment_method, device_type, city, country, latitude, longitude, decision, \
           risk_score, rules_fired, ruleset_version, late, alert_id, input_schema, \
           shadow_version, shadow_decision, shadow_priority, shadow_risk_score, \
           model_version, model_score)",
    )
    .await?;
    for i in 0..rows.len() {
        copy.text(&rows.transaction_id[i])
            .text(&rows.customer_id[i])
            .opt_text(rows.merchant_id[i].as_deref())
            .opt_text(rows.merchant_category[i].as_deref())
            .timestamp(rows.event_time[i])
            .timestamp(rows.recorded_time[i])
            .int(rows.position[i])
            .thousandths(i128::from(rows.amount_thousandths[i]))
            .opt_text(rows.currency[i].as_deref())
            .opt_text(rows.transaction_type[i].as_deref())
            .opt_text(rows.payment_method[i].as_deref())
            .opt_text(rows.device_type[i].as_deref())
            .opt_text(rows.city[i].as_deref())
            .opt_text(rows.country[i].as_deref())
            .opt_float(rows.latitude[i])
            .opt_float(rows.longitude[i])
            .text(&rows.decision[i])
            .float(rows.risk_score[i])
            .text(&rows.rules_fired[i])
            .text(&rows.ruleset_version[i])
            .bool(rows.late[i])
            .opt_uuid(rows.alert_id[i])
            .int(rows.input_schema[i])
            .opt_text(rows.shadow_version[i].as_deref())
            .opt_text(rows.shadow_decision[i].as_deref())
            .opt_text(rows.shadow_priority[i].as_deref())
            .opt_float(rows.shadow_risk_score[i])
            .opt_text(rows.model_version[i].as_deref())
            .opt_float(rows.model_score[i]);
        copy.end_row().await?;
    }
    copy.finish().await?;
    Ok(())
}

async fn insert(conn: &mut PgConnection, rows: &Rows) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO transactions (transaction_id, customer_id, merchant_id, \
               merchant_category, event_time, recorded_time, position, amount, currency, \
               transaction_type, payment_method, device_type, city, country, latitude, \
               longitude, decision, risk_score, rules_fired, ruleset_version, late, alert_id, \
               input_schema, shadow_version, shadow_decision, shadow_priority, \
               shadow_risk_score, model_version, model_score) \
             SELECT t.id, t.customer, t.merchant, t.category, t.event_time, t.recorded_time, \
               t.position, t.amount / 1000.0, t.currency, t.kind, t.method, t.device, t.city, \
               t.country, t.lat, t.lon, t.decision, t.score, t.rules::jsonb, t.ruleset, t.late, \
               t.alert, t.input_schema, t.shadow, t.shadow_decision, t.shadow_priority, \
               t.shadow_score, t.model, t.model_score \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], \
               $6::timestamptz[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], \
               $11::text[], $12::text[], $13::text[], $14::text[], $15::float8[], \
               $16::float8[], $17::text[], $18::float8[], $19::text[], $20::text[], \
               $21::bool[], $22::uuid[], $23::int2[], $24::text[], $25::text[], $26::text[], \
               $27::float8[], $28::text[], $29::float8[]) \
               AS t(id, customer, merchant, category, event_time, recorded_time, position, \
               amount, currency, kind, method, device, city, country, lat, lon, decision, \
               score, rules, ruleset, late, alert, input_schema, shadow, shadow_decision, \
               shadow_priority, shadow_score, model, model_score) \
             ON CONFLICT (transaction_id) DO NOTHING",
    )
    .bind(&rows.transaction_id)
    .bind(&rows.customer_id)
    .bind(&rows.merchant_id)
    .bind(&rows.merchant_category)
    .bind(&rows.event_time)
    .bind(&rows.recorded_time)
    .bind(&rows.position)
    .bind(&rows.amount_thousandths)
    .bind(&rows.currency)
    .bind(&rows.transaction_type)
    .bind(&rows.payment_method)
    .bind(&rows.device_type)
    .bind(&rows.city)
    .bind(&rows.country)
    .bind(&rows.latitude)
    .bind(&rows.longitude)
    .bind(&rows.decision)
    .bind(&rows.risk_score)
    .bind(&rows.rules_fired)
    .bind(&rows.ruleset_version)
    .bind(&rows.late)
    .bind(&rows.alert_id)
    .bind(&rows.input_schema)
    .bind(&rows.shadow_version)
    .bind(&rows.shadow_decision)
    .bind(&rows.shadow_priority)
    .bind(&rows.shadow_risk_score)
    .bind(&rows.model_version)
    .bind(&rows.model_score)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_labels(
    conn: &mut PgConnection,
    labels: HashMap<String, Label>,
) -> Result<(), sqlx::Error> {
    if !labels.is_empty() {
        let mut ids = Vec::with_capacity(labels.len());
        let mut fraud = Vec::with_capacity(labels.len());
        let mut source = Vec::with_capacity(labels.len());
        let mut position = Vec::with_capacity(labels.len());
        let mut at = Vec::with_capacity(labels.len());
        for (id, (f, s, p, t)) in labels {
            ids.push(id);
            fraud.push(f);
            source.push(s);
            position.push(p);
            at.push(t);
        }
        sqlx::query(
            "INSERT INTO transaction_labels (transaction_id, is_fraud, source, position, labeled_at) \
             SELECT * FROM UNNEST($1::text[], $2::bool[], $3::text[], $4::bigint[], $5::timestamptz[]) \
             ON CONFLICT (transaction_id) DO UPDATE SET is_fraud = EXCLUDED.is_fraud, \
               source = EXCLUDED.source, position = EXCLUDED.position, labeled_at = EXCLUDED.labeled_at",
        )
        .bind(&ids)
        .bind(&fraud)
        .bind(&source)
        .bind(&position)
        .bind(&at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
