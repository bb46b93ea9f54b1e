//! Stream names of the event log, in one place so writers and readers agree.

use crate::ids::{AlertId, CustomerId};

/// Rejected input, kept whole with its reasons.
pub const QUARANTINE: &str = "quarantine";
/// Transactions sent again (idempotent repeats and conflicting reuse).
pub const REPEATS: &str = "repeats";
/// Rulesets published before policies (read, never written again: the
/// policy stream continues it, `crate::policy::book`).
pub const RULESET: &str = "ruleset";
/// Policy versions and their lifecycle: published, promoted, rolled back,
/// shadow set.
pub const POLICY: &str = "policy";
/// Trained models, each whole with its figures (`crate::model`).
pub const MODEL: &str = "model";
/// Recorded backtests: each a summary of what a draft policy would have
/// decided on the recorded traffic (`fraudctl backtest --record`).
pub const BACKTEST: &str = "backtest";

/// A customer's transactions and the alerts they raised.
pub fn customer(id: &CustomerId) -> String {
    format!("customer-{id}")
}

/// One alert's lifecycle: raised, acknowledged, resolved.
pub fn alert(id: &AlertId) -> String {
    format!("alert-{id}")
}

/// One transaction's labels (chargebacks, confirmed fraud). Labels name a
/// transaction, not its customer, so they get a stream of their own (ADR 0003).
pub fn label(transaction_id: &str) -> String {
    format!("label-{transaction_id}")
}
