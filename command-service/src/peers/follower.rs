//! The follower: keeps [`LivePeers`] folded up to the head of the log,
//! from a subscription to the global log (`EventStore::subscribe_all`)
//! that starts where the book was folded through, and folds the policy
//! events it passes into [`LivePolicy`], so a promote on any replica
//! reaches this one within the follower's lag (well under a second when
//! it keeps up); the same for the `model` stream's models, which a policy
//! naming them needs. It begins by reading the model and policy streams
//! whole once, so a change made while the service was starting is not
//! missed.
//!
//! Events that arrive together are folded together (one write lock per
//! run). If the subscription fails or ends, the follower subscribes again
//! from the book's position after a growing pause (0.1 s doubling to 30 s;
//! back to 0.1 s once events flow): the service keeps answering meanwhile,
//! with a book that only grows staler, which the lag gauge shows. Every few
//! seconds it asks the store for its head and publishes the lag.
//!
//! The task ends when the [`Follower`] handle is dropped (with the service).

use super::live::LivePeers;
use crate::policy::LivePolicy;
use event_store::{EventStore, Position};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Most events folded under one write lock.
const RUN: usize = 1_024;

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// How often the lag gauge is brought up to date with the store's head.
const GAUGE_EVERY: Duration = Duration::from_secs(2);

/// The running follower; dropping it stops it.
pub struct Follower(tokio::task::JoinHandle<()>);

impl Follower {
    /// Starts following the log from `peers.as_of()`.
    pub fn start(
        peers: Arc<LivePeers>,
        policy: Arc<LivePolicy>,
        store: Arc<dyn EventStore>,
    ) -> Follower {
        Follower(tokio::spawn(follow(peers, policy, store)))
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn follow(peers: Arc<LivePeers>, policy: Arc<LivePolicy>, store: Arc<dyn EventStore>) {
    // Models first: the policies read next may name them.
    match crate::policy::live::read_models(&*store).await {
        Ok(models) => policy.replace_models(models),
        Err(error) => tracing::warn!(%error, "could not read the model stream again"),
    }
    match crate::policy::live::read_book(&*store).await {
        Ok(book) => policy.replace(book),
        Err(error) => tracing::warn!(%error, "could not read the policy streams again"),
    }
    let mut pause = FIRST_PAUSE;
    let mut gauges = tokio::time::interval(GAUGE_EVERY);
    gauges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let from = peers.as_of();
        match store.subscribe_all(Position(from)).await {
            Err(error) => {
                tracing::warn!(%error, from, "could not follow the log; trying again");
            }
            Ok(subscription) => {
                let mut runs = subscription.ready_chunks(RUN);
                loop {
                    tokio::select! {
                        run = runs.next() => {
                            let Some(run) = run else {
                                tracing::warn!(position = peers.as_of(), "the log subscription ended; following again");
                                break;
                            };
                            let failed = run.iter().find_map(|r| r.as_ref().err()).map(ToString::to_string);
                            let events: Vec<_> = run.into_iter().map_while(Result::ok).collect();
                            if !events.is_empty() {
                                policy.apply(&events);
                                peers.apply(&events);
                                pause = FIRST_PAUSE;
                            }
                            if let Some(error) = failed {
                                tracing::warn!(%error, position = peers.as_of(), "following the log failed; following again");
                                break;
                            }
                        }
                        _ = gauges.tick() => publish(&peers, &*store).await,
                    }
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

async fn publish(peers: &LivePeers, store: &dyn EventStore) {
    match store.head_position().await {
        Ok(head) => peers.publish_gauges(head.0),
        Err(error) => tracing::debug!(%error, "no head position for the lag gauge"),
    }
}
