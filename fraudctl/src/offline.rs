//! Deciding in memory, exactly as the command side does: one
//! `CustomerState` per customer, `decide` against the state before each
//! transaction, then `state.apply` of what was decided. Nothing is appended
//! anywhere. Used by `backtest` (recorded transactions through two
//! policies) and `eval --decide` (a simulated file without a service).

use domain::events::TransactionRecorded;
use domain::ids::{AlertId, CustomerId};
use domain::{
    CustomerState, DecisionIds, DomainEvent, RecordTransaction, Ruleset, Transaction, decide,
};
use std::collections::HashMap;
use uuid::Uuid;

pub struct Replayer {
    ruleset: Ruleset,
    states: HashMap<CustomerId, CustomerState>,
    /// Ids for the decisions (their values never change a decision).
    next_id: u128,
}

impl Replayer {
    pub fn new(ruleset: Ruleset) -> Replayer {
        Replayer {
            ruleset,
            states: HashMap::new(),
            next_id: 0,
        }
    }

    /// Decides `tx` against its customer's state so far, then folds the
    /// decision in; returns the `TransactionRecorded` it would append.
    pub fn decide(&mut self, tx: Transaction) -> TransactionRecorded {
        let ruleset = &self.ruleset;
        let state = self
            .states
            .entry(tx.customer_id.clone())
            .or_insert_with(|| CustomerState::for_ruleset(ruleset));
        let mut id = || {
            self.next_id += 1;
            Uuid::from_u128(self.next_id)
        };
        let ids = DecisionIds {
            transaction_event: id(),
            alert_event: id(),
            alert: AlertId(id()),
        };
        let decided = decide(
            state,
            &RecordTransaction {
                transaction: tx,
                ids,
                peers: Default::default(),
            },
            ruleset,
        );
        let event = DomainEvent::TransactionRecorded(decided.recorded.clone());
        state.apply(&event);
        decided.recorded
    }
}

/// Reads a policy file (TOML: the ruleset's sections and any
/// `[[expression_rules]]`, each compiled), or the built-in default. The
/// error names the file, and the rule and what is wrong with it.
pub fn load_ruleset(path: Option<&std::path::Path>) -> anyhow::Result<Ruleset> {
    match path {
        None => Ok(Ruleset::default()),
        Some(p) => crate::policy::check_file(p).map(|(_, policy)| policy),
    }
}
