//! `alerts`: one row per raised alert, with the transaction's merchant,
//! amount and currency, the rules that fired, the model's version and score
//! and the features that explain it (frozen when it was raised), and its lifecycle (open,
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
//! The contract: the model's declaration and DDL, the row type and the
//! look-ups by key the query API runs, and the pure fold (`AlertState::apply`);
//! the projector in projection-service `models::alerts` loads what earlier
//! batches left and writes the rows.

use crate::model::Model;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::events::Verdict;
use std::collections::BTreeMap;
use uuid::Uuid;

pub const MODEL: Model = Model {
    name: "alerts",
    // 2: the model's version and score, and the features that pushed the
    // score up, frozen when the alert was raised.
    version: 2,
    partitioned: false,
    ddl: DDL,
    tables: &["alerts", "alert_context"],
    apply_indexes: &[],
};

pub const DDL: &str = "
CREATE TABLE alerts (
    alert_id uuid PRIMARY KEY,
    transaction_id text NOT NULL,
    customer_id text NOT NULL,
    merchant_id text,
    amount numeric(24, 3),
    currency text,
    priority text NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    risk_score double precision NOT NULL,
    decision text NOT NULL,
    rules_fired jsonb NOT NULL,
    rule_names text[] NOT NULL,
    ruleset_version text NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    raised_at timestamptz NOT NULL,
    raised_recorded_at timestamptz NOT NULL,
    raised_position bigint NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    acknowledged_note text,
    resolved_at timestamptz,
    resolved_by text,
    verdict text CHECK (verdict IN ('confirmed_fraud', 'false_positive')),
    resolution_note text,
    updated_position bigint NOT NULL,
    -- The live policy's model (null: none), its score and the features
    -- that pushed the score up most, largest first:
    -- [{feature, value, contribution}].
    model_version text,
    model_score double precision,
    top_features jsonb NOT NULL DEFAULT '[]'
);
-- The dashboard pages by (raised_at, alert_id), newest first.
CREATE INDEX alerts_status_priority ON alerts (status, priority, raised_at DESC, alert_id DESC);
CREATE INDEX alerts_customer ON alerts (customer_id, raised_at DESC, alert_id DESC);
CREATE INDEX alerts_merchant ON alerts (merchant_id, raised_at DESC, alert_id DESC);
CREATE INDEX alerts_raised_at ON alerts (raised_at DESC, alert_id DESC);
CREATE INDEX alerts_transaction ON alerts (transaction_id);
CREATE INDEX alerts_rule_names ON alerts USING GIN (rule_names);

CREATE TABLE alert_context (
    alert_id uuid PRIMARY KEY,
    transaction_id text NOT NULL,
    merchant_id text,
    amount_thousandths bigint NOT NULL,
    currency text
);
";

/// The columns of `alerts` an `AlertRow` reads.
#[macro_export]
macro_rules! alert_columns {
    () => {
        "alert_id, transaction_id, customer_id, merchant_id, amount::text AS amount, currency, \
         priority, risk_score, decision, rules_fired::text AS rules_fired, rule_names, \
         ruleset_version, status, raised_at, raised_recorded_at, raised_position, \
         acknowledged_at, acknowledged_by, acknowledged_note, resolved_at, resolved_by, \
         verdict, resolution_note, updated_position, model_version, model_score, \
         top_features::text AS top_features"
    };
}

pub const ALERTS_BY_ID: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE alert_id = ANY($1)"
);

pub const ALERTS_BY_TRANSACTION: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE transaction_id = ANY($1) ORDER BY raised_position"
);

