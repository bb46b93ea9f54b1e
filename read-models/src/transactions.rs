//! `transactions`: one row per decided transaction (decision, score, rules
//! fired, lateness, the alert it raised, the live policy's model and its
//! score, and what the shadow policy would have decided when one was set) and the latest label each transaction
//! received. Partitioned by customer; labels (which name a
//! transaction, not a customer) are projected by partition 0 into their own
//! table, so they never wait for the transaction's partition.
//!
//! The contract: the model's declaration and DDL, the row types and the
//! queries the query API runs (by key, its pages, and the live-against-shadow
//! groups with `shadow_comparison`, which folds them into the domain's
//! `Comparison`), and the pure fold
//! (`TransactionBatch::apply`: the rows and labels each event makes); the
//! projector in projection-service `models::transactions` writes them
//! (upserts live, COPY for rebuilds).

use crate::model::Model;
use chrono::{DateTime, Utc};
use domain::events::TransactionRecorded;
use domain::policy::compare::{Comparison, Verdict};
use domain::{Decision, DomainEvent, Priority};
use std::collections::HashMap;
use uuid::Uuid;

pub const MODEL: Model = Model {
    name: "transactions",
    // 2: the shadow policy's outcome (`shadow_*` columns).
    // 3: the live policy's model and its score (`model_version`,
    // `model_score`).
    version: 3,
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
    input_schema smallint NOT NULL,
    -- What the shadow policy would have decided (all null when none was
    -- set): its version, decision, score and the priority of the alert it
    -- would have raised (null: none).
    shadow_version text,
    shadow_decision text,
    shadow_priority text,
    shadow_risk_score double precision,
    -- The model the live policy scored with and its probability of fraud
    -- (null: the policy had no model).
    model_version text,
    model_score double precision
);
CREATE INDEX transactions_customer ON transactions (customer_id, event_time DESC);
CREATE INDEX transactions_merchant ON transactions (merchant_id, event_time DESC);
CREATE INDEX transactions_event_time ON transactions (event_time);
CREATE INDEX transactions_recorded_time ON transactions (recorded_time);
-- The shadow comparison reads one shadow version's rows over a time range.
CREATE INDEX transactions_shadow ON transactions (shadow_version, event_time)
    WHERE shadow_version IS NOT NULL;

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
         input_schema, shadow_version, shadow_decision, shadow_priority, shadow_risk_score, \
         model_version, model_score"
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
    pub shadow_version: Option<String>,
    pub shadow_decision: Option<String>,
    pub shadow_priority: Option<String>,
    pub shadow_risk_score: Option<f64>,
    pub model_version: Option<String>,
    pub model_score: Option<f64>,
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

