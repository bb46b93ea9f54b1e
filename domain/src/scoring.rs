//! From fired rules to a risk score, a decision and an alert priority.
//!
//! Score: `1 - Π(1 - weight)` over the fired rules. Each weight reads as "the
//! chance this rule alone is right"; the product is the chance they are all
//! wrong, assuming independence. It stays in [0, 1], never double-counts past
//! 1, a rule of weight 0 changes nothing, and the order of rules does not
//! matter. Rounded to 4 decimals, and the thresholds compare the rounded
//! score, so the score a client sees is the one that was decided on.

use crate::rules::RuleHit;
use crate::ruleset::{DecisionThresholds, PriorityThresholds};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the ingest answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Review,
    Decline,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Decline => "decline",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgently an analyst should look at an alert; P0 is the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P0,
    P1,
    P2,
    P3,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The combined risk score of the fired rules, in [0, 1], 4 decimals.
pub fn risk_score(hits: &[RuleHit]) -> f64 {
    let all_wrong: f64 = hits
        .iter()
        .map(|h| 1.0 - h.weight.clamp(0.0, 1.0))
        .product();
    ((1.0 - all_wrong) * 10_000.0).round() / 10_000.0
}

/// The risk of a transaction when the policy has a model: the rules' score
/// and the model's probability combined like two rules, `1 - (1 - rules) ·
/// (1 - model)`, 4 decimals. Either alone can carry a transaction over a
/// threshold (an analyst's rule of weight 0.9 still forces a review; a
/// model sure of fraud flags what no rule saw), neither can lower the
/// other, and with no model the risk is the rules' score unchanged. A
/// policy with a model gets thresholds chosen for it on labelled data
/// (`fraudctl model train --promote`, `fraudctl policy calibrate`).
pub fn combine(rules: f64, model: f64) -> f64 {
    let model = if model.is_nan() {
        0.0
    } else {
        model.clamp(0.0, 1.0)
    };
    let all_wrong = (1.0 - rules.clamp(0.0, 1.0)) * (1.0 - model);
    ((1.0 - all_wrong) * 10_000.0).round() / 10_000.0
}

/// Decline at or above `decline`, review at or above `review`, else approve.
pub fn decision_for(score: f64, t: &DecisionThresholds) -> Decision {
    if score >= t.decline {
        Decision::Decline
    } else if score >= t.review {
        Decision::Review
    } else {
        Decision::Approve
    }
}

/// The priority of the alert to raise, or `None` (no alert) below `p3`.
pub fn priority_for(score: f64, t: &PriorityThresholds) -> Option<Priority> {
    [
        (t.p0, Priority::P0),
        (t.p1, Priority::P1),
        (t.p2, Priority::P2),
        (t.p3, Priority::P3),
    ]
    .into_iter()
    .find_map(|(threshold, p)| (score >= threshold).then_some(p))
}
