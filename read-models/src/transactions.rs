//! `transactions`: one row per decided transaction (decision, score, rules
//! fired, lateness, the alert it raised) and the latest label each
//! transaction received. Partitioned by customer; labels (which name a
//! transaction, not a customer) are projected by partition 0 into their own
//! table, so they never wait for the transaction's partition.
//!
//! The contract: the model's declaration and DDL; the projector (its SQL
//! fold) is in projection-service `models::transactions`.

use crate::model::Model;

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
