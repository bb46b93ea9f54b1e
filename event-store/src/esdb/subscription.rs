//! `subscribe_all` on KurrentDB: a catch-up subscription to `$all` from a
//! position, filtered server-side to non-system event types. The server
//! delivers every event after the position, then live events as they are
//! indexed (it pushes them: no polling), in `$all` order.
//!
//! Errors arrive as `StoreError::Backend` items and the stream goes on: the
//! client remembers the last event it delivered and, on the next poll,
//! subscribes again from there (after a short pause), so nothing is skipped
//! or repeated. Events at or before the last one delivered are dropped as a
//! second line of defence.

use super::envelope;
use crate::error::StoreError;
use crate::model::{Position, RecordedEvent};
use crate::store::EventSubscription;
use crate::upcast::Upcasters;
use futures_util::StreamExt;
use kurrentdb::{Client, ResolvedEvent, SubscribeToAllOptions, Subscription, SubscriptionEvent};
use std::sync::Arc;
use std::time::Duration;

/// The pause before subscribing again after an error.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

struct State {
    subscription: Subscription,
    upcasters: Arc<Upcasters>,
    /// The last position delivered (or the starting point).
    after: Position,
    /// An event that arrived while confirming the subscription.
    pending: Option<ResolvedEvent>,
    /// The previous poll ended in an error: pause before going on.
    failed: bool,
}

/// Subscribes and waits for the server to confirm, so a server that cannot
/// be reached is an error here rather than the stream's first item.
pub(super) async fn subscribe(
    client: &Client,
    upcasters: Arc<Upcasters>,
    after: Position,
) -> Result<EventSubscription, StoreError> {
    let options = SubscribeToAllOptions::default()
        .position(envelope::all_from(after))
        .filter(envelope::user_events_only());
    let mut subscription = client.subscribe_to_all(&options).await;
    let pending = loop {
        match subscription.next_subscription_event().await {
            Ok(SubscriptionEvent::Confirmed(_)) => break None,
            // A server that does not confirm first: keep what it sent.
            Ok(SubscriptionEvent::EventAppeared(event)) => break Some(event),
            Ok(_) => continue,
            Err(e) => return Err(super::backend_error("subscribe_all", &e)),
        }
    };
    let state = State {
        subscription,
        upcasters,
        after,
        pending,
        failed: false,
    };
    Ok(futures_util::stream::unfold(state, next).boxed())
}

async fn next(mut s: State) -> Option<(Result<RecordedEvent, StoreError>, State)> {
    loop {
        if s.failed {
            tokio::time::sleep(RETRY_PAUSE).await;
            s.failed = false;
        }
        let resolved = match s.pending.take() {
            Some(resolved) => resolved,
            None => match s.subscription.next_subscription_event().await {
                Ok(SubscriptionEvent::EventAppeared(resolved)) => resolved,
                Ok(_) => continue, // confirmations, checkpoints, caught-up notices
                Err(e) => {
                    tracing::warn!(error = %e, after = %s.after, "KurrentDB subscription to $all failed; resubscribing");
                    s.failed = true;
                    return Some((Err(super::backend_error("subscribe_all", &e)), s));
                }
            },
        };
        let Some(event) = envelope::original(&resolved) else {
            continue;
        };
        let Some(position) = envelope::position_of(event) else {
            return Some((Err(envelope::no_position(event)), s));
        };
        if position <= s.after {
            continue;
        }
        s.after = position;
        if envelope::is_system(event) {
            continue;
        }
        let decoded = envelope::decode(event).map(|e| s.upcasters.apply(e));
        return Some((decoded, s));
    }
}
