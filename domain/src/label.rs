//! The label aggregate: what a transaction's label stream
//! `label-{transaction_id}` says (the newest label from each source), and
//! the rule for recording another.
//!
//! A label that repeats the current one from its source (a retry) gets the
//! stored label back and nothing is appended; one that changes what a
//! source said (a chargeback reversed) is a new fact and is appended: the
//! newest label per source is the truth; the newest of any source is the
//! transaction's status, and each appended label records the status before
//! it (`was_fraud`), so merchant counts fold from labels alone
//! (`crate::peers`). The aggregate refuses nothing: that the transaction
//! exists is the command side's check before it asks (a label for an
//! unknown transaction is refused there and kept in the quarantine).

use crate::events::{DomainEvent, TransactionLabeled};
use crate::outcome::{Aggregate, Decide, Outcome, Stamped};
use crate::text::LabelSource;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::convert::Infallible;

/// Record ground truth for a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelTransaction(pub TransactionLabeled);

/// The newest label from each source, and the newest of all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelHistory {
    newest: BTreeMap<LabelSource, Stamped<TransactionLabeled>>,
    /// What the newest label (any source) said: the transaction's status.
    is_fraud: Option<bool>,
}

impl LabelHistory {
    /// What `source` says now, if anything.
    pub fn current(&self, source: &LabelSource) -> Option<&Stamped<TransactionLabeled>> {
        self.newest.get(source)
    }

    /// Whether the transaction counts as fraud now: what its newest label,
    /// from any source, says (a chargeback reversed by an analyst is not
    /// fraud any more). False while unlabelled.
    pub fn is_fraud(&self) -> bool {
        self.is_fraud.unwrap_or(false)
    }
}

impl Aggregate for LabelHistory {
    fn evolve(mut self, event: &DomainEvent, at: DateTime<Utc>) -> Self {
        if let DomainEvent::TransactionLabeled(label) = event {
            let stamped = Stamped {
                event: label.clone(),
                at,
            };
            self.newest.insert(label.source.clone(), stamped);
            self.is_fraud = Some(label.is_fraud);
        }
        self
    }
}

impl Decide<LabelTransaction> for LabelHistory {
    type Done = Stamped<TransactionLabeled>;
    type Refusal = Infallible;

    fn decide(&self, command: &LabelTransaction) -> Result<Outcome<Self::Done>, Infallible> {
        let wanted = &command.0;
        Ok(match self.current(&wanted.source) {
            Some(stored) if stored.event.is_fraud == wanted.is_fraud => {
                Outcome::AlreadyDone(stored.clone())
            }
            _ => Outcome::Append(
                TransactionLabeled {
                    was_fraud: Some(self.is_fraud()),
                    ..wanted.clone()
                }
                .into(),
            ),
        })
    }
}
