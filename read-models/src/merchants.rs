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
//! The contract: the model's declaration and DDL; the projector (its SQL
//! fold) is in projection-service `models::merchants`.

use crate::model::Model;

pub const MODEL: Model = Model {
    name: "merchants",
    // 2: the merchant_risk_signal index.
    version: 2,
    partitioned: false,
    ddl: DDL,
    tables: &["merchant_risk", "merchant_transactions"],
    // Verdicts name an alert; its transaction is found through this.
    apply_indexes: &["merchant_transactions_alert"],
};

/// `flagged` is `confirmed_fraud / tx_count > 0.05`, written in the SQL as
/// `confirmed_fraud * 20 > tx_count` so the threshold is exact, not a
/// floating-point comparison.
pub const DDL: &str = "
CREATE TABLE merchant_risk (
    merchant_id text NOT NULL,
    hour timestamptz NOT NULL,
    tx_count bigint NOT NULL,
    amount_sum numeric(24, 3) NOT NULL,
    alert_count bigint NOT NULL,
    confirmed_fraud bigint NOT NULL,
    fraud_rate double precision NOT NULL,
    flagged boolean NOT NULL,
    PRIMARY KEY (merchant_id, hour)
);
-- Riskiest merchants in a time range: a range scan on hour that reads the
-- figures from the index alone. One merchant over time is the primary key.
CREATE INDEX merchant_risk_hour ON merchant_risk (hour)
    INCLUDE (merchant_id, tx_count, confirmed_fraud, alert_count, fraud_rate);
CREATE INDEX merchant_risk_flagged ON merchant_risk (hour, fraud_rate DESC) WHERE flagged;
-- The dashboard's risky merchants: hours with an alert or confirmed fraud,
-- a few per cent of all hours.
CREATE INDEX merchant_risk_signal ON merchant_risk (hour) INCLUDE (merchant_id)
    WHERE alert_count > 0 OR confirmed_fraud > 0;

CREATE TABLE merchant_transactions (
    transaction_id text PRIMARY KEY,
    merchant_id text NOT NULL,
    hour timestamptz NOT NULL,
    alert_id uuid,
    is_fraud boolean NOT NULL,
    -- The log position of the latest label or verdict applied to it.
    signal_position bigint
);
CREATE INDEX merchant_transactions_alert ON merchant_transactions (alert_id);
";