/// One row of `alerts`.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct AlertRow {
    pub alert_id: Uuid,
    pub transaction_id: String,
    pub customer_id: String,
    pub merchant_id: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub priority: String,
    pub risk_score: f64,
    pub decision: String,
    pub rules_fired: String,
    pub rule_names: Vec<String>,
    pub ruleset_version: String,
    pub status: String,
    pub raised_at: DateTime<Utc>,
    pub raised_recorded_at: DateTime<Utc>,
    pub raised_position: i64,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_note: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub verdict: Option<String>,
    pub resolution_note: Option<String>,
    pub updated_position: i64,
    pub model_version: Option<String>,
    pub model_score: Option<f64>,
    /// JSON: `[{feature, value, contribution}]` (`domain::model::Contribution`).
    pub top_features: String,
}

/// The filter every alert list shares; a null argument folds away.
macro_rules! alert_filter {
    () => {
        " WHERE ($1::text[] IS NULL OR priority = ANY($1)) \
           AND ($2::text[] IS NULL OR status = ANY($2)) \
           AND ($3::text IS NULL OR rule_names @> ARRAY[$3::text]) \
           AND ($4::text IS NULL OR customer_id = $4) \
           AND ($5::text IS NULL OR merchant_id = $5) \
           AND ($6::timestamptz IS NULL OR raised_at >= $6) \
           AND ($7::timestamptz IS NULL OR raised_at < $7)"
    };
}

/// A page of alerts, newest first, filtered.
pub const ALERT_PAGE: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts",
    alert_filter!(),
    " AND ($8::timestamptz IS NULL OR (raised_at, alert_id) < ($8, $9::uuid)) \
     ORDER BY raised_at DESC, alert_id DESC \
     LIMIT $10"
);

/// How many alerts the filter matches.
pub const ALERT_COUNT: &str = concat!("SELECT count(*) FROM alerts", alert_filter!());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Acknowledged,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
        }
    }

    /// The status a stored `alerts.status` names; `None` for any other text
    /// (the projector reports it as a decode error).
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "open" => Some(Status::Open),
            "acknowledged" => Some(Status::Acknowledged),
            "resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

pub fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::ConfirmedFraud => "confirmed_fraud",
        Verdict::FalsePositive => "false_positive",
    }
}

/// What an alert needs from its transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub transaction_id: String,
    pub merchant_id: Option<String>,
    pub amount_thousandths: i64,
    pub currency: Option<String>,
}

/// One `alert_context` row as the batch leaves it.
#[derive(Debug, Default)]
pub struct ContextSlot {
    pub context: Option<Context>,
    /// Changed by the batch: upsert it if present, delete it if not.
    pub dirty: bool,
}

/// The columns fixed when the alert is raised.
#[derive(Debug, Clone)]
pub struct Raised {
    pub transaction_id: String,
    pub customer_id: String,
    pub context: Option<Context>,
    pub priority: &'static str,
    pub risk_score: f64,
    pub decision: &'static str,
    pub rules_fired: String,
    pub ruleset_version: String,
    pub raised_at: DateTime<Utc>,
    pub raised_recorded_at: DateTime<Utc>,
    pub raised_position: i64,
    pub model_version: Option<String>,
    pub model_score: Option<f64>,
    /// JSON of `domain::model::Contribution`s.
    pub top_features: String,
}

/// The columns the lifecycle changes.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub status: Status,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_note: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub verdict: Option<String>,
    pub resolution_note: Option<String>,
    pub updated_position: i64,
}

impl Lifecycle {
    pub fn open(position: i64) -> Lifecycle {
        Lifecycle {
            status: Status::Open,
            acknowledged_at: None,
            acknowledged_by: None,
            acknowledged_note: None,
            resolved_at: None,
            resolved_by: None,
            verdict: None,
            resolution_note: None,
            updated_position: position,
        }
    }
}

/// An alert as the batch leaves it.
#[derive(Debug)]
pub struct Alert {
    /// Set when the batch raised it (a new row); `None` for a stored alert.
    pub raised: Option<Raised>,
    pub lifecycle: Lifecycle,
    pub dirty: bool,
}

