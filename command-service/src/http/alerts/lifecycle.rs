//! What the alert routes share once a request is understood: the alert's
//! stream `alert-{id}` read into a `Lifecycle` (its version, acknowledgement
//! and resolution), and `AlertsState::record`, which lets a command decide
//! on that reading and appends its event under optimistic concurrency,
//! reading and deciding again when another writer got there first.

use super::acknowledgement::AcknowledgementAnswer;
use super::resolution::ResolutionAnswer;
use super::{AlertsState, not_found};
use crate::http::problem::Problem;
use crate::http::store_unavailable;
use crate::ingest::RequestMeta;
use chrono::{DateTime, SubsecRound, Utc};
use domain::DomainEvent;
use domain::ids::AlertId;
use domain::streams;
use event_store::{AppendError, EventStore, ExpectedVersion, NewEvent, StreamVersion};

/// Attempts when another writer keeps changing the alert's stream between
/// our read and our append.
const MAX_ATTEMPTS: usize = 5;

/// Events per read of an alert's stream (it holds a handful).
const STREAM_PAGE: usize = 1000;

/// What the alert's own stream says.
pub(super) struct Lifecycle {
    /// The version of its last event; `None` while it has none.
    pub version: Option<StreamVersion>,
    pub acknowledged: Option<AcknowledgementAnswer>,
    pub resolved: Option<ResolutionAnswer>,
}

/// What a command makes of the lifecycle.
pub(super) enum Decision<A> {
    /// Append the command's event.
    Append,
    /// It was done before: this stored answer stands, nothing is appended.
    Stands(A),
    /// It contradicts the stream (a conflict): this problem is the answer.
    Refuse(Problem),
}

/// What came of a command.
pub(super) enum Outcome<A> {
    /// The event was appended with this event time.
    Recorded(DateTime<Utc>),
    /// `Decision::Stands`: the stored answer.
    Stood(A),
}

impl AlertsState {
    /// Appends `event` to the alert's stream if `decide`, shown the stream
    /// as it is, says so; before anything is appended to an empty stream,
    /// the alert must exist.
    pub(super) async fn record<A>(
        &self,
        alert_id: AlertId,
        event: DomainEvent,
        meta: &RequestMeta,
        decide: impl Fn(Lifecycle) -> Decision<A>,
    ) -> Result<Outcome<A>, Problem> {
        let stream = streams::alert(&alert_id);
        let store = self.app.ingest.store();
        let payload = event.to_payload().map_err(|e| store_unavailable(&e))?;
        for _ in 0..MAX_ATTEMPTS {
            let lifecycle = read_lifecycle(&**store, &stream).await?;
            let version = lifecycle.version;
            match decide(lifecycle) {
                Decision::Append => {}
                Decision::Stands(stored) => return Ok(Outcome::Stood(stored)),
                Decision::Refuse(problem) => return Err(problem),
            }
            // Events in the alert's stream were written after its existence
            // was checked; only an empty stream needs the log looked at.
            if version.is_none() && !self.raised.exists(alert_id).await? {
                return Err(not_found(&format!("no alert {alert_id} was raised")));
            }

            // Microseconds: what the log keeps, so a repeat answers the same time.
            let at = Utc::now().trunc_subsecs(6);
            let new = NewEvent::new(
                event.event_type(),
                event.schema_version(),
                at,
                payload.clone(),
            )
            .with_metadata(meta.metadata());
            let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            match store.append(&stream, expected, vec![new]).await {
                Ok(_) => return Ok(Outcome::Recorded(at)),
                // Someone else wrote to the stream since we read it: look again.
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(store_unavailable(&e)),
            }
        }
        Err(store_unavailable(&"the alert's stream kept changing"))
    }
}

/// Reads `alert-{id}` for its version, acknowledgement and resolution.
async fn read_lifecycle(store: &dyn EventStore, stream: &str) -> Result<Lifecycle, Problem> {
    let mut lifecycle = Lifecycle {
        version: None,
        acknowledged: None,
        resolved: None,
    };
    let mut from = 0;
    loop {
        let page = store
            .read_stream(stream, from, STREAM_PAGE)
            .await
            .map_err(|e| store_unavailable(&e))?;
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        lifecycle.version = Some(last.stream_version);
        for event in &page {
            match DomainEvent::from_json(
                &event.event_type,
                event.schema_version,
                event.payload.as_str(),
            ) {
                // The first of each stands; `record` never appends a second,
                // and if one got in some other way it changes nothing.
                Ok(DomainEvent::AlertAcknowledged(a)) if lifecycle.acknowledged.is_none() => {
                    lifecycle.acknowledged = Some(AcknowledgementAnswer::of(a, event.event_time));
                }
                Ok(DomainEvent::AlertResolved(r)) if lifecycle.resolved.is_none() => {
                    lifecycle.resolved = Some(ResolutionAnswer::of(r, event.event_time));
                }
                Ok(_) => {}
                // Same policy as the ingest: one unreadable event is reported,
                // not allowed to lock the alert.
                Err(error) => {
                    tracing::error!(%stream, position = event.position.0, %error, "skipping an unreadable event");
                }
            }
        }
    }
    Ok(lifecycle)
}
