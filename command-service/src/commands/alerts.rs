//! The analyst's alert commands, acknowledge and resolve: each appends one
//! event to the alert's stream `alert-{id}` when the `domain::alert`
//! aggregate, folded from that stream, says so. An empty stream is only
//! decided on once the alert is known to have been raised ([`RaisedAlerts`]).
//!
//! A verdict is ground truth too: once a resolution is in the log (recorded
//! now, or standing from before, so a retry after a failure finishes the
//! job), the alert's transaction is labelled through the one label command
//! (`super::labels`), source `analyst`, fraud when the verdict is
//! `confirmed_fraud`. The label command is idempotent, so a repeated
//! resolution appends nothing more.

use super::error::CommandError;
use super::events::decode;
use super::labels::{LabelError, Labels};
use super::pipeline::{Executed, OnStream, Precheck, run};
use super::raised::RaisedAlerts;
use domain::DomainEvent;
use domain::alert::{AcknowledgeAlert, AlertLifecycle, AlertRefusal, ResolveAlert};
use domain::events::{AlertAcknowledged, AlertResolved, TransactionLabeled, Verdict};
use domain::ids::AlertId;
use domain::outcome::{Decide, Stamped};
use domain::streams;
use domain::text::LabelSource;
use event_store::{EventMetadata, EventStore, Position};
use std::convert::Infallible;
use std::sync::Arc;

/// What came of an alert command, or why it was not carried out.
pub type AlertResult<E> = Result<Executed<Stamped<E>>, CommandError<AlertRefusal>>;

/// Carries out alert commands against the log.
pub struct AlertCommands {
    store: Arc<dyn EventStore>,
    raised: RaisedAlerts,
    labels: Labels,
}

/// The source of the labels that verdicts make.
pub const VERDICT_SOURCE: &str = "analyst";

impl AlertCommands {
    pub fn new(store: Arc<dyn EventStore>, labels: Labels) -> Self {
        let raised = RaisedAlerts::new(store.clone());
        AlertCommands {
            store,
            raised,
            labels,
        }
    }

    pub async fn acknowledge(
        &self,
        command: AcknowledgeAlert,
        metadata: EventMetadata,
    ) -> AlertResult<AlertAcknowledged> {
        let alert_id = command.0.alert_id;
        self.execute(alert_id, command, metadata).await
    }

    pub async fn resolve(
        &self,
        command: ResolveAlert,
        metadata: EventMetadata,
    ) -> AlertResult<AlertResolved> {
        let wanted = command.0.verdict;
        let alert_id = command.0.alert_id;
        let outcome = self.execute(alert_id, command, metadata.clone()).await?;
        // Recorded, or standing with the same verdict (the other is refused).
        self.label_verdict(alert_id, wanted, metadata).await?;
        Ok(outcome)
    }

    /// Labels the alert's transaction with the verdict that stands.
    async fn label_verdict(
        &self,
        alert_id: AlertId,
        verdict: Verdict,
        metadata: EventMetadata,
    ) -> Result<(), CommandError<AlertRefusal>> {
        let raised = self
            .raised
            .raised_at(alert_id)
            .await
            .map_err(CommandError::widen)?;
        let Some(raised) = raised.and_then(|p| p.0.checked_sub(1)) else {
            // A resolved alert was raised; kept total all the same.
            tracing::error!(%alert_id, "resolved an alert whose AlertRaised was not found");
            return Ok(());
        };
        let event = self
            .store
            .read_all(Position(raised), 1)
            .await
            .map_err(|e| CommandError::Store(e.to_string()))?;
        let Some(DomainEvent::AlertRaised(alert)) = event.first().and_then(decode) else {
            tracing::error!(%alert_id, "the AlertRaised of a resolved alert could not be read");
            return Ok(());
        };
        let Ok(source) = LabelSource::parse(VERDICT_SOURCE) else {
            return Ok(());
        };
        let label = TransactionLabeled::new(
            alert.transaction_id.clone(),
            verdict == Verdict::ConfirmedFraud,
            source,
        );
        match self
            .labels
            .record(label, Some(&alert.customer_id), metadata)
            .await
        {
            Ok(_) => Ok(()),
            Err(LabelError::Store(detail)) => Err(CommandError::Store(detail)),
            Err(LabelError::UnknownTransaction) => {
                tracing::error!(%alert_id, transaction_id = %alert.transaction_id, "the transaction of a resolved alert was not found");
                Ok(())
            }
        }
    }

    async fn execute<C, D>(
        &self,
        alert_id: AlertId,
        command: C,
        metadata: EventMetadata,
    ) -> Result<Executed<D>, CommandError<AlertRefusal>>
    where
        C: Send + Sync,
        D: Send,
        AlertLifecycle: Decide<C, Done = D, Refusal = AlertRefusal>,
    {
        let exists = Exists {
            raised: &self.raised,
            alert_id,
        };
        let stream = streams::alert(&alert_id);
        let mut on_stream =
            OnStream::<AlertLifecycle, _, _>::new(&*self.store, stream, command, metadata, exists);
        run(&*self.store, &mut on_stream).await
    }
}

/// An empty `alert-{id}`: the alert exists if its `AlertRaised` is in the log.
struct Exists<'a> {
    raised: &'a RaisedAlerts,
    alert_id: AlertId,
}

impl Precheck<AlertLifecycle> for Exists<'_> {
    async fn empty_stream(
        &self,
        state: AlertLifecycle,
    ) -> Result<AlertLifecycle, CommandError<Infallible>> {
        Ok(if self.raised.exists(self.alert_id).await? {
            state.raised()
        } else {
            state
        })
    }
}
