//! A policy's expression rules as it holds them: each written rule with its
//! compiled expression, checked when the policy is read (so a `Ruleset`
//! value never holds a rule that does not compile), and their evaluation
//! into rule hits for `decide`.

use super::expression::{Compiled, ExpressionRule};
use crate::features::Features;
use crate::rules::{Comparison, RuleHit, RuleId, RuleName};
use crate::transaction::Transaction;
use serde::{Serialize, Serializer};
use std::collections::HashSet;
use std::sync::Arc;

/// The version recorded on every expression-rule hit: the expression itself
/// is versioned by the policy version that the decision records.
pub const EXPRESSION_RULE_VERSION: u32 = 1;

/// Longest rule name; names are stored in every hit.
const MAX_NAME: usize = 64;

/// One expression rule of a policy, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRule {
    pub rule: ExpressionRule,
    pub name: Arc<str>,
    pub program: Compiled,
}

impl Serialize for PolicyRule {
    /// As written: name, expression, weight, description, enabled.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.rule.serialize(serializer)
    }
}

/// Why a policy's expression rules were refused: names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression rule {name:?}: {reason}")]
pub struct RuleRefused {
    pub name: String,
    pub reason: String,
}

/// Checks and compiles every rule: names are 1..=64 of `[a-z0-9_]`, unique,
/// and not a built-in rule's; weights are in [0, 1]; every expression
/// compiles and type-checks against the catalogue (disabled rules too, so a
/// rule can be switched on later without surprises).
pub fn compile(rules: Vec<ExpressionRule>) -> Result<Vec<PolicyRule>, RuleRefused> {
    let mut seen = HashSet::new();
    let mut compiled = Vec::with_capacity(rules.len());
    for rule in rules {
        let refuse = |reason: String| RuleRefused {
            name: rule.name.clone(),
            reason,
        };
        let name = rule.name.as_str();
        if name.is_empty()
            || name.len() > MAX_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(refuse(
                "a name is 1 to 64 characters of a-z, 0-9 and _".to_owned(),
            ));
        }
        if RuleId::parse(name).is_some() {
            return Err(refuse("that is a built-in rule's name".to_owned()));
        }
        if !seen.insert(name.to_owned()) {
            return Err(refuse("the name is used twice".to_owned()));
        }
        if !(0.0..=1.0).contains(&rule.weight) {
            return Err(refuse("weight must be in [0, 1]".to_owned()));
        }
        let program = Compiled::compile(&rule.expression).map_err(|e| refuse(e.to_string()))?;
        compiled.push(PolicyRule {
            name: Arc::from(name),
            program,
            rule,
        });
    }
    Ok(compiled)
}

/// An expression rule that failed while evaluating: it counted as not fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationFailure {
    pub rule: Arc<str>,
    pub error: String,
}

/// Runs every enabled rule over the transaction and its features, adding a
/// hit for each that holds to `hits` and a failure for each that errs.
pub fn evaluate(
    rules: &[PolicyRule],
    tx: &Transaction,
    features: &Features,
    hits: &mut Vec<RuleHit>,
    failures: &mut Vec<EvaluationFailure>,
) {
    for r in rules.iter().filter(|r| r.rule.enabled) {
        match r.program.evaluate(tx, features) {
            Ok(false) => {}
            Ok(true) => hits.push(RuleHit {
                rule: RuleName::Expression(r.name.clone()),
                rule_version: EXPRESSION_RULE_VERSION,
                observed: 1.0,
                comparison: Comparison::Holds,
                threshold: 1.0,
                weight: r.rule.weight,
                detail: detail(r, tx, features),
            }),
            Err(error) => failures.push(EvaluationFailure {
                rule: r.name.clone(),
                error: error.to_string(),
            }),
        }
    }
}

/// "`f.amount > 900.0 && tx.country == 'NG'` held with f.amount = 950,
/// tx.country = NG", or the rule's description in place of the expression.
/// Written into one string: a hit's explanation costs more than evaluating
/// the rule, so it is built only for rules that fired, without
/// intermediate strings.
fn detail(r: &PolicyRule, tx: &Transaction, features: &Features) -> String {
    let mut out = String::with_capacity(128);
    match &r.rule.description {
        Some(d) if !d.trim().is_empty() => out.push_str(d.trim()),
        _ => {
            out.push('`');
            out.push_str(r.rule.expression.trim());
            out.push_str("` held");
        }
    }
    for (i, (name, value)) in r.program.observed(tx, features).iter().enumerate() {
        out.push_str(if i == 0 { " with " } else { ", " });
        out.push_str(name);
        out.push_str(" = ");
        out.push_str(value);
    }
    out
}
