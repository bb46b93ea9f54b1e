//! The ruleset: every threshold, weight and switch of the rules, the decision
//! and priority cut-offs, and the lateness and history bounds, under one
//! version string that every decision records.
//!
//! The service reads it from TOML. `rulesets/default.toml` is the default
//! ruleset and the only place a default value is written: it is embedded and
//! `Ruleset::default()` parses it; a ruleset that leaves out a section or a
//! later-added rule gets it from there (a left-out rule is switched off).
//! Deserialising checks it ("parse, don't validate"): a `Ruleset` value always
//! has weights in [0, 1], ordered thresholds and a history long enough for its
//! longest window.

use crate::policy::expression::ExpressionRule;
use crate::policy::rules::{self as expression_rules, PolicyRule};
use crate::rules::{
    alert_follow_up, amount_above_usual, amount_anomaly, card_testing, distinct_cities,
    impossible_travel, new_category, new_country, new_device, unusual_hour, velocity_amount,
    velocity_count, withdrawal_sequence,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::LazyLock;

/// The default ruleset file, embedded so the service always has one.
pub const DEFAULT_TOML: &str = include_str!("../rulesets/default.toml");

/// One rule's switch, weight and thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig<T> {
    pub enabled: bool,
    /// How much the rule adds to the risk score when it fires, in [0, 1].
    pub weight: f64,
    pub thresholds: T,
}

impl<T: Clone> RuleConfig<T> {
    /// A rule a ruleset does not mention: switched off, with the default
    /// file's thresholds (never used, but shown when the ruleset is). Rulesets
    /// written (and published to the log) before the rule existed load
    /// unchanged and decide as they did.
    fn off(shipped: &RuleConfig<T>) -> Self {
        RuleConfig {
            enabled: false,
            weight: 0.0,
            thresholds: shipped.thresholds.clone(),
        }
    }
}

/// Every rule's configuration, by rule name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rules {
    pub velocity_count: RuleConfig<velocity_count::Thresholds>,
    pub velocity_amount: RuleConfig<velocity_amount::Thresholds>,
    pub impossible_travel: RuleConfig<impossible_travel::Thresholds>,
    pub distinct_cities: RuleConfig<distinct_cities::Thresholds>,
    pub amount_anomaly: RuleConfig<amount_anomaly::Thresholds>,
    pub new_category: RuleConfig<new_category::Thresholds>,
    pub unusual_hour: RuleConfig<unusual_hour::Thresholds>,
    pub withdrawal_sequence: RuleConfig<withdrawal_sequence::Thresholds>,
    /// This rule and the ones below came later: a ruleset may leave them out.
    pub new_device: RuleConfig<new_device::Thresholds>,
    pub amount_above_usual: RuleConfig<amount_above_usual::Thresholds>,
    pub alert_follow_up: RuleConfig<alert_follow_up::Thresholds>,
    pub new_country: RuleConfig<new_country::Thresholds>,
    pub card_testing: RuleConfig<card_testing::Thresholds>,
}

/// Scores at or above these get the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionThresholds {
    pub review: f64,
    pub decline: f64,
}

/// Scores at or above these raise an alert of that priority; below `p3`, no alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityThresholds {
    pub p0: f64,
    pub p1: f64,
    pub p2: f64,
    pub p3: f64,
}

/// When a transaction counts as late.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lateness {
    /// Late: older than the customer's newest event time by more than this.
    pub allowed_secs: u32,
}

impl Default for Lateness {
    /// The default file's.
    fn default() -> Self {
        shipped().lateness.clone()
    }
}

/// How much history a customer's state keeps. A transaction later than
/// `retention_secs` minus its longest window is still accepted, but its
/// windows may miss transactions that were already dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryLimits {
    /// Transactions older than the newest by more than this leave the window.
    pub retention_secs: u32,
    /// And never more than this many (bounds memory for runaway customers).
    pub max_transactions: u32,
    /// Distinct merchant categories remembered; past it, no category is new.
    pub max_categories: u32,
    /// Devices remembered (the least recently seen is forgotten first).
    pub max_devices: u32,
    /// Countries remembered; past it, no country is new.
    pub max_countries: u32,
    /// Merchants remembered (4 bytes each); past it, "first use of this
    /// merchant" is unknown. Rulesets written before it get the default's.
    #[serde(default = "default_max_merchants")]
    pub max_merchants: u32,
}

