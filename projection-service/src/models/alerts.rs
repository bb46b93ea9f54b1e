//! `alerts`: one row per raised alert, with the transaction's merchant,
//! amount and currency, the rules that fired, and its lifecycle (open,
//! acknowledged, resolved with a verdict), for the analysts' dashboard.
//!
//! The merchant, amount and currency are only in the `TransactionRecorded`
//! that precedes the `AlertRaised` in the customer's stream, and a batch may
//! end between the two, so they wait in `alert_context` (keyed by the alert
//! id the transaction names) until the alert is raised, which removes them.
//!
//! The lifecycle only moves forward, and the first word stands: the first
//! acknowledgement of an open alert, the first resolution. An
//! acknowledgement of a resolved alert, a second acknowledgement and a
//! second resolution change nothing here (the command side already refuses
//! a contrary second verdict; the events stay in the audit history).
//! Lifecycle events for an alert not raised (yet) are ignored: the command
//! side accepts them only for raised alerts (ADR 0003), so the log has none.
//!
//! The DDL and the pure fold (`AlertState::apply`) are the contract's
//! (`read_models::alerts`); this file loads what earlier batches left about
//! the alerts a batch names and writes the rows.

use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use read_models::alerts::{Alert, AlertState, Context, ContextSlot, Lifecycle, MODEL, Status};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

pub struct Alerts;

type ContextRow = (Uuid, String, Option<String>, i64, Option<String>);

type LifecycleRow = (
    Uuid,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

#[async_trait::async_trait]
impl Projector for Alerts {
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

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        let mut alert_ids = Vec::new();
        let mut context_ids = Vec::new();
        for e in events {
            match &e.event {
                DomainEvent::TransactionRecorded(r) => {
                    if let Some(a) = r.alert_id {
                        context_ids.push(a.0);
                    }
                }
                DomainEvent::AlertRaised(r) => {
                    alert_ids.push(r.alert_id.0);
                    context_ids.push(r.alert_id.0);
                }
                DomainEvent::AlertAcknowledged(a) => alert_ids.push(a.alert_id.0),
                DomainEvent::AlertResolved(r) => alert_ids.push(r.alert_id.0),
                _ => {}
            }
        }
        if alert_ids.is_empty() && context_ids.is_empty() {
            return Ok(());
        }

        let mut state = AlertState {
            alerts: load_alerts(conn, &alert_ids).await?,
            contexts: load_contexts(conn, &context_ids).await?,
        };
        for e in events {
            state.apply(e.position.0, e.event_time, e.recorded_time, &e.event);
        }

        write_contexts(conn, &state.contexts).await?;
        insert_raised(conn, &state.alerts).await?;
        update_lifecycles(conn, &state.alerts).await
    }
}

async fn load_alerts(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<BTreeMap<Uuid, Alert>, sqlx::Error> {
    let mut alerts = BTreeMap::new();
    if ids.is_empty() {
        return Ok(alerts);
    }
    let rows: Vec<LifecycleRow> = sqlx::query_as(
        "SELECT alert_id, status, acknowledged_at, acknowledged_by, acknowledged_note, \
           resolved_at, resolved_by, verdict, resolution_note, updated_position \
         FROM alerts WHERE alert_id = ANY($1::uuid[])",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    for (id, status, ack_at, ack_by, ack_note, res_at, res_by, verdict, res_note, pos) in rows {
        let lifecycle = Lifecycle {
            status: Status::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode(format!("alerts.status {status:?} is not a status").into())
            })?,
            acknowledged_at: ack_at,
            acknowledged_by: ack_by,
            acknowledged_note: ack_note,
            resolved_at: res_at,
            resolved_by: res_by,
            verdict,
            resolution_note: res_note,
            updated_position: pos,
        };
        alerts.insert(
            id,
            Alert {
                raised: None,
                lifecycle,
                dirty: false,
            },
        );
    }
    Ok(alerts)
}

