//! The answer to an accepted transaction: what the client gets back on the
//! first POST, and what a repeat of it gets again.

use domain::events::{AlertRaised, TransactionRecorded};
use domain::{Decision, Priority};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answer {
    pub transaction_id: String,
    /// `approve`, `review` or `decline`.
    #[schema(value_type = String, example = "approve")]
    pub decision: Decision,
    /// In [0, 1].
    pub risk_score: f64,
    pub alerts: Vec<AlertAnswer>,
    pub ruleset_version: String,
    /// The transaction's event time was older than the customer's newest by
    /// more than the allowed lateness; it was still decided on its own window.
    pub late: bool,
    /// The model the live policy scored with; null when it has none.
    #[serde(default)]
    #[schema(example = "m-2026-12-07")]
    pub model_version: Option<String>,
    /// The model's probability of fraud, in [0, 1] (combined with the
    /// rules' score into `risk_score`); null when there is no model.
    #[serde(default)]
    pub model_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertAnswer {
    pub alert_id: Uuid,
    /// `P0` (most urgent) to `P3`.
    #[schema(value_type = String, example = "P1")]
    pub priority: Priority,
    pub rules: Vec<RuleAnswer>,
}

/// One rule that fired, with what it saw: the explanation an analyst reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleAnswer {
    pub rule: String,
    pub observed: f64,
    pub threshold: f64,
    /// One sentence for an analyst: what was seen (for an expression rule,
    /// the values it read).
    pub detail: String,
}

impl Answer {
    pub fn of(recorded: &TransactionRecorded, alert: Option<&AlertRaised>) -> Answer {
        Answer {
            transaction_id: recorded.transaction.transaction_id.as_str().to_owned(),
            decision: recorded.decision,
            risk_score: recorded.risk_score,
            alerts: alert
                .map(|a| AlertAnswer {
                    alert_id: a.alert_id.0,
                    priority: a.priority,
                    rules: a
                        .rules_fired
                        .iter()
                        .map(|hit| RuleAnswer {
                            rule: hit.rule.to_string(),
                            observed: hit.observed,
                            threshold: hit.threshold,
                            detail: hit.detail.clone(),
                        })
                        .collect(),
                })
                .into_iter()
                .collect(),
            ruleset_version: recorded.ruleset_version.clone(),
            late: recorded.late,
            model_version: recorded.model.as_ref().map(|m| m.version.clone()),
            model_score: recorded.model.as_ref().map(|m| m.score),
        }
    }
}