fn default_max_merchants() -> u32 {
    shipped().history.max_merchants
}

impl Default for HistoryLimits {
    /// The default file's.
    fn default() -> Self {
        shipped().history.clone()
    }
}

/// A complete, checked rule configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ruleset {
    /// Recorded on every decision; change it whenever anything else changes.
    pub version: String,
    /// The model this policy scores with (a version in the `model` stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The model itself, once loaded from the `model` stream
    /// (`crate::model::ModelBook::attach`); never serialised, never compared.
    #[serde(skip)]
    pub scorer: crate::model::Scorer,
    pub lateness: Lateness,
    pub history: HistoryLimits,
    pub decision: DecisionThresholds,
    pub priority: PriorityThresholds,
    /// Boxed: a ruleset travels inside `RulesetPublished`, and a large
    /// inline one would make every `DomainEvent` value as big as it.
    pub rules: Box<Rules>,
    /// Rules written as CEL expressions over `tx.*` and `f.*`, compiled
    /// (`crate::policy::rules`); written out as `[[expression_rules]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expression_rules: Vec<PolicyRule>,
}

/// Why a ruleset was refused; names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ruleset: {0}")]
pub struct RulesetError(pub String);

impl Default for Ruleset {
    /// `rulesets/default.toml`, where every value is explained (measured on
    /// the simulator's default mix, docs/detection.md).
    fn default() -> Self {
        shipped().clone()
    }
}

/// The default file, parsed once. It is compiled in and the ruleset tests
/// load it, so it cannot fail at run time unless they failed; no input of
/// the service reaches it.
#[allow(clippy::panic)]
fn shipped() -> &'static Ruleset {
    static SHIPPED: LazyLock<Ruleset> = LazyLock::new(|| {
        toml::from_str::<Unchecked>(DEFAULT_TOML)
            .map_err(|e| RulesetError(e.to_string()))
            .and_then(|u| u.resolve(None))
            .unwrap_or_else(|e| panic!("rulesets/default.toml: {e}"))
    });
    &SHIPPED
}

impl Ruleset {
    /// Checks a ruleset built in code (deserialising checks on its own).
    pub fn checked(self) -> Result<Ruleset, RulesetError> {
        self.check().map(|()| self)
    }

