//! The policy: the one versioned unit that decides (ADR 0015). Its built-in
//! part (rules' thresholds and weights, decision and priority cut-offs) is
//! `crate::ruleset::Ruleset`; here live the expression rules written in CEL,
//! the policy stream's lifecycle (publish, shadow, promote, rollback, four
//! eyes) and the live-against-shadow comparison.

pub mod book;
pub mod compare;
pub mod diff;
pub mod expression;
pub mod rules;

use crate::ruleset::{Ruleset, RulesetError};

/// Reads a policy file (TOML): the ruleset's sections, `model`, and
/// `[[expression_rules]]`; checked and compiled, or the first reason not.
pub fn from_toml(text: &str) -> Result<Ruleset, RulesetError> {
    toml::from_str(text).map_err(|e| RulesetError(e.to_string().trim().to_owned()))
}

/// Writes a policy as a file `from_toml` reads back equal: `version` first,
/// then every section, then each expression rule as `[[expression_rules]]`.
pub fn to_toml(policy: &Ruleset) -> Result<String, RulesetError> {
    toml::to_string(policy).map_err(|e| RulesetError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_round_trips_through_toml() {
        let policy = Ruleset::default();
        let text = to_toml(&policy).unwrap();
        assert!(text.starts_with("version = "), "{text}");
        assert_eq!(from_toml(&text).unwrap(), policy);
    }

    #[test]
    fn expression_rules_round_trip_and_are_written_as_tables() {
        let mut text = to_toml(&Ruleset::default()).unwrap();
        text = text.replacen("version = \"2026.2-default\"", "version = \"v-expr\"", 1);
        text.push_str(
            "\n[[expression_rules]]\nname = \"big_night\"\nexpression = \"f.amount > 900.0 && f.is_night == 1.0\"\nweight = 0.4\n",
        );
        let policy = from_toml(&text).unwrap();
        assert_eq!(policy.expression_rules.len(), 1);
        let again = to_toml(&policy).unwrap();
        assert!(again.contains("[[expression_rules]]"), "{again}");
        assert_eq!(from_toml(&again).unwrap(), policy);
    }

    #[test]
    fn a_repeated_name_is_refused_naming_the_rule() {
        let mut text = to_toml(&Ruleset::default()).unwrap();
        for _ in 0..2 {
            text.push_str("\n[[expression_rules]]\nname = \"twice\"\nexpression = \"f.amount > 1.0\"\nweight = 0.1\n");
        }
        let error = from_toml(&text).unwrap_err().to_string();
        assert!(
            error.contains("twice") && error.contains("used twice"),
            "{error}"
        );
    }
}