/// Column arrays for one multi-row insert.
#[derive(Debug, Default)]
pub struct Rows {
    pub transaction_id: Vec<String>,
    pub customer_id: Vec<String>,
    pub merchant_id: Vec<Option<String>>,
    pub merchant_category: Vec<Option<String>>,
    pub event_time: Vec<DateTime<Utc>>,
    pub recorded_time: Vec<DateTime<Utc>>,
    pub position: Vec<i64>,
    pub amount_thousandths: Vec<i64>,
    pub currency: Vec<Option<String>>,
    pub transaction_type: Vec<Option<String>>,
    pub payment_method: Vec<Option<String>>,
    pub device_type: Vec<Option<String>>,
    pub city: Vec<Option<String>>,
    pub country: Vec<Option<String>>,
    pub latitude: Vec<Option<f64>>,
    pub longitude: Vec<Option<f64>>,
    pub decision: Vec<String>,
    pub risk_score: Vec<f64>,
    pub rules_fired: Vec<String>,
    pub ruleset_version: Vec<String>,
    pub late: Vec<bool>,
    pub alert_id: Vec<Option<Uuid>>,
    pub input_schema: Vec<i16>,
    pub shadow_version: Vec<Option<String>>,
    pub shadow_decision: Vec<Option<String>>,
    pub shadow_priority: Vec<Option<String>>,
    pub shadow_risk_score: Vec<Option<f64>>,
    pub model_version: Vec<Option<String>>,
    pub model_score: Vec<Option<f64>>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.transaction_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transaction_id.is_empty()
    }

    /// Adds the row of one `TransactionRecorded` (at log `position`,
    /// recorded at `recorded_time`).
    pub fn push(&mut self, position: u64, recorded_time: DateTime<Utc>, r: &TransactionRecorded) {
        let t = &r.transaction;
        self.transaction_id
            .push(t.transaction_id.as_str().to_owned());
        self.customer_id.push(t.customer_id.as_str().to_owned());
        self.merchant_id
            .push(t.merchant_id.as_ref().map(|m| m.as_str().to_owned()));
        self.merchant_category
            .push(t.merchant_category.as_ref().map(|m| m.as_str().to_owned()));
        self.event_time.push(t.timestamp);
        self.recorded_time.push(recorded_time);
        self.position.push(position as i64);
        self.amount_thousandths
            .push(t.amount.thousandths().min(i64::MAX as u64) as i64);
        self.currency.push(t.currency.map(|c| c.code().to_owned()));
        self.transaction_type
            .push(t.transaction_type.map(|v| v.as_str().to_owned()));
        self.payment_method
            .push(t.payment_method.map(|v| v.as_str().to_owned()));
        self.device_type.push(
            t.device_info
                .as_ref()
                .map(|d| d.device_type.as_str().to_owned()),
        );
        self.city
            .push(t.location.as_ref().map(|l| l.city.as_str().to_owned()));
        self.country
            .push(t.country().map(|c| c.as_str().to_owned()));
        self.latitude.push(t.coordinates().map(|c| c.lat()));
        self.longitude.push(t.coordinates().map(|c| c.lon()));
        self.decision.push(r.decision.as_str().to_owned());
        self.risk_score.push(r.risk_score);
        self.rules_fired
            .push(serde_json::to_string(&r.rules_fired).unwrap_or_else(|_| "[]".into()));
        self.ruleset_version.push(r.ruleset_version.clone());
        self.late.push(r.late);
        self.alert_id.push(r.alert_id.map(|a| a.0));
        self.input_schema.push(i16::from(u8::from(t.input_schema)));
        let shadow = r.shadow.as_ref();
        self.shadow_version
            .push(shadow.map(|s| s.policy_version.clone()));
        self.shadow_decision
            .push(shadow.map(|s| s.decision.as_str().to_owned()));
        self.shadow_priority.push(
            shadow
                .and_then(|s| s.priority)
                .map(|p| p.as_str().to_owned()),
        );
        self.shadow_risk_score.push(shadow.map(|s| s.risk_score));
        self.model_version
            .push(r.model.as_ref().map(|m| m.version.clone()));
        self.model_score.push(r.model.as_ref().map(|m| m.score));
    }
}

/// A label: whether the transaction is fraud, its source, position and time.
pub type Label = (bool, String, i64, DateTime<Utc>);

/// The batch's transaction rows, and the last label of each transaction in
/// it (the last wins, as it would applied one by one): the fold's state. It
/// keeps nothing between batches: the projector writes the rows (upserts
/// live, COPY into a rebuild's fresh table) and the labels.
#[derive(Debug, Default)]
pub struct TransactionBatch {
    pub rows: Rows,
    pub labels: HashMap<String, Label>,
}

