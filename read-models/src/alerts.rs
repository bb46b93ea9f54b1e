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
//! The contract: the model's declaration and DDL; the projector (its SQL
//! fold) is in projection-service `models::alerts`; the row type and the
//! look-ups by key the query API runs are here.

use crate::model::Model;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const MODEL: Model = Model {
    name: "alerts",
    version: 1,
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
    updated_position bigint NOT NULL
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
         verdict, resolution_note, updated_position"
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
