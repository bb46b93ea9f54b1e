//! The task that publishes the live model's drift gauges
//! (`super::drift`) every `PUBLISH_EVERY`, and retires the gauges of a
//! model that stopped deciding.

use super::drift::{DriftWindow, PUBLISH_EVERY};
use super::live::LivePolicy;
use std::sync::Arc;

/// Publishes the live model's drift every [`PUBLISH_EVERY`] until dropped.
pub struct DriftPublisher(tokio::task::JoinHandle<()>);

impl DriftPublisher {
    pub fn start(policy: Arc<LivePolicy>) -> DriftPublisher {
        DriftPublisher(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PUBLISH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last: Option<Arc<DriftWindow>> = None;
            loop {
                tick.tick().await;
                let now = policy.current().drift.clone();
                if let Some(old) = &last
                    && now.as_ref().is_none_or(|n| !Arc::ptr_eq(n, old))
                {
                    old.retire();
                }
                if let Some(window) = &now {
                    window.publish();
                }
                last = now;
            }
        }))
    }
}

impl Drop for DriftPublisher {
    fn drop(&mut self) {
        self.0.abort();
    }
}