impl TransactionBatch {
    /// Folds one event (at log `position`, with its event and recorded
    /// times).
    pub fn apply(
        &mut self,
        position: u64,
        event_time: DateTime<Utc>,
        recorded_time: DateTime<Utc>,
        event: &DomainEvent,
    ) {
        match event {
            DomainEvent::TransactionRecorded(r) => self.rows.push(position, recorded_time, r),
            DomainEvent::TransactionLabeled(l) => {
                self.labels.insert(
                    l.transaction_id.as_str().to_owned(),
                    (
                        l.is_fraud,
                        l.source.as_str().to_owned(),
                        position as i64,
                        event_time,
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Detection over the labelled transactions with event times from `$1` on
/// (the latest labelled window): flagged means an alert was raised, as in
/// `domain::policy::compare`. Driven from the labels (a small share of the
/// transactions), so it stays cheap on a large table.
pub const DETECTION: &str = "SELECT \
       count(*) FILTER (WHERE l.is_fraud AND t.alert_id IS NOT NULL) AS true_positives, \
       count(*) FILTER (WHERE l.is_fraud AND t.alert_id IS NULL) AS false_negatives, \
       count(*) FILTER (WHERE NOT l.is_fraud AND t.alert_id IS NOT NULL) AS false_positives, \
       count(*) FILTER (WHERE NOT l.is_fraud AND t.alert_id IS NULL) AS true_negatives \
     FROM transaction_labels l \
     JOIN transactions t ON t.transaction_id = l.transaction_id \
     WHERE t.event_time >= $1";

/// What `DETECTION` counts.
#[derive(sqlx::FromRow, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detection {
    pub true_positives: i64,
    pub false_negatives: i64,
    pub false_positives: i64,
    pub true_negatives: i64,
}

impl Detection {
    pub fn labelled(&self) -> i64 {
        self.true_positives + self.false_negatives + self.false_positives + self.true_negatives
    }

    /// Alerted fraud among the labelled fraud.
    pub fn recall(&self) -> Option<f64> {
        share(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Fraud among the alerted labelled transactions.
    pub fn precision(&self) -> Option<f64> {
        share(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Alerted among the labelled legitimate transactions.
    pub fn false_positive_rate(&self) -> Option<f64> {
        share(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// One shadow version's transactions (`$1`) decided in `[$2, $3)` of event
/// time (either end open when null), grouped by everything a comparison
/// looks at: the live version, decision and whether it alerted, the
/// shadow's decision and alert priority, and the latest label (null:
/// none). At most 3 x 2 x 3 x 5 x 3 groups per live version, however many
/// transactions: the figures themselves are `shadow_comparison`'s.
pub const SHADOW_GROUPS: &str = "SELECT t.ruleset_version AS live_version, \
       t.decision AS live_decision, (t.alert_id IS NOT NULL) AS live_alerted, \
       t.shadow_decision, t.shadow_priority, l.is_fraud, count(*) AS transactions \
     FROM transactions t \
     LEFT JOIN transaction_labels l ON l.transaction_id = t.transaction_id \
     WHERE t.shadow_version = $1 \
       AND ($2::timestamptz IS NULL OR t.event_time >= $2) \
       AND ($3::timestamptz IS NULL OR t.event_time < $3) \
     GROUP BY 1, 2, 3, 4, 5, 6 \
     ORDER BY 1, 2, 3, 4, 5, 6";

/// One group of `SHADOW_GROUPS`.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct ShadowGroup {
    pub live_version: String,
    pub live_decision: String,
    pub live_alerted: bool,
    pub shadow_decision: Option<String>,
    pub shadow_priority: Option<String>,
    /// The latest label; `None` when the transaction has none.
    pub is_fraud: Option<bool>,
    pub transactions: i64,
}

/// A stored value that is not one the projector writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unreadable value in the transactions model: {}", self.0)
    }
}

impl std::error::Error for Unreadable {}

fn decision(text: &str) -> Result<Decision, Unreadable> {
    match text {
        "approve" => Ok(Decision::Approve),
        "review" => Ok(Decision::Review),
        "decline" => Ok(Decision::Decline),
        other => Err(Unreadable(format!("decision {other:?}"))),
    }
}

fn priority(text: &str) -> Result<Priority, Unreadable> {
    match text {
        "P0" => Ok(Priority::P0),
        "P1" => Ok(Priority::P1),
        "P2" => Ok(Priority::P2),
        "P3" => Ok(Priority::P3),
        other => Err(Unreadable(format!("priority {other:?}"))),
    }
}

/// The groups folded into the domain's `Comparison` (live first, shadow
/// second), each added once per transaction it counts, so changes, alerts
/// and recall, false-positive rate and precision keep the one definition
/// the backtest uses too.
///
/// The model keeps whether live raised an alert (`alert_id`), not its
/// priority, so a live alert enters as `P3`: the comparison counts alerts
/// by their presence only, and no figure depends on which priority.
pub fn shadow_comparison(groups: &[ShadowGroup]) -> Result<Comparison, Unreadable> {
    let mut comparison = Comparison::default();
    for g in groups {
        let live = Verdict {
            decision: decision(&g.live_decision)?,
            priority: g.live_alerted.then_some(Priority::P3),
        };
        let shadow = Verdict {
            decision: decision(
                g.shadow_decision
                    .as_deref()
                    .ok_or_else(|| Unreadable("a shadow version without a decision".into()))?,
            )?,
            priority: g.shadow_priority.as_deref().map(priority).transpose()?,
        };
        for _ in 0..g.transactions {
            comparison.add(live, shadow, g.is_fraud);
        }
    }
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        live: (&str, bool),
        shadow: (&str, Option<&str>),
        is_fraud: Option<bool>,
        n: i64,
    ) -> ShadowGroup {
        ShadowGroup {
            live_version: "live".into(),
            live_decision: live.0.into(),
            live_alerted: live.1,
            shadow_decision: Some(shadow.0.into()),
            shadow_priority: shadow.1.map(str::to_owned),
            is_fraud,
            transactions: n,
        }
    }

    #[test]
    fn groups_count_as_their_transactions_added_one_by_one() {
        let groups = [
            group(("approve", false), ("review", Some("P2")), Some(true), 3),
            group(("review", true), ("approve", None), Some(false), 2),
            group(("approve", false), ("approve", None), None, 5),
        ];
        let mut one_by_one = Comparison::default();
        let quiet = Verdict {
            decision: Decision::Approve,
            priority: None,
        };
        for _ in 0..3 {
            one_by_one.add(
                quiet,
                Verdict {
                    decision: Decision::Review,
                    priority: Some(Priority::P2),
                },
                Some(true),
            );
        }
        for _ in 0..2 {
            one_by_one.add(
                Verdict {
                    decision: Decision::Review,
                    priority: Some(Priority::P1),
                },
                quiet,
                Some(false),
            );
        }
        for _ in 0..5 {
            one_by_one.add(quiet, quiet, None);
        }
        let folded = shadow_comparison(&groups).unwrap();
        assert_eq!(folded, one_by_one);
        assert_eq!(folded.transactions, 10);
        assert_eq!(folded.changes.get("approve -> review"), Some(&3));
        assert_eq!(folded.shadow.recall(), Some(1.0));
    }

    #[test]
    fn detection_ratios_and_none_without_labels() {
        let d = Detection {
            true_positives: 8,
            false_negatives: 2,
            false_positives: 8,
            true_negatives: 82,
        };
        assert_eq!(d.labelled(), 100);
        assert_eq!(d.recall(), Some(0.8));
        assert_eq!(d.precision(), Some(0.5));
        assert_eq!(d.false_positive_rate(), Some(8.0 / 90.0));
        assert_eq!(Detection::default().recall(), None);
    }

    #[test]
    fn a_value_the_projector_never_writes_is_refused() {
        let bad = group(("maybe", false), ("approve", None), None, 1);
        assert!(shadow_comparison(&[bad]).is_err());
        let bad = group(("approve", false), ("approve", Some("P9")), None, 1);
        assert!(shadow_comparison(&[bad]).is_err());
    }
}
