//! Commands: what the command side asks the customer aggregate to do.
//!
//! Everything non-deterministic (ids, clocks) is decided by the caller and
//! carried in the command, so `decide` is a pure function and a replayed or
//! retried decision comes out identical.

use crate::ids::AlertId;
use crate::peers::PeerSnapshot;
use crate::transaction::Transaction;
use uuid::Uuid;

/// Decide on a parsed transaction and record it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordTransaction {
    pub transaction: Transaction,
    pub ids: DecisionIds,
    /// What the log knew of the transaction's merchant and category when the
    /// command side took it (the default, all zeros as of position 0, where
    /// nothing is known).
    pub peers: PeerSnapshot,
}

/// The ids a decision may use. The alert ones are used only if an alert is
/// raised; mint them anyway (UUID v7), it costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionIds {
    /// The envelope id of the `TransactionRecorded` event.
    pub transaction_event: Uuid,
    /// The envelope id of the `AlertRaised` event.
    pub alert_event: Uuid,
    /// The new alert's id (names its `alert-{id}` stream).
    pub alert: AlertId,
}