async fn load_contexts(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<BTreeMap<Uuid, ContextSlot>, sqlx::Error> {
    let mut contexts = BTreeMap::new();
    if ids.is_empty() {
        return Ok(contexts);
    }
    let rows: Vec<ContextRow> = sqlx::query_as(
        "SELECT alert_id, transaction_id, merchant_id, amount_thousandths, currency \
         FROM alert_context WHERE alert_id = ANY($1::uuid[])",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    for (id, transaction_id, merchant_id, amount_thousandths, currency) in rows {
        let context = Context {
            transaction_id,
            merchant_id,
            amount_thousandths,
            currency,
        };
        contexts.insert(
            id,
            ContextSlot {
                context: Some(context),
                dirty: false,
            },
        );
    }
    Ok(contexts)
}

/// Keeps the contexts still waiting for their alert, drops the used ones.
async fn write_contexts(
    conn: &mut PgConnection,
    contexts: &BTreeMap<Uuid, ContextSlot>,
) -> Result<(), sqlx::Error> {
    let mut gone = Vec::new();
    let mut ids = Vec::new();
    let mut transactions = Vec::new();
    let mut merchants = Vec::new();
    let mut amounts = Vec::new();
    let mut currencies = Vec::new();
    for (id, slot) in contexts.iter().filter(|(_, s)| s.dirty) {
        match &slot.context {
            None => gone.push(*id),
            Some(c) => {
                ids.push(*id);
                transactions.push(c.transaction_id.clone());
                merchants.push(c.merchant_id.clone());
                amounts.push(c.amount_thousandths);
                currencies.push(c.currency.clone());
            }
        }
    }
    if !gone.is_empty() {
        sqlx::query("DELETE FROM alert_context WHERE alert_id = ANY($1::uuid[])")
            .bind(&gone)
            .execute(&mut *conn)
            .await?;
    }
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO alert_context \
               (alert_id, transaction_id, merchant_id, amount_thousandths, currency) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[]) \
             ON CONFLICT (alert_id) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
               merchant_id = EXCLUDED.merchant_id, \
               amount_thousandths = EXCLUDED.amount_thousandths, currency = EXCLUDED.currency",
        )
        .bind(&ids)
        .bind(&transactions)
        .bind(&merchants)
        .bind(&amounts)
        .bind(&currencies)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Column arrays of the lifecycle, shared by the insert and the update.
#[derive(Default)]
struct LifecycleColumns {
    status: Vec<&'static str>,
    acknowledged_at: Vec<Option<DateTime<Utc>>>,
    acknowledged_by: Vec<Option<String>>,
    acknowledged_note: Vec<Option<String>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
    resolved_by: Vec<Option<String>>,
    verdict: Vec<Option<String>>,
    resolution_note: Vec<Option<String>>,
    updated_position: Vec<i64>,
}

impl LifecycleColumns {
    fn push(&mut self, l: &Lifecycle) {
        self.status.push(l.status.as_str());
        self.acknowledged_at.push(l.acknowledged_at);
        self.acknowledged_by.push(l.acknowledged_by.clone());
        self.acknowledged_note.push(l.acknowledged_note.clone());
        self.resolved_at.push(l.resolved_at);
        self.resolved_by.push(l.resolved_by.clone());
        self.verdict.push(l.verdict.clone());
        self.resolution_note.push(l.resolution_note.clone());
        self.updated_position.push(l.updated_position);
    }
}

/// The alerts this batch raised, with their lifecycle so far.
async fn insert_raised(
    conn: &mut PgConnection,
    alerts: &BTreeMap<Uuid, Alert>,
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::new();
    let mut transactions = Vec::new();
    let mut customers = Vec::new();
    let mut merchants = Vec::new();
    let mut amounts: Vec<Option<i64>> = Vec::new();
    let mut currencies = Vec::new();
    let mut priorities = Vec::new();
    let mut scores = Vec::new();
    let mut decisions = Vec::new();
    let mut rules = Vec::new();
    let mut rulesets = Vec::new();
    let mut raised_at = Vec::new();
    let mut recorded_at = Vec::new();
    let mut positions = Vec::new();
    let mut models = Vec::new();
    let mut model_scores = Vec::new();
    let mut top_features = Vec::new();
    let mut life = LifecycleColumns::default();
    for (id, alert) in alerts {
        let Some(r) = &alert.raised else { continue };
        models.push(r.model_version.clone());
        model_scores.push(r.model_score);
        top_features.push(r.top_features.clone());
        ids.push(*id);
        transactions.push(r.transaction_id.clone());
        customers.push(r.customer_id.clone());
        merchants.push(r.context.as_ref().and_then(|c| c.merchant_id.clone()));
        amounts.push(r.context.as_ref().map(|c| c.amount_thousandths));
        currencies.push(r.context.as_ref().and_then(|c| c.currency.clone()));
        priorities.push(r.priority);
        scores.push(r.risk_score);
        decisions.push(r.decision);
        rules.push(r.rules_fired.clone());
        rulesets.push(r.ruleset_version.clone());
        raised_at.push(r.raised_at);
        recorded_at.push(r.raised_recorded_at);
        positions.push(r.raised_position);
        life.push(&alert.lifecycle);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO alerts (alert_id, transaction_id, customer_id, merchant_id, amount, \
           currency, priority, risk_score, decision, rules_fired, rule_names, ruleset_version, \
           status, raised_at, raised_recorded_at, raised_position, acknowledged_at, \
           acknowledged_by, acknowledged_note, resolved_at, resolved_by, verdict, \
           resolution_note, updated_position, model_version, model_score, top_features) \
         SELECT t.id, t.tx, t.customer, t.merchant, t.amount / 1000.0, t.currency, t.priority, \
           t.score, t.decision, t.rules::jsonb, \
           ARRAY(SELECT h.hit ->> 'rule' FROM jsonb_array_elements(t.rules::jsonb) \
             WITH ORDINALITY AS h(hit, n) ORDER BY h.n), \
           t.ruleset, t.status, t.raised_at, t.recorded_at, t.position, t.ack_at, t.ack_by, \
           t.ack_note, t.res_at, t.res_by, t.verdict, t.res_note, t.updated, t.model, \
           t.model_score, t.top::jsonb \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], \
           $7::text[], $8::float8[], $9::text[], $10::text[], $11::text[], $12::text[], \
           $13::timestamptz[], $14::timestamptz[], $15::bigint[], $16::timestamptz[], \
           $17::text[], $18::text[], $19::timestamptz[], $20::text[], $21::text[], $22::text[], \
           $23::bigint[], $24::text[], $25::float8[], $26::text[]) \
           AS t(id, tx, customer, merchant, amount, currency, priority, score, decision, rules, \
           ruleset, status, raised_at, recorded_at, position, ack_at, ack_by, ack_note, res_at, \
           res_by, verdict, res_note, updated, model, model_score, top) \
         ON CONFLICT (alert_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&transactions)
    .bind(&customers)
    .bind(&merchants)
    .bind(&amounts)
    .bind(&currencies)
    .bind(&priorities)
    .bind(&scores)
    .bind(&decisions)
    .bind(&rules)
    .bind(&rulesets)
    .bind(&life.status)
    .bind(&raised_at)
    .bind(&recorded_at)
    .bind(&positions)
    .bind(&life.acknowledged_at)
    .bind(&life.acknowledged_by)
    .bind(&life.acknowledged_note)
    .bind(&life.resolved_at)
    .bind(&life.resolved_by)
    .bind(&life.verdict)
    .bind(&life.resolution_note)
    .bind(&life.updated_position)
    .bind(&models)
    .bind(&model_scores)
    .bind(&top_features)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored alerts whose lifecycle the batch moved on.
async fn update_lifecycles(
    conn: &mut PgConnection,
    alerts: &BTreeMap<Uuid, Alert>,
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::new();
    let mut life = LifecycleColumns::default();
    for (id, alert) in alerts {
        if alert.raised.is_none() && alert.dirty {
            ids.push(*id);
            life.push(&alert.lifecycle);
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE alerts AS a SET status = t.status, acknowledged_at = t.ack_at, \
           acknowledged_by = t.ack_by, acknowledged_note = t.ack_note, resolved_at = t.res_at, \
           resolved_by = t.res_by, verdict = t.verdict, resolution_note = t.res_note, \
           updated_position = t.updated \
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], \
           $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::bigint[]) \
           AS t(id, status, ack_at, ack_by, ack_note, res_at, res_by, verdict, res_note, updated) \
         WHERE a.alert_id = t.id",
    )
    .bind(&ids)
    .bind(&life.status)
    .bind(&life.acknowledged_at)
    .bind(&life.acknowledged_by)
    .bind(&life.acknowledged_note)
    .bind(&life.resolved_at)
    .bind(&life.resolved_by)
    .bind(&life.verdict)
    .bind(&life.resolution_note)
    .bind(&life.updated_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
