//! The policy: the one versioned unit that decides (ADR 0015). Its built-in
//! part (rules' thresholds and weights, decision and priority cut-offs) is
//! `crate::ruleset::Ruleset`; here live the expression rules written in CEL,
//! the policy stream's lifecycle (publish, shadow, promote, rollback, four
//! eyes) and the live-against-shadow comparison.

pub mod expression;
