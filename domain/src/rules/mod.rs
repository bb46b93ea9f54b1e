//! The fraud rules, one file each, and what a fired rule reports.
//!
//! A rule is a pure function of its thresholds, the transaction being decided
//! and the customer's state *before* it. It returns a `Finding` (observed
//! value, comparison, threshold, a sentence for people) when it fires; the
//! ruleset adds the rule's name, version and weight to make a `RuleHit`,
//! which is what events and answers carry (explainability).
//!
//! Window rules look at the event-time window that ends at the transaction's
//! own timestamp (inclusive at both ends), so a late transaction is judged on
//! the transactions around its own time, as if it had arrived on time.

pub mod alert_follow_up;
pub mod amount_above_usual;
pub mod amount_anomaly;
pub mod card_testing;
pub mod distinct_cities;
pub mod impossible_travel;
pub mod new_category;
pub mod new_country;
pub mod new_device;
pub mod unusual_hour;
pub mod velocity_amount;
pub mod velocity_count;
pub mod withdrawal_sequence;

use crate::aggregate::CustomerState;
use crate::ruleset::Ruleset;
use crate::transaction::Transaction;
use crate::window::WindowEntry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// The stable name of a rule. Never rename one: it is in stored events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    VelocityCount,
    VelocityAmount,
    ImpossibleTravel,
    DistinctCities,
    AmountAnomaly,
    NewCategory,
    UnusualHour,
    WithdrawalSequence,
    NewDevice,
    AmountAboveUsual,
    AlertFollowUp,
    NewCountry,
    CardTesting,
}

impl RuleId {
    pub const ALL: [RuleId; 13] = [
        RuleId::VelocityCount,
        RuleId::VelocityAmount,
        RuleId::ImpossibleTravel,
        RuleId::DistinctCities,
        RuleId::AmountAnomaly,
        RuleId::NewCategory,
        RuleId::UnusualHour,
        RuleId::WithdrawalSequence,
        RuleId::NewDevice,
        RuleId::AmountAboveUsual,
        RuleId::AlertFollowUp,
        RuleId::NewCountry,
        RuleId::CardTesting,
    ];

    /// The rule of that name, if it is built in.
    pub fn parse(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::VelocityCount => "velocity_count",
            RuleId::VelocityAmount => "velocity_amount",
            RuleId::ImpossibleTravel => "impossible_travel",
            RuleId::DistinctCities => "distinct_cities",
            RuleId::AmountAnomaly => "amount_anomaly",
            RuleId::NewCategory => "new_category",
            RuleId::UnusualHour => "unusual_hour",
            RuleId::WithdrawalSequence => "withdrawal_sequence",
            RuleId::NewDevice => "new_device",
            RuleId::AmountAboveUsual => "amount_above_usual",
            RuleId::AlertFollowUp => "alert_follow_up",
            RuleId::NewCountry => "new_country",
            RuleId::CardTesting => "card_testing",
        }
    }

    /// The version of the rule's logic: bump it when the logic changes, so a
    /// recorded hit says which logic produced it.
    pub fn version(self) -> u32 {
        match self {
            RuleId::VelocityCount => velocity_count::VERSION,
            RuleId::VelocityAmount => velocity_amount::VERSION,
            RuleId::ImpossibleTravel => impossible_travel::VERSION,
            RuleId::DistinctCities => distinct_cities::VERSION,
            RuleId::AmountAnomaly => amount_anomaly::VERSION,
            RuleId::NewCategory => new_category::VERSION,
            RuleId::UnusualHour => unusual_hour::VERSION,
            RuleId::WithdrawalSequence => withdrawal_sequence::VERSION,
            RuleId::NewDevice => new_device::VERSION,
            RuleId::AmountAboveUsual => amount_above_usual::VERSION,
            RuleId::AlertFollowUp => alert_follow_up::VERSION,
            RuleId::NewCountry => new_country::VERSION,
            RuleId::CardTesting => card_testing::VERSION,
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a fired rule: one of the built-in rules, or an expression
/// rule of the policy that decided (`crate::policy`). Stored as the plain
/// name, so hits recorded before expression rules read back unchanged; a
/// policy may not give an expression rule a built-in rule's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleName {
    Builtin(RuleId),
    Expression(Arc<str>),
}

impl RuleName {
    pub fn as_str(&self) -> &str {
        match self {
            RuleName::Builtin(id) => id.as_str(),
            RuleName::Expression(name) => name,
        }
    }

    pub fn builtin(&self) -> Option<RuleId> {
        match self {
            RuleName::Builtin(id) => Some(*id),
            RuleName::Expression(_) => None,
        }
    }

    /// A name as stored: built in if it is one of `RuleId::ALL`.
    pub fn parse(name: &str) -> RuleName {
        RuleId::parse(name).map_or_else(|| RuleName::Expression(name.into()), RuleName::Builtin)
    }
}

impl From<RuleId> for RuleName {
    fn from(id: RuleId) -> RuleName {
        RuleName::Builtin(id)
    }
}

impl PartialEq<RuleId> for RuleName {
    fn eq(&self, other: &RuleId) -> bool {
        self.builtin() == Some(*other)
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RuleName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RuleName, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(RuleName::parse(&name))
    }
}

/// How `observed` was compared with `threshold` for the rule to fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Fires when observed > threshold.
    GreaterThan,
    /// Fires when observed >= threshold.
    AtLeast,
    /// Fires when observed <= threshold.
    AtMost,
    /// An expression rule: fires when its expression holds (observed 1,
    /// threshold 1; `detail` shows the values it read).
    Holds,
}

