//! `subscription { alertRaised(minPriority) }`: every alert as soon as it is
//! projected (within one poll interval of the feed, 200 ms by default), at
//! or above a priority. Served over WebSocket (graphql-transport-ws) at
//! `/graphql/ws` (and `/graphql`).

use super::common::{Priority, shared};
use super::nodes::Alert;
use async_graphql::{Context, Subscription as SubscriptionObject};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

#[derive(Default)]
pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Alerts as they are projected, of `minPriority` or more urgent
    /// (P0 is the most urgent; the default P3 passes every alert).
    async fn alert_raised(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Priority::P3")] min_priority: Priority,
    ) -> async_graphql::Result<impl Stream<Item = Alert> + use<>> {
        let (rx, closed) = shared(ctx)?.feed.subscribe();
        Ok(futures_util::stream::unfold(
            (rx, closed),
            move |(mut rx, mut closed)| async move {
                loop {
                    if *closed.borrow() {
                        return None;
                    }
                    tokio::select! {
                        next = rx.recv() => match next {
                            Ok(row) => {
                                if Priority::from_db(&row.priority) <= min_priority {
                                    return Some((Alert(row), (rx, closed)));
                                }
                            }
                            Err(RecvError::Lagged(missed)) => {
                                tracing::warn!(missed, "a slow alert subscriber missed alerts");
                            }
                            Err(RecvError::Closed) => return None,
                        },
                        changed = closed.changed() => {
                            if changed.is_err() {
                                return None;
                            }
                        }
                    }
                }
            },
        ))
    }
}
