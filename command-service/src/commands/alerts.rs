//! The analyst's alert commands, acknowledge and resolve: each appends one
//! event to the alert's stream `alert-{id}` when the `domain::alert`
//! aggregate, folded from that stream, says so. An empty stream is only
//! decided on once the alert is known to have been raised ([`RaisedAlerts`]).

use super::error::CommandError;
use super::pipeline::{Executed, OnStream, Precheck, run};
use super::raised::RaisedAlerts;
use domain::alert::{AcknowledgeAlert, AlertLifecycle, AlertRefusal, ResolveAlert};
use domain::events::{AlertAcknowledged, AlertResolved};
use domain::ids::AlertId;
use domain::outcome::{Decide, Stamped};
use domain::streams;
use event_store::{EventMetadata, EventStore};
use std::convert::Infallible;
use std::sync::Arc;

/// What came of an alert command, or why it was not carried out.
pub type AlertResult<E> = Result<Executed<Stamped<E>>, CommandError<AlertRefusal>>;

/// Carries out alert commands against the log.
pub struct AlertCommands {
    store: Arc<dyn EventStore>,
    raised: RaisedAlerts,
}

impl AlertCommands {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        let raised = RaisedAlerts::new(store.clone());
        AlertCommands { store, raised }
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
        let alert_id = command.0.alert_id;
        self.execute(alert_id, command, metadata).await
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
