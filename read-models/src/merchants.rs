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
//! fold) is in projection-service `models::merchants`; the pure fold
//! (`Merchant::apply`) is here.

use crate::model::Model;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::events::Verdict;
use foldhash::HashMap;
use uuid::Uuid;

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

/// What the model keeps about one transaction.
#[derive(Debug, Clone)]
pub struct Known {
    pub merchant_id: String,
    pub hour: DateTime<Utc>,
    pub alert_id: Option<Uuid>,
    pub is_fraud: bool,
    pub signal_position: Option<i64>,
    /// Needs writing at the end of the batch.
    pub dirty: bool,
}

/// The change one batch makes to one merchant-hour.
#[derive(Debug, Default)]
pub struct Delta {
    pub tx_count: i64,
    pub amount_thousandths: i128,
    pub alert_count: i64,
    pub confirmed_fraud: i64,
}

impl Delta {
    pub fn is_zero(&self) -> bool {
        self.tx_count == 0
            && self.amount_thousandths == 0
            && self.alert_count == 0
            && self.confirmed_fraud == 0
    }
}

/// `ts` cut down to a whole number of `secs` since the epoch.
pub fn truncate(ts: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let s = ts.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(secs), 0).unwrap_or(ts)
}

/// The transactions the model knows and the changes to merchant-hours:
/// the fold's state (the projector loads into `known` and `by_alert` what
/// earlier batches left, and writes the dirty rows and the deltas).
#[derive(Debug, Default)]
pub struct Merchant {
    pub known: HashMap<String, Known>,
    pub by_alert: HashMap<Uuid, String>,
    pub deltas: HashMap<(String, DateTime<Utc>), Delta>,
}

impl Merchant {
    /// Folds one event (at log `position`).
    pub fn apply(&mut self, position: u64, event: &DomainEvent) {
        let (known, by_alert, deltas) = (&mut self.known, &mut self.by_alert, &mut self.deltas);
        let position = position as i64;
        match event {
            DomainEvent::TransactionRecorded(r) => {
                let t = &r.transaction;
                let Some(merchant) = &t.merchant_id else {
                    return;
                };
                let id = t.transaction_id.as_str();
                // Recorded once per id by the ingest; a repeat changes nothing.
                if known.contains_key(id) {
                    return;
                }
                let hour = truncate(t.timestamp, 3600);
                let d = deltas
                    .entry((merchant.as_str().to_owned(), hour))
                    .or_default();
                d.tx_count += 1;
                d.amount_thousandths += i128::from(t.amount.thousandths());
                let alert_id = r.alert_id.map(|a| a.0);
                if let Some(a) = alert_id {
                    d.alert_count += 1;
                    by_alert.insert(a, id.to_owned());
                }
                known.insert(
                    id.to_owned(),
                    Known {
                        merchant_id: merchant.as_str().to_owned(),
                        hour,
                        alert_id,
                        is_fraud: false,
                        signal_position: None,
                        dirty: true,
                    },
                );
            }
            DomainEvent::TransactionLabeled(l) => {
                set_fraud(
                    known,
                    deltas,
                    l.transaction_id.as_str(),
                    l.is_fraud,
                    position,
                );
            }
            DomainEvent::AlertResolved(r) => {
                if let Some(id) = by_alert.get(&r.alert_id.0) {
                    let is_fraud = r.verdict == Verdict::ConfirmedFraud;
                    set_fraud(known, deltas, id, is_fraud, position);
                }
            }
            _ => {}
        }
    }
}

/// Sets the fraud state of a known transaction, counting a flip once in its
/// hour; a transaction the model does not know is ignored.
fn set_fraud(
    known: &mut HashMap<String, Known>,
    deltas: &mut HashMap<(String, DateTime<Utc>), Delta>,
    id: &str,
    is_fraud: bool,
    position: i64,
) {
    let Some(k) = known.get_mut(id) else {
        return;
    };
    if k.is_fraud != is_fraud {
        let d = deltas.entry((k.merchant_id.clone(), k.hour)).or_default();
        d.confirmed_fraud += if is_fraud { 1 } else { -1 };
        k.is_fraud = is_fraud;
    }
    k.signal_position = Some(position);
    k.dirty = true;
}
