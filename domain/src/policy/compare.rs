//! Live against shadow (or live against a draft in a backtest): how many
//! decisions would change and how, the alerts one raises and the other does
//! not, and, over the labelled transactions, each side's recall, false
//! positive rate and precision. "Flagged" means an alert was raised, as in
//! the detection figures. Pure: callers gather the outcomes (the log, the
//! read model, a backtest) and add them here.

use crate::scoring::{Decision, Priority};
use serde::Serialize;
use std::collections::BTreeMap;

/// One side's verdict on a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// The alert raised (or that would have been).
    pub priority: Option<Priority>,
}

/// One side's label-scored figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Side {
    pub alerts: u64,
    pub reviews: u64,
    pub declines: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub true_negatives: u64,
}

impl Side {
    fn add(&mut self, v: Verdict, fraud: Option<bool>) {
        let flagged = v.priority.is_some();
        self.alerts += u64::from(flagged);
        self.reviews += u64::from(v.decision == Decision::Review);
        self.declines += u64::from(v.decision == Decision::Decline);
        match (fraud, flagged) {
            (Some(true), true) => self.true_positives += 1,
            (Some(true), false) => self.false_negatives += 1,
            (Some(false), true) => self.false_positives += 1,
            (Some(false), false) => self.true_negatives += 1,
            (None, _) => {}
        }
    }

    /// Flagged fraud / labelled fraud.
    pub fn recall(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Flagged legitimate / labelled legitimate.
    pub fn false_positive_rate(&self) -> Option<f64> {
        ratio(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }

    /// Fraud among the flagged labelled ones.
    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The comparison so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    pub transactions: u64,
    /// Transactions with a label (fraud or not) known.
    pub labelled: u64,
    /// Decisions that differ.
    pub changed_decisions: u64,
    /// "approve -> review" and so on, with how many.
    pub changes: BTreeMap<String, u64>,
    /// Alerts the second side raises and the first does not.
    pub alerts_added: u64,
    /// Alerts the first side raises and the second does not.
    pub alerts_removed: u64,
    pub live: Side,
    pub shadow: Side,
}

impl Comparison {
    /// Adds one transaction: the live verdict, the shadow's (or draft's),
    /// and its label if known (`Some(true)` = fraud).
    pub fn add(&mut self, live: Verdict, shadow: Verdict, fraud: Option<bool>) {
        self.transactions += 1;
        self.labelled += u64::from(fraud.is_some());
        if live.decision != shadow.decision {
            self.changed_decisions += 1;
            *self
                .changes
                .entry(format!("{} -> {}", live.decision, shadow.decision))
                .or_default() += 1;
        }
        match (live.priority.is_some(), shadow.priority.is_some()) {
            (false, true) => self.alerts_added += 1,
            (true, false) => self.alerts_removed += 1,
            _ => {}
        }
        self.live.add(live, fraud);
        self.shadow.add(shadow, fraud);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(decision: Decision, priority: Option<Priority>) -> Verdict {
        Verdict { decision, priority }
    }

    #[test]
    fn counts_changes_alerts_and_label_scores() {
        let mut c = Comparison::default();
        let quiet = v(Decision::Approve, None);
        let loud = v(Decision::Review, Some(Priority::P2));
        // A fraud only the shadow catches, a false alarm only live raises,
        // an unlabelled agreement.
        c.add(quiet, loud, Some(true));
        c.add(loud, quiet, Some(false));
        c.add(quiet, quiet, None);
        assert_eq!(c.transactions, 3);
        assert_eq!(c.labelled, 2);
        assert_eq!(c.changed_decisions, 2);
        assert_eq!(c.changes.get("approve -> review"), Some(&1));
        assert_eq!(c.changes.get("review -> approve"), Some(&1));
        assert_eq!((c.alerts_added, c.alerts_removed), (1, 1));
        assert_eq!(c.live.recall(), Some(0.0));
        assert_eq!(c.shadow.recall(), Some(1.0));
        assert_eq!(c.live.false_positive_rate(), Some(1.0));
        assert_eq!(c.shadow.false_positive_rate(), Some(0.0));
        assert_eq!(c.shadow.precision(), Some(1.0));
        assert_eq!(c.live.precision(), Some(0.0));
    }

    #[test]
    fn no_labels_no_rates() {
        let mut c = Comparison::default();
        c.add(v(Decision::Approve, None), v(Decision::Approve, None), None);
        assert_eq!(c.live.recall(), None);
        assert_eq!(c.shadow.precision(), None);
    }
}
