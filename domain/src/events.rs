//! The events: what Sentinel records, each with a stable type name and a
//! schema version. Payloads serialise without a type tag (the log's envelope
//! carries type and version); `DomainEvent` ties them together for writing
//! and for reading back (upcasting older versions first).
//!
//! Streams (see `streams`): `customer-{id}` holds `TransactionRecorded` and
//! `AlertRaised` (and `PersonalDataErased`); `alert-{id}` the alert's lifecycle; `quarantine` the
//! rejected input; `policy` the policy versions and their lifecycle (`ruleset`,
//! its predecessor, the rulesets published before policies); `model` the
//! trained models; `backtest` the recorded backtests. Labels go wherever the
//! service decides (they name a transaction, not a stream).

use crate::ids::{AlertId, CustomerId, MerchantId, QuarantineId, TransactionId};
use crate::ingest::FieldError;
use crate::model::{Contribution, Model};
use crate::rules::{RuleHit, RuleName};
use crate::ruleset::Ruleset;
use crate::scoring::{Decision, Priority};
use crate::text::{Analyst, LabelSource, MerchantCategory, Note};
use crate::transaction::Transaction;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A payload type with its stable name and current schema version.
pub trait EventPayload: Serialize + DeserializeOwned {
    const EVENT_TYPE: &'static str;
    const SCHEMA_VERSION: u32;
}

/// A transaction was accepted and decided. v2: the full transaction plus the
/// decision and its explanation. (v1, before currencies, locations and rules,
/// was `{transaction_id, customer_id, amount, timestamp}`; it is upcast.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionRecorded {
    pub transaction: Transaction,
    pub decision: Decision,
    /// In [0, 1].
    pub risk_score: f64,
    pub rules_fired: Vec<RuleHit>,
    pub ruleset_version: String,
    /// Its event time was older than the customer's newest by more than the
    /// allowed lateness when it was decided.
    pub late: bool,
    /// The alert it raised, if any (an `AlertRaised` follows it).
    pub alert_id: Option<AlertId>,
    /// The log position the merchant and category counts behind its
    /// features were folded through (`crate::peers`), so replay computes
    /// exactly the features the decision saw. `None` before features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers_as_of: Option<u64>,
    /// What the shadow policy would have decided, when one was set
    /// (`crate::policy`): recorded, never acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowOutcome>,
    /// The model the live policy scored with and its probability of fraud
    /// (`crate::scoring::combine` folds it into `risk_score`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelScore>,
}

/// A model's version and its probability of fraud for one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    pub version: String,
    /// In [0, 1], 6 decimals.
    pub score: f64,
}

/// A shadow policy's verdict on a transaction: the decision, score and
/// alert priority it would have given, and the rules that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowOutcome {
    pub policy_version: String,
    pub decision: Decision,
    pub risk_score: f64,
    /// The alert it would have raised (none is raised).
    pub priority: Option<Priority>,
    pub rules_fired: Vec<RuleName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelScore>,
}

/// A decided transaction scored high enough to need an analyst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRaised {
    pub alert_id: AlertId,
    pub transaction_id: TransactionId,
    pub customer_id: CustomerId,
    pub priority: Priority,
    pub risk_score: f64,
    pub decision: Decision,
    pub rules_fired: Vec<RuleHit>,
    pub ruleset_version: String,
    /// The model's score, when the policy had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelScore>,
    /// The features that pushed the model's score up the most, with their
    /// values, frozen when the alert was raised (largest first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_features: Vec<Contribution>,
}

/// An analyst took an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAcknowledged {
    pub alert_id: AlertId,
    pub analyst: Analyst,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
}

/// An analyst's conclusion about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    ConfirmedFraud,
    FalsePositive,
}

impl Verdict {
    pub const ALLOWED: &'static [&'static str] = &["confirmed_fraud", "false_positive"];

    pub fn parse(text: &str) -> Option<Verdict> {
        match text {
            "confirmed_fraud" => Some(Verdict::ConfirmedFraud),
            "false_positive" => Some(Verdict::FalsePositive),
            _ => None,
        }
    }
}

/// An alert was closed with a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertResolved {
    pub alert_id: AlertId,
    pub verdict: Verdict,
    pub analyst: Analyst,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
}

/// Ground truth arrived for a transaction (a chargeback, a confirmed fraud).
/// Its event time is when it arrived: nothing may learn from it earlier.
///
/// v2 adds what the command side knew when it recorded the label: the
/// labelled transaction's customer, merchant, category and event time, and
/// whether the transaction counted as fraud before this label. With them a
/// label is a self-contained fact, so the merchant and category fraud
/// counts (`crate::peers`) fold from labels alone, in bounded memory,
/// without a per-transaction lookup. v1 labels (none of it) are upcast
/// unchanged: they count for nothing that needs a merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionLabeled {
    pub transaction_id: TransactionId,
    pub is_fraud: bool,
    pub source: LabelSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<LabeledTransaction>,
    /// Whether the transaction's newest label (any source) said fraud
    /// before this one; `None` on v1 labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was_fraud: Option<bool>,
}

