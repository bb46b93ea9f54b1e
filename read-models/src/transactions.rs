//! `transactions`: one row per decided transaction (decision, score, rules
//! fired, lateness, the alert it raised) and the latest label each
//! transaction received. Partitioned by customer; labels (which name a
//! transaction, not a customer) are projected by partition 0 into their own
//! table, so they never wait for the transaction's partition.
//!
//! The contract: the model's declaration and DDL; the projector (its SQL
//! fold) is in projection-service `models::transactions`; the row types and
//! the queries the query API runs (by key, and its pages) are here.

use crate::model::Model;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const MODEL: Model = Model {
    name: "transactions",
    version: 1,
    partitioned: true,
    ddl: DDL,
    tables: &["transactions", "transaction_labels"],
    apply_indexes: &[],
};

pub const DDL: &str = "
CREATE TABLE transactions (
    transaction_id text PRIMARY KEY,
    customer_id text NOT NULL,
    merchant_id text,
    merchant_category text,
    event_time timestamptz NOT NULL,
    recorded_time timestamptz NOT NULL,
    position bigint NOT NULL,
    amount numeric(24, 3) NOT NULL,
    currency text,
    transaction_type text,
    payment_method text,
    device_type text,
    city text,
    country text,
    latitude double precision,
    longitude double precision,
    decision text NOT NULL,
    risk_score double precision NOT NULL,
    rules_fired jsonb NOT NULL,
    ruleset_version text NOT NULL,
    late boolean NOT NULL,
    alert_id uuid,
    input_schema smallint NOT NULL
);
CREATE INDEX transactions_customer ON transactions (customer_id, event_time DESC);
CREATE INDEX transactions_merchant ON transactions (merchant_id, event_time DESC);
CREATE INDEX transactions_event_time ON transactions (event_time);
CREATE INDEX transactions_recorded_time ON transactions (recorded_time);

CREATE TABLE transaction_labels (
    transaction_id text PRIMARY KEY,
    is_fraud boolean NOT NULL,
    source text NOT NULL,
    position bigint NOT NULL,
    labeled_at timestamptz NOT NULL
);
";

/// The columns of `transactions` a `TransactionRow` reads.
#[macro_export]
macro_rules! transaction_columns {
    () => {
        "transaction_id, customer_id, merchant_id, merchant_category, event_time, \
         recorded_time, position, amount::text AS amount, currency, transaction_type, \
         payment_method, device_type, city, country, latitude, longitude, decision, \
         risk_score, rules_fired::text AS rules_fired, ruleset_version, late, alert_id, \
         input_schema"
    };
}

pub const TRANSACTIONS_BY_ID: &str = concat!(
    "SELECT ",
    transaction_columns!(),
    " FROM transactions WHERE transaction_id = ANY($1)"
);

pub const LABELS_BY_TRANSACTION: &str = "SELECT transaction_id, is_fraud, source, position, labeled_at \
     FROM transaction_labels WHERE transaction_id = ANY($1)";

/// One row of `transactions`.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct TransactionRow {
    pub transaction_id: String,
    pub customer_id: String,
    pub merchant_id: Option<String>,
    pub merchant_category: Option<String>,
    pub event_time: DateTime<Utc>,
    pub recorded_time: DateTime<Utc>,
    pub position: i64,
    pub amount: String,
    pub currency: Option<String>,
    pub transaction_type: Option<String>,
    pub payment_method: Option<String>,
    pub device_type: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub decision: String,
    pub risk_score: f64,
    pub rules_fired: String,
    pub ruleset_version: String,
    pub late: bool,
    pub alert_id: Option<Uuid>,
    pub input_schema: i16,
}

/// The latest label (ground truth) of a transaction.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct LabelRow {
    pub transaction_id: String,
    pub is_fraud: bool,
    /// Who said so, e.g. `chargeback`.
    pub source: String,
    /// The log position of the label.
    pub position: i64,
    pub labeled_at: DateTime<Utc>,
}

/// A customer's transactions, newest by event time first, filtered; the
/// filters that are null fold away (custom plans, see `db`), and the page
/// walks `transactions_customer (customer_id, event_time DESC)`.
pub const CUSTOMER_TRANSACTIONS: &str = concat!(
    "SELECT ",
    transaction_columns!(),
    " FROM transactions \
     WHERE customer_id = $1 \
       AND ($2::text[] IS NULL OR decision = ANY($2)) \
       AND ($3::timestamptz IS NULL OR event_time >= $3) \
       AND ($4::timestamptz IS NULL OR event_time < $4) \
       AND ($5::text IS NULL OR merchant_id = $5) \
       AND ($6::float8 IS NULL OR amount >= $6::numeric) \
       AND ($7::float8 IS NULL OR amount <= $7::numeric) \
       AND ($8::bool IS NULL OR late = $8) \
       AND ($9::bool IS NULL OR (alert_id IS NOT NULL) = $9) \
       AND ($10::timestamptz IS NULL OR (event_time, transaction_id) < ($10, $11::text)) \
     ORDER BY event_time DESC, transaction_id DESC \
     LIMIT $12"
);

/// How many of a customer's transactions the filter matches.
pub const COUNT_CUSTOMER_TRANSACTIONS: &str = "SELECT count(*) FROM transactions \
     WHERE customer_id = $1 \
       AND ($2::text[] IS NULL OR decision = ANY($2)) \
       AND ($3::timestamptz IS NULL OR event_time >= $3) \
       AND ($4::timestamptz IS NULL OR event_time < $4) \
       AND ($5::text IS NULL OR merchant_id = $5) \
       AND ($6::float8 IS NULL OR amount >= $6::numeric) \
       AND ($7::float8 IS NULL OR amount <= $7::numeric) \
       AND ($8::bool IS NULL OR late = $8) \
       AND ($9::bool IS NULL OR (alert_id IS NOT NULL) = $9)";