/// What a rule saw when it fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub observed: f64,
    pub comparison: Comparison,
    pub threshold: f64,
    pub detail: String,
}

/// A fired rule, as recorded in events and returned to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleHit {
    pub rule: RuleName,
    pub rule_version: u32,
    pub observed: f64,
    pub comparison: Comparison,
    pub threshold: f64,
    /// The rule's weight in the ruleset that fired it.
    pub weight: f64,
    /// One sentence for an analyst: what was seen.
    pub detail: String,
}

/// JSON has no NaN or infinity (serde_json would write `null` and then fail
/// to read it back), so reported numbers are kept finite.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else if x.is_nan() {
        0.0
    } else {
        f64::MAX.copysign(x)
    }
}

/// A window length for people: "90 s", "10 min", "2 h", "1 h 30 min".
pub(crate) fn span(secs: u32) -> String {
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (h, 0, 0) => format!("{h} h"),
        (h, m, 0) => format!("{h} h {m} min"),
        _ => format!("{secs} s"),
    }
}

/// What every rule is given. `entry` is the transaction's window form (built
/// once per decision, not per rule).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tx: &'a Transaction,
    pub entry: &'a WindowEntry,
    pub state: &'a CustomerState,
}

/// Runs every enabled rule of `ruleset`; the hits come in `RuleId::ALL` order.
pub fn evaluate(ruleset: &Ruleset, subject: Subject<'_>) -> Vec<RuleHit> {
    let rules = &ruleset.rules;
    // No allocation unless a rule fires (the common case is none).
    let mut hits = Vec::new();
    // Each rule's module and its ruleset field share a name.
    macro_rules! run {
        ($id:expr, $rule:ident) => {
            let config = &rules.$rule;
            if config.enabled
                && let Some(finding) = $rule::evaluate(&config.thresholds, subject)
            {
                hits.push(hit($id, config.weight, finding));
            }
        };
    }
    run!(RuleId::VelocityCount, velocity_count);
    run!(RuleId::VelocityAmount, velocity_amount);
    run!(RuleId::ImpossibleTravel, impossible_travel);
    run!(RuleId::DistinctCities, distinct_cities);
    run!(RuleId::AmountAnomaly, amount_anomaly);
    run!(RuleId::NewCategory, new_category);
    run!(RuleId::UnusualHour, unusual_hour);
    run!(RuleId::WithdrawalSequence, withdrawal_sequence);
    run!(RuleId::NewDevice, new_device);
    run!(RuleId::AmountAboveUsual, amount_above_usual);
    run!(RuleId::AlertFollowUp, alert_follow_up);
    run!(RuleId::NewCountry, new_country);
    run!(RuleId::CardTesting, card_testing);
    hits
}

fn hit(rule: RuleId, weight: f64, finding: Finding) -> RuleHit {
    RuleHit {
        rule: rule.into(),
        rule_version: rule.version(),
        observed: finite(finding.observed),
        comparison: finding.comparison,
        threshold: finite(finding.threshold),
        weight,
        detail: finding.detail,
    }
}
