//! How an alert is known to exist (ADR 0003): an `alert-{id}` stream that
//! has events names an alert that existed when they were written; otherwise
//! `RaisedAlerts` looks for its `AlertRaised` in the global log.

use super::error::CommandError;
use domain::events::{AlertRaised, EventPayload};
use domain::ids::AlertId;
use event_store::{EventStore, Position, StoreError};
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How long one request may spend catching `RaisedAlerts` up with the log
/// (after a restart it reads the whole log once); past it the client gets
/// 503 with `Retry-After`, and the next request carries on from there.
const CATCH_UP_BUDGET: Duration = Duration::from_secs(10);

/// Events per page when reading the global log.
const PAGE: usize = 2000;

/// The ids of raised alerts, learned from the global log on demand.
///
/// `AlertRaised` is written to the customer's stream, which an analyst's
/// command cannot name, so existence is looked up here: an id seen once is
/// known for good; an unknown id makes the set catch up with the log up to
/// its head at that moment. An alert's id reaches a client only after its
/// `AlertRaised` is committed, and the log's order is gap-safe (ADR 0001),
/// so reading up to the head finds every alert a client can know of.
/// Nothing runs in the background: the first lookup after a start reads
/// the whole log once (in `CATCH_UP_BUDGET` slices), later ones only what
/// is new. Memory: one UUID and one position per alert. The position of
/// its `AlertRaised` leads to the alert's transaction (an analyst's verdict
/// is a label for it, `super::alerts`).
pub struct RaisedAlerts {
    store: Arc<dyn EventStore>,
    known: tokio::sync::Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Each raised alert, with the position of its `AlertRaised`.
    ids: HashMap<AlertId, Position>,
    /// Everything up to here has been looked at.
    read_to: Position,
}

/// The one field of `AlertRaised` this needs, parsed without the rest.
#[derive(Deserialize)]
struct RaisedId {
    alert_id: AlertId,
}

impl RaisedAlerts {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        RaisedAlerts {
            store,
            known: tokio::sync::Mutex::new(Known::default()),
        }
    }

    /// `contains` within `CATCH_UP_BUDGET`; past it, `CatchingUp`.
    pub async fn exists(&self, alert_id: AlertId) -> Result<bool, CommandError<Infallible>> {
        Ok(self.raised_at(alert_id).await?.is_some())
    }

    /// Where the alert's `AlertRaised` is in the log (`None`: never raised),
    /// within `CATCH_UP_BUDGET`; past it, `CatchingUp`.
    pub async fn raised_at(
        &self,
        alert_id: AlertId,
    ) -> Result<Option<Position>, CommandError<Infallible>> {
        match tokio::time::timeout(CATCH_UP_BUDGET, self.position(alert_id)).await {
            Ok(Ok(known)) => Ok(known),
            Ok(Err(e)) => Err(CommandError::Store(e.to_string())),
            Err(_) => Err(CommandError::CatchingUp),
        }
    }

    /// Whether an `AlertRaised` with this id is in the log. Cancel-safe:
    /// each page is folded in whole between awaits, so a request that times
    /// out leaves its progress for the next.
    pub async fn contains(&self, alert_id: AlertId) -> Result<bool, StoreError> {
        Ok(self.position(alert_id).await?.is_some())
    }

    /// The position of the alert's `AlertRaised`, reading the log up to its
    /// head if the alert is not known yet. Cancel-safe, like `contains`.
    pub async fn position(&self, alert_id: AlertId) -> Result<Option<Position>, StoreError> {
        let mut known = self.known.lock().await;
        if let Some(at) = known.ids.get(&alert_id) {
            return Ok(Some(*at));
        }
        let head = self.store.head_position().await?;
        while known.read_to < head {
            let page = self.store.read_all(known.read_to, PAGE).await?;
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            for event in page
                .iter()
                .filter(|e| e.event_type == AlertRaised::EVENT_TYPE)
            {
                match event.payload.parse::<RaisedId>() {
                    Ok(raised) => {
                        known.ids.insert(raised.alert_id, event.position);
                    }
                    Err(error) => {
                        tracing::error!(position = event.position.0, %error, "unreadable AlertRaised");
                    }
                }
            }
            known.read_to = last;
        }
        Ok(known.ids.get(&alert_id).copied())
    }
}