impl TransactionLabeled {
    /// A label as a client states it, before the command side adds what it
    /// knows of the transaction.
    pub fn new(transaction_id: TransactionId, is_fraud: bool, source: LabelSource) -> Self {
        TransactionLabeled {
            transaction_id,
            is_fraud,
            source,
            transaction: None,
            was_fraud: None,
        }
    }

    /// Whether this label flips the transaction's fraud status (a v1 label,
    /// whose previous status is unknown, counts as a flip when it says fraud).
    pub fn flips(&self) -> bool {
        self.was_fraud.unwrap_or(false) != self.is_fraud
    }
}

/// The labelled transaction, as the command side knew it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabeledTransaction {
    pub customer_id: CustomerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<MerchantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_category: Option<MerchantCategory>,
    /// The transaction's event time.
    pub timestamp: DateTime<Utc>,
}

impl LabeledTransaction {
    pub fn of(tx: &crate::transaction::Transaction) -> Self {
        LabeledTransaction {
            customer_id: tx.customer_id.clone(),
            merchant_id: tx.merchant_id.clone(),
            merchant_category: tx.merchant_category.clone(),
            timestamp: tx.timestamp,
        }
    }
}

/// Input that was refused, kept whole with every reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputQuarantined {
    pub quarantine_id: QuarantineId,
    /// The body as received (lossy UTF-8 if it was not text); for a batch
    /// item, that item's JSON.
    pub raw_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The item's index when it came in a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u32>,
    pub reasons: Vec<FieldError>,
    /// The whole body, sealed, when it could not be read as JSON (its
    /// personal fields cannot be found in it): `raw_body` then only says
    /// so. A body that is JSON keeps its personal fields sealed in place
    /// instead (`device_info.sealed`, docs/trust.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_body: Option<String>,
    /// Whose data key sealed its personal fields: the customer the body
    /// names, or `""` (the quarantine's own key) when it names none that
    /// is valid. `None`: nothing was sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_with: Option<String>,
}

/// A client sent a `transaction_id` again. Nothing is recorded twice: this
/// notes the repeat itself (client retries, replays, conflicting reuse of an
/// id), for the data-quality figures and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRepeated {
    pub transaction_id: TransactionId,
    pub customer_id: CustomerId,
    /// False when the repeat carried a different payload (answered 409).
    pub same_payload: bool,
}

/// A ruleset was put in force (before policies: the `ruleset` stream). The
/// policy stream reads it as that version published and promoted at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesetPublished {
    pub version: String,
    pub ruleset: Ruleset,
}

/// A policy version was recorded (`policy` stream). It decides nothing until
/// promoted (or shadows once set as the shadow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyPublished {
    pub version: String,
    pub policy: Ruleset,
    /// Who published it: an admin's name, or `configuration` at start.
    pub published_by: String,
}

/// A policy version became the live one, everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPromoted {
    pub version: String,
    /// The version it replaced, if any.
    pub previous: Option<String>,
    pub promoted_by: String,
}

/// The live policy went back to the one live before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRolledBack {
    /// The version that was live.
    pub from: String,
    /// The version live again.
    pub to: String,
    pub rolled_back_by: String,
}

/// A model was trained from the log and recorded (`model` stream). It
/// scores nothing until a policy version names it and is promoted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTrained {
    /// Boxed: the trees make it large.
    pub model: Box<Model>,
    /// Who trained it: `fraudctl` and the user, or the pipeline.
    pub trained_by: String,
}

/// A backtest's findings were recorded (`backtest` stream): `fraudctl
/// backtest --record` replayed the recorded traffic with a draft policy
/// (the candidate) beside a baseline and kept this summary, so the console
/// and GraphQL show what was measured, by whom, over which window. A
/// summary only: the transactions decided differently stay in the
/// backtest's own output. When is the envelope's recorded time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestRecorded {
    /// The draft policy's version (it need not be published).
    pub candidate_version: String,
    /// The fixed baseline's version; `None`: each transaction's baseline
    /// was the policy version that decided it.
    pub baseline_version: Option<String>,
    /// The event-time window compared, `[from, to)`; either end open when
    /// `None`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// What counted as flagged for the label figures: `alert`, `review`
    /// (review or decline) or `decline`.
    pub flag: String,
    /// Log events read.
    pub events_read: u64,
    /// The log position of the newest transaction, label or policy event
    /// it read: what it knew.
    pub as_of_position: u64,
    /// Transactions inside the window, decided by both sides.
    pub compared: u64,
    /// Recorded decisions the baseline replay did not reproduce.
    pub mismatches: u64,
    /// Compared transactions the sides decided differently (decision,
    /// score, alert or rules).
    pub differing: u64,
    /// `old -> new` decision: how many.
    pub decisions: BTreeMap<String, u64>,
    pub alerts_old: u64,
    pub alerts_new: u64,
    /// Compared transactions with a label (their newest counts).
    pub labelled: u64,
    /// The label figures of the baseline and of the candidate; `None`
    /// without labels.
    pub old_figures: Option<BacktestFigures>,
    pub new_figures: Option<BacktestFigures>,
    /// Who ran it: the `--by` name, or `fraudctl backtest`.
    pub recorded_by: String,
}

