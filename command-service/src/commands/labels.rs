//! The label command: ground truth for a transaction, appended to its own
//! stream `label-{transaction_id}` (ADR 0003) unless it repeats what its
//! source says now (the `domain::label` aggregate decides).
//!
//! The transaction is resolved first, and the label carries what it needs
//! of it (customer, merchant, category, event time: `TransactionLabeled`
//! v2), so the merchant and category counts fold from labels alone. Where
//! it is: the transaction directory (`crate::peers::directory`) names the
//! position of its `TransactionRecorded`, and that one event is read and
//! checked (the directory keys by a hash); on a miss, a label that names
//! its customer is looked for in that customer's stream. A label for a
//! transaction found neither way is [`LabelError::UnknownTransaction`]:
//! the HTTP side answers 404 and keeps the label in the quarantine.
//!
//! The label's event time is when the service recorded it (its receipt),
//! never the transaction's: nothing may learn from a label before it came.
//! Each recorded label's delay (receipt minus the transaction's event time)
//! goes into `sentinel_label_delay_seconds`.

use super::error::CommandError;
use super::events::{decode, read_from};
use super::pipeline::{Executed, NoPrecheck, OnStream, run};
use crate::peers::LivePeers;
use domain::DomainEvent;
use domain::events::{EventPayload, LabeledTransaction, TransactionLabeled, TransactionRecorded};
use domain::ids::{CustomerId, TransactionId};
use domain::label::{LabelHistory, LabelTransaction};
use domain::outcome::Stamped;
use event_store::{EventMetadata, EventStore, Position, StoreError};
use std::sync::Arc;

/// What came of a label: recorded now (with its event time) or the one
/// that stands (a repeat).
pub type LabelOutcome = Executed<Stamped<TransactionLabeled>>;

/// Why a label was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelError {
    /// No transaction with that id is known (404, quarantined).
    UnknownTransaction,
    /// The event store failed; the text is for the logs.
    Store(String),
}

impl From<StoreError> for LabelError {
    fn from(e: StoreError) -> Self {
        LabelError::Store(e.to_string())
    }
}

/// Records labels against the log.
#[derive(Clone)]
pub struct Labels {
    store: Arc<dyn EventStore>,
    peers: Arc<LivePeers>,
}

impl Labels {
    pub fn new(store: Arc<dyn EventStore>, peers: Arc<LivePeers>) -> Self {
        Labels { store, peers }
    }

    /// Resolves the label's transaction (looking in `customer`'s stream if
    /// the directory does not know it), then records the label, or answers
    /// with the one that stands.
    pub async fn record(
        &self,
        label: TransactionLabeled,
        customer: Option<&CustomerId>,
        metadata: EventMetadata,
    ) -> Result<LabelOutcome, LabelError> {
        let transaction = self
            .resolve(&label.transaction_id, customer)
            .await?
            .ok_or(LabelError::UnknownTransaction)?;
        let happened = transaction.timestamp;
        let command = LabelTransaction(TransactionLabeled {
            transaction: Some(transaction),
            ..label
        });
        let store = &*self.store;
        let stream = domain::streams::label(command.0.transaction_id.as_str());
        let mut on_stream =
            OnStream::<LabelHistory, _, _>::new(store, stream, command, metadata, NoPrecheck);
        let outcome = run(store, &mut on_stream).await.map_err(|e| match e {
            CommandError::Refused(never) => match never {},
            CommandError::Store(detail) => LabelError::Store(detail),
            // Labels never wait for the log to be read; kept total.
            CommandError::CatchingUp => LabelError::Store("catching up".into()),
        })?;
        if let Executed::Recorded(at) = &outcome {
            // How late ground truth comes: what a model's newest labelled
            // slice, and the quality gauges, wait for.
            let delay = (*at - happened).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("sentinel_label_delay_seconds").record(delay);
        }
        Ok(outcome)
    }

    /// The labelled transaction as the log recorded it, if it is known.
    pub async fn resolve(
        &self,
        id: &TransactionId,
        customer: Option<&CustomerId>,
    ) -> Result<Option<LabeledTransaction>, StoreError> {
        if let Some(position) = self.peers.directory().get(id.as_str())
            && let Some(found) = self.at_position(id, position).await?
        {
            return Ok(Some(found));
        }
        match customer {
            Some(customer) => self.in_customer_stream(id, customer).await,
            None => Ok(None),
        }
    }

    /// The transaction recorded at `position`, if that event is its
    /// `TransactionRecorded` (the directory's key is a hash: check).
    async fn at_position(
        &self,
        id: &TransactionId,
        position: u64,
    ) -> Result<Option<LabeledTransaction>, StoreError> {
        let Some(before) = position.checked_sub(1) else {
            return Ok(None);
        };
        let events = self.store.read_all(Position(before), 1).await?;
        Ok(events
            .first()
            .filter(|e| e.position.0 == position && e.event_type == TransactionRecorded::EVENT_TYPE)
            .and_then(decode)
            .and_then(|event| match event {
                DomainEvent::TransactionRecorded(r) if &r.transaction.transaction_id == id => {
                    Some(LabeledTransaction::of(&r.transaction))
                }
                _ => None,
            }))
    }

    /// The transaction, looked for in its customer's stream.
    async fn in_customer_stream(
        &self,
        id: &TransactionId,
        customer: &CustomerId,
    ) -> Result<Option<LabeledTransaction>, StoreError> {
        let stream = domain::streams::customer(customer);
        let (events, _) = read_from(&*self.store, &stream, 0).await?;
        Ok(events.into_iter().find_map(|(event, _)| match event {
            DomainEvent::TransactionRecorded(r) if &r.transaction.transaction_id == id => {
                Some(LabeledTransaction::of(&r.transaction))
            }
            _ => None,
        }))
    }
}