    /// The longest event-time window any rule looks back over, in seconds.
    pub fn longest_window_secs(&self) -> u32 {
        let r = &self.rules;
        [
            r.velocity_count.thresholds.window_secs,
            r.velocity_amount.thresholds.window_secs,
            r.distinct_cities.thresholds.window_secs,
            r.withdrawal_sequence.thresholds.international_within_secs,
            r.impossible_travel.thresholds.lookback_secs,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    fn check(&self) -> Result<(), RulesetError> {
        let fail = |what: &str| Err(RulesetError(what.to_owned()));
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        if self.version.trim().is_empty() || self.version.len() > 64 {
            return fail("version must be 1..=64 characters");
        }
        let d = &self.decision;
        if !(unit(d.review) && unit(d.decline) && d.review <= d.decline) {
            return fail("decision: need 0 <= review <= decline <= 1");
        }
        let p = &self.priority;
        if !([p.p0, p.p1, p.p2, p.p3].into_iter().all(unit)
            && p.p3 <= p.p2
            && p.p2 <= p.p1
            && p.p1 <= p.p0)
        {
            return fail("priority: need 0 <= p3 <= p2 <= p1 <= p0 <= 1");
        }
        let h = &self.history;
        if h.max_transactions == 0 || h.max_categories == 0 {
            return fail("history: max_transactions and max_categories must be > 0");
        }
        if h.retention_secs < self.longest_window_secs() {
            return fail("history.retention_secs must cover the longest rule window");
        }
        let r = &self.rules;
        let weights = [
            ("velocity_count", r.velocity_count.weight),
            ("velocity_amount", r.velocity_amount.weight),
            ("impossible_travel", r.impossible_travel.weight),
            ("distinct_cities", r.distinct_cities.weight),
            ("amount_anomaly", r.amount_anomaly.weight),
            ("new_category", r.new_category.weight),
            ("unusual_hour", r.unusual_hour.weight),
            ("withdrawal_sequence", r.withdrawal_sequence.weight),
            ("new_device", r.new_device.weight),
            ("amount_above_usual", r.amount_above_usual.weight),
            ("alert_follow_up", r.alert_follow_up.weight),
            ("new_country", r.new_country.weight),
            ("card_testing", r.card_testing.weight),
        ];
        if let Some((name, _)) = weights.iter().find(|(_, w)| !unit(*w)) {
            return Err(RulesetError(format!(
                "rules.{name}.weight must be in [0, 1]"
            )));
        }
        let windows = [
            r.velocity_count.thresholds.window_secs,
            r.velocity_amount.thresholds.window_secs,
            r.distinct_cities.thresholds.window_secs,
            r.withdrawal_sequence.thresholds.purchases_within_secs,
            r.withdrawal_sequence.thresholds.international_within_secs,
        ];
        if windows.contains(&0) {
            return fail("rules: every window must be longer than 0 s");
        }
        let travel = &r.impossible_travel.thresholds;
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        if !(non_negative(travel.max_speed_kmh)
            && travel.max_speed_kmh > 0.0
            && non_negative(travel.min_distance_km))
        {
            return fail(
                "rules.impossible_travel: max_speed_kmh must be > 0, min_distance_km >= 0",
            );
        }
        let anomaly = &r.amount_anomaly.thresholds;
        if !(non_negative(anomaly.sigmas) && non_negative(anomaly.min_std_dev_ratio)) {
            return fail("rules.amount_anomaly: sigmas and min_std_dev_ratio must be >= 0");
        }
        if let Some([from, to]) = r.unusual_hour.thresholds.night
            && (from > 23 || to > 23 || from == to)
        {
            return fail("rules.unusual_hour.night: need two different hours in 0..=23");
        }
        if !non_negative(r.new_category.thresholds.min_ratio) {
            return fail("rules.new_category.min_ratio must be >= 0");
        }
        let testing = r.card_testing.thresholds.max_ratio;
        if !(testing.is_finite() && testing > 0.0) {
            return fail("rules.card_testing: max_ratio must be > 0");
        }
        let usual = &r.amount_above_usual.thresholds;
        if !(usual.ratio.is_finite() && usual.ratio > 0.0) {
            return fail("rules.amount_above_usual: ratio must be > 0");
        }
        Ok(())
    }
}

/// The same shape as `Ruleset`, before it is checked and before what it
/// leaves out is taken from the default file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unchecked {
    version: String,
    #[serde(default)]
    model: Option<String>,
    lateness: Option<Lateness>,
    history: Option<UncheckedHistory>,
    decision: DecisionThresholds,
    priority: PriorityThresholds,
    rules: UncheckedRules,
    #[serde(default)]
    expression_rules: Vec<ExpressionRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UncheckedHistory {
    retention_secs: u32,
    max_transactions: u32,
    max_categories: u32,
    max_devices: Option<u32>,
    max_countries: Option<u32>,
    #[serde(default)]
    max_merchants: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UncheckedRules {
    velocity_count: RuleConfig<velocity_count::Thresholds>,
    velocity_amount: RuleConfig<velocity_amount::Thresholds>,
    impossible_travel: RuleConfig<impossible_travel::Thresholds>,
    distinct_cities: RuleConfig<distinct_cities::Thresholds>,
    amount_anomaly: RuleConfig<amount_anomaly::Thresholds>,
    new_category: RuleConfig<new_category::Thresholds>,
    unusual_hour: RuleConfig<unusual_hour::Thresholds>,
    withdrawal_sequence: RuleConfig<withdrawal_sequence::Thresholds>,
    new_device: Option<RuleConfig<new_device::Thresholds>>,
    amount_above_usual: Option<RuleConfig<amount_above_usual::Thresholds>>,
    alert_follow_up: Option<RuleConfig<alert_follow_up::Thresholds>>,
    new_country: Option<RuleConfig<new_country::Thresholds>>,
    card_testing: Option<RuleConfig<card_testing::Thresholds>>,
}

impl Unchecked {
    /// Fills what the file left out from `defaults` (the default file's
    /// ruleset) and checks the result. The default file itself is resolved
    /// with no defaults: it must say everything.
    fn resolve(self, defaults: Option<&Ruleset>) -> Result<Ruleset, RulesetError> {
        fn or_default<T: Clone>(
            given: Option<T>,
            defaults: Option<&Ruleset>,
            key: &str,
            pick: impl FnOnce(&Ruleset) -> T,
        ) -> Result<T, RulesetError> {
            match (given, defaults) {
                (Some(value), _) => Ok(value),
                (None, Some(d)) => Ok(pick(d)),
                (None, None) => Err(RulesetError(format!("the default ruleset must set {key}"))),
            }
        }
        fn off<T: Clone>(
            given: Option<RuleConfig<T>>,
            defaults: Option<&Ruleset>,
            key: &str,
            pick: impl FnOnce(&Rules) -> &RuleConfig<T>,
        ) -> Result<RuleConfig<T>, RulesetError> {
            or_default(given, defaults, key, |d| RuleConfig::off(pick(&d.rules)))
        }
        let d = defaults;
        let history = match self.history {
            Some(h) => HistoryLimits {
                retention_secs: h.retention_secs,
                max_transactions: h.max_transactions,
                max_categories: h.max_categories,
                max_devices: or_default(h.max_devices, d, "history.max_devices", |d| {
                    d.history.max_devices
                })?,
                max_countries: or_default(h.max_countries, d, "history.max_countries", |d| {
                    d.history.max_countries
                })?,
                max_merchants: or_default(h.max_merchants, d, "history.max_merchants", |d| {
                    d.history.max_merchants
                })?,
            },
            None => or_default(None, d, "history", |d| d.history.clone())?,
        };
        let r = self.rules;
        let rules = Rules {
            velocity_count: r.velocity_count,
            velocity_amount: r.velocity_amount,
            impossible_travel: r.impossible_travel,
            distinct_cities: r.distinct_cities,
            amount_anomaly: r.amount_anomaly,
            new_category: r.new_category,
            unusual_hour: r.unusual_hour,
            withdrawal_sequence: r.withdrawal_sequence,
            new_device: off(r.new_device, d, "rules.new_device", |r| &r.new_device)?,
            amount_above_usual: off(r.amount_above_usual, d, "rules.amount_above_usual", |r| {
                &r.amount_above_usual
            })?,
            alert_follow_up: off(r.alert_follow_up, d, "rules.alert_follow_up", |r| {
                &r.alert_follow_up
            })?,
            new_country: off(r.new_country, d, "rules.new_country", |r| &r.new_country)?,
            card_testing: off(r.card_testing, d, "rules.card_testing", |r| &r.card_testing)?,
        };
        let compiled = expression_rules::compile(self.expression_rules)
            .map_err(|e| RulesetError(e.to_string()))?;
        if let Some(model) = &self.model
            && (model.trim().is_empty() || model.len() > 64)
        {
            return Err(RulesetError("model must be 1..=64 characters".to_owned()));
        }
        Ruleset {
            version: self.version,
            model: self.model,
            scorer: crate::model::Scorer::default(),
            lateness: or_default(self.lateness, d, "lateness", |d| d.lateness.clone())?,
            history,
            decision: self.decision,
            priority: self.priority,
            rules: Box::new(rules),
            expression_rules: compiled,
        }
        .checked()
    }
}

impl<'de> Deserialize<'de> for Ruleset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ruleset, D::Error> {
        Unchecked::deserialize(deserializer)?
            .resolve(Some(shipped()))
            .map_err(serde::de::Error::custom)
    }
}