/// The alerts and waiting contexts a batch touches: the fold's state (the
/// projector loads into both maps what earlier batches left, and writes
/// the dirty entries). Ordered maps, so the rows are written in id order.
#[derive(Debug, Default)]
pub struct AlertState {
    pub alerts: BTreeMap<Uuid, Alert>,
    pub contexts: BTreeMap<Uuid, ContextSlot>,
}

impl AlertState {
    /// Folds one event (at log `position`, with its event and recorded
    /// times).
    pub fn apply(
        &mut self,
        position: u64,
        event_time: DateTime<Utc>,
        recorded_time: DateTime<Utc>,
        event: &DomainEvent,
    ) {
        let (alerts, contexts) = (&mut self.alerts, &mut self.contexts);
        let position = position as i64;
        match event {
            DomainEvent::TransactionRecorded(r) => {
                let Some(alert_id) = r.alert_id else {
                    return;
                };
                let t = &r.transaction;
                let slot = contexts.entry(alert_id.0).or_default();
                // One transaction per alert id; should one repeat, the
                // first stands.
                if slot.context.is_none() {
                    slot.context = Some(Context {
                        transaction_id: t.transaction_id.as_str().to_owned(),
                        merchant_id: t.merchant_id.as_ref().map(|m| m.as_str().to_owned()),
                        amount_thousandths: t.amount.thousandths().min(i64::MAX as u64) as i64,
                        currency: t.currency.map(|c| c.code().to_owned()),
                    });
                    slot.dirty = true;
                }
            }
            DomainEvent::AlertRaised(r) => {
                if alerts.contains_key(&r.alert_id.0) {
                    return;
                }
                let slot = contexts.entry(r.alert_id.0).or_default();
                let context = slot.context.take();
                slot.dirty = true;
                let raised = Raised {
                    transaction_id: r.transaction_id.as_str().to_owned(),
                    customer_id: r.customer_id.as_str().to_owned(),
                    context,
                    priority: r.priority.as_str(),
                    risk_score: r.risk_score,
                    decision: r.decision.as_str(),
                    rules_fired: serde_json::to_string(&r.rules_fired)
                        .unwrap_or_else(|_| "[]".into()),
                    ruleset_version: r.ruleset_version.clone(),
                    // The ingest gives the alert its transaction's event time.
                    raised_at: event_time,
                    raised_recorded_at: recorded_time,
                    raised_position: position,
                    model_version: r.model.as_ref().map(|m| m.version.clone()),
                    model_score: r.model.as_ref().map(|m| m.score),
                    top_features: serde_json::to_string(&r.top_features)
                        .unwrap_or_else(|_| "[]".into()),
                };
                alerts.insert(
                    r.alert_id.0,
                    Alert {
                        raised: Some(raised),
                        lifecycle: Lifecycle::open(position),
                        dirty: true,
                    },
                );
            }
            DomainEvent::AlertAcknowledged(a) => {
                if let Some(alert) = alerts.get_mut(&a.alert_id.0)
                    && alert.lifecycle.status == Status::Open
                {
                    let l = &mut alert.lifecycle;
                    l.status = Status::Acknowledged;
                    l.acknowledged_at = Some(event_time);
                    l.acknowledged_by = Some(a.analyst.as_str().to_owned());
                    l.acknowledged_note = a.note.as_ref().map(|n| n.as_str().to_owned());
                    l.updated_position = position;
                    alert.dirty = true;
                }
            }
            DomainEvent::AlertResolved(r) => {
                if let Some(alert) = alerts.get_mut(&r.alert_id.0)
                    && alert.lifecycle.status != Status::Resolved
                {
                    let l = &mut alert.lifecycle;
                    l.status = Status::Resolved;
                    l.resolved_at = Some(event_time);
                    l.resolved_by = Some(r.analyst.as_str().to_owned());
                    l.verdict = Some(verdict_str(r.verdict).to_owned());
                    l.resolution_note = r.note.as_ref().map(|n| n.as_str().to_owned());
                    l.updated_position = position;
                    alert.dirty = true;
                }
            }
            _ => {}
        }
    }
}