/// One side's figures against the labels in a recorded backtest; a rate
/// is `None` when its denominator is zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestFigures {
    pub flagged: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub recall: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub precision: Option<f64>,
    pub alert_rate: Option<f64>,
}

/// A customer's personal data was erased (`customer-{id}`; the right to
/// erasure, docs/trust.md): the data key that sealed their personal fields
/// (IP addresses, user agents) was destroyed, so every ciphertext under it
/// is unreadable for good, and the read models dropped what they showed of
/// them. Decisions, amounts, alerts and device fingerprints stay: they are
/// not readable as personal data without the key. Its event time is when
/// the key was destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDataErased {
    pub customer_id: CustomerId,
    /// Which of the customer's data keys was destroyed (a customer who
    /// transacts again after an erasure gets a new one, generation + 1).
    pub key_generation: u32,
    /// The admin who asked for it.
    pub erased_by: String,
}

/// The shadow policy was set (`Some`) or cleared (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowPolicySet {
    pub version: Option<String>,
    pub set_by: String,
}

macro_rules! payloads {
    ($($name:ident = $version:literal),+ $(,)?) => {
        $(impl EventPayload for $name {
            const EVENT_TYPE: &'static str = stringify!($name);
            const SCHEMA_VERSION: u32 = $version;
        })+

        /// Any Sentinel event. Transactions are most of the log, so the
        /// enum is as big as a recorded transaction on purpose: boxing it
        /// would add an allocation per event to save bytes on rare ones.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum DomainEvent {
            $($name($name),)+
        }

        $(impl From<$name> for DomainEvent {
            fn from(e: $name) -> DomainEvent {
                DomainEvent::$name(e)
            }
        })+

        impl DomainEvent {
            /// Every event type name with its current schema version.
            pub const TYPES: &'static [(&'static str, u32)] =
                &[$((stringify!($name), $version)),+];

            pub fn event_type(&self) -> &'static str {
                match self {
                    $(DomainEvent::$name(_) => $name::EVENT_TYPE,)+
                }
            }

            pub fn schema_version(&self) -> u32 {
                match self {
                    $(DomainEvent::$name(_) => $name::SCHEMA_VERSION,)+
                }
            }

            /// The payload as JSON, in the current schema version.
            pub fn to_payload(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(DomainEvent::$name(e) => serde_json::to_value(e),)+
                }
            }

            /// The payload as JSON text, in the current schema version,
            /// written straight from the event (no JSON tree on the way).
            pub fn to_json(&self) -> Result<String, serde_json::Error> {
                match self {
                    $(DomainEvent::$name(e) => serde_json::to_string(e),)+
                }
            }

            /// Reads a stored payload given as JSON text: straight into the
            /// typed event when it is in the current version (one pass, no
            /// JSON tree), through [`DomainEvent::from_payload`] otherwise.
            pub fn from_json(
                event_type: &str,
                schema_version: u32,
                json: &str,
            ) -> Result<DomainEvent, EventDecodeError> {
                match event_type {
                    $(stringify!($name) if schema_version == $version => {
                        serde_json::from_str(json)
                            .map(DomainEvent::$name)
                            .map_err(EventDecodeError::Payload)
                    })+
                    _ => {
                        let payload = serde_json::from_str(json).map_err(EventDecodeError::Payload)?;
                        DomainEvent::from_payload(event_type, schema_version, payload)
                    }
                }
            }

            /// Reads a stored payload, upcasting it first if it is older
            /// than the current version (a store that already upcast makes
            /// that a no-op).
            pub fn from_payload(
                event_type: &str,
                schema_version: u32,
                payload: Value,
            ) -> Result<DomainEvent, EventDecodeError> {
                let (version, payload) = crate::upcast::upcast(event_type, schema_version, payload)
                    .map_err(EventDecodeError::Upcast)?;
                match event_type {
                    $(stringify!($name) => {
                        if version != $version {
                            return Err(EventDecodeError::UnsupportedVersion {
                                event_type: event_type.to_owned(),
                                version,
                            });
                        }
                        serde_json::from_value(payload)
                            .map(DomainEvent::$name)
                            .map_err(EventDecodeError::Payload)
                    })+
                    other => Err(EventDecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}

payloads!(
    TransactionRecorded = 2,
    AlertRaised = 1,
    AlertAcknowledged = 1,
    AlertResolved = 1,
    TransactionLabeled = 2,
    InputQuarantined = 1,
    RulesetPublished = 1,
    TransactionRepeated = 1,
    PolicyPublished = 1,
    PolicyPromoted = 1,
    PolicyRolledBack = 1,
    ShadowPolicySet = 1,
    ModelTrained = 1,
    BacktestRecorded = 1,
    PersonalDataErased = 1,
);

/// Why a stored event could not be read as a `DomainEvent`.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} has no reader for schema version {version}")]
    UnsupportedVersion { event_type: String, version: u32 },
    #[error("upcasting failed: {0}")]
    Upcast(String),
    #[error("payload does not match the schema: {0}")]
    Payload(serde_json::Error),
}
