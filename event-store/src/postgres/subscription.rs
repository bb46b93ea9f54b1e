//! `subscribe_all` on PostgreSQL: catch up with `read_all`, then sleep on
//! LISTEN until the writer's NOTIFY says something committed.
//!
//! The listener is registered before the first read, so a commit that lands
//! between "read found nothing" and "wait" still wakes us. While catching up
//! (full pages), the next page is fetched while the consumer works through
//! the current one.

use super::{NOTIFY_CHANNEL, PgReader, PgStoreOptions};
use crate::error::StoreError;
use crate::model::{Position, RecordedEvent};
use crate::store::EventSubscription;
use futures_util::StreamExt;
use sqlx::postgres::PgListener;
use std::collections::VecDeque;
use std::time::Duration;

type Page = Result<Vec<RecordedEvent>, StoreError>;

struct State {
    reader: PgReader,
    /// The read of the page after `buffer`, already under way.
    prefetch: Option<tokio::task::JoinHandle<Page>>,
    listener: PgListener,
    after: Position,
    buffer: VecDeque<RecordedEvent>,
    batch: usize,
    safety_net: Duration,
}

pub(super) async fn subscribe(
    reader: PgReader,
    after: Position,
    options: &PgStoreOptions,
) -> Result<EventSubscription, StoreError> {
    let mut listener = PgListener::connect_with(reader.pool()).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    let state = State {
        reader,
        prefetch: None,
        listener,
        after,
        buffer: VecDeque::new(),
        batch: options.subscription_batch.max(1),
        safety_net: options.subscription_safety_net,
    };
    Ok(futures_util::stream::unfold(state, next).boxed())
}

async fn next(mut s: State) -> Option<(Result<RecordedEvent, StoreError>, State)> {
    loop {
        if let Some(event) = s.buffer.pop_front() {
            s.after = event.position;
            return Some((Ok(event), s));
        }
        let page = match s.prefetch.take() {
            Some(handle) => handle
                .await
                .unwrap_or_else(|e| Err(StoreError::Backend(e.to_string()))),
            None => s.reader.read_all(s.after, s.batch).await,
        };
        match page {
            Ok(events) if !events.is_empty() => {
                if events.len() == s.batch
                    && let Some(last) = events.last().map(|e| e.position)
                {
                    let (reader, batch) = (s.reader.clone(), s.batch);
                    s.prefetch = Some(tokio::spawn(
                        async move { reader.read_all(last, batch).await },
                    ));
                }
                s.buffer.extend(events);
            }
            Ok(_) => {
                // Caught up: wait for a commit. A lost connection yields
                // Ok(None) and we simply read again; the timer is only a
                // safety net for a notification that never came.
                match tokio::time::timeout(s.safety_net, s.listener.try_recv()).await {
                    Ok(Ok(_)) | Err(_) => {}
                    Ok(Err(e)) => {
                        // The listener could not reconnect; say so, and try
                        // again on the next poll after a short pause.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return Some((Err(e.into()), s));
                    }
                }
            }
            Err(e) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Some((Err(e), s));
            }
        }
    }
}
