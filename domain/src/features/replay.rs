//! Features recomputed from the log: fold the events in position order and
//! get, for every recorded transaction, the features its decision saw. The
//! customer's state is the fold of its stream before the transaction (as
//! the command side's is); the merchant counts are taken back to the
//! position the decision recorded (`TransactionRecorded::peers_as_of`);
//! the rule findings are the recorded ones. Backtest, training and
//! `fraudctl features export` all read features through this.

use super::Features;
use super::compute::{Inputs, compute};
use crate::aggregate::CustomerState;
use crate::events::DomainEvent;
use crate::ids::{CustomerId, TransactionId};
use crate::peers::{PeerBook, PeerReplay};
use crate::ruleset::HistoryLimits;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One recorded transaction's features.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its `TransactionRecorded` event's position.
    pub position: u64,
    pub transaction_id: TransactionId,
    pub customer_id: CustomerId,
    pub timestamp: DateTime<Utc>,
    pub features: Features,
    /// False when the merchant counts could not be taken back exactly to
    /// the recorded position (it was older than the changes kept).
    pub exact: bool,
}

/// The fold. Keeps every customer's state it meets (a few KiB each): meant
/// for batch jobs over a range of the log, not for a service.
#[derive(Debug, Clone)]
pub struct FeatureReplay {
    limits: HistoryLimits,
    customers: HashMap<CustomerId, CustomerState>,
    peers: PeerReplay,
}

impl FeatureReplay {
    pub fn new(limits: HistoryLimits, max_merchants: usize) -> Self {
        FeatureReplay {
            limits,
            customers: HashMap::new(),
            peers: PeerReplay::new(PeerBook::new(max_merchants), 1 << 16),
        }
    }

    /// Folds the event at `position` (ascending); a recorded transaction
    /// gives its row.
    pub fn apply(&mut self, position: u64, event: &DomainEvent) -> Option<Row> {
        let mut row = None;
        if let DomainEvent::TransactionRecorded(r) = event {
            let tx = &r.transaction;
            let state = self
                .customers
                .entry(tx.customer_id.clone())
                .or_insert_with(|| CustomerState::new(self.limits.clone()));
            let as_of = r.peers_as_of.unwrap_or(self.peers.position());
            let exact = self.peers.snapshot(
                as_of,
                tx.merchant_id.as_ref(),
                tx.merchant_category.as_ref(),
                tx.timestamp,
            );
            let snapshot = exact.unwrap_or_else(|| {
                self.peers.book().snapshot(
                    as_of,
                    tx.merchant_id.as_ref(),
                    tx.merchant_category.as_ref(),
                    tx.timestamp,
                )
            });
            let features = compute(Inputs {
                state,
                tx,
                peers: &snapshot,
                hits: &r.rules_fired,
            });
            state.apply(event);
            row = Some(Row {
                position,
                transaction_id: tx.transaction_id.clone(),
                customer_id: tx.customer_id.clone(),
                timestamp: tx.timestamp,
                features,
                exact: exact.is_some(),
            });
        }
        self.peers.apply(position, event);
        row
    }

    /// Customers met so far.
    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }
}
