//! The label command: ground truth for a transaction, appended to its own
//! stream `label-{transaction_id}` (ADR 0003) unless it repeats what its
//! source says now (the `domain::label` aggregate decides).

use super::error::CommandError;
use super::pipeline::{Executed, NoPrecheck, OnStream, run};
use domain::events::TransactionLabeled;
use domain::label::{LabelHistory, LabelTransaction};
use domain::outcome::Stamped;
use event_store::{EventMetadata, EventStore};
use std::convert::Infallible;

/// Records the label, or answers with the one that stands.
pub async fn label(
    store: &dyn EventStore,
    command: LabelTransaction,
    metadata: EventMetadata,
) -> Result<Executed<Stamped<TransactionLabeled>>, CommandError<Infallible>> {
    let stream = domain::streams::label(command.0.transaction_id.as_str());
    let mut on_stream =
        OnStream::<LabelHistory, _, _>::new(store, stream, command, metadata, NoPrecheck);
    run(store, &mut on_stream).await
}
