//! The policy stream folded, and the active policies every decision reads.
//!
//! `LivePolicy` holds the `PolicyBook` (folded from the `ruleset` stream,
//! then the `policy` stream) and an `Arc<ActivePolicy>`: the live policy and
//! the shadow, if any. Decisions take the `Arc` once per request
//! (`current`); a change builds a new `ActivePolicy` and swaps the pointer,
//! so a request in flight finishes with what it took.

use crate::commands::events::{decode, read_from};
use domain::Ruleset;
use domain::policy::book::PolicyBook;
use event_store::{EventStore, RecordedEvent, StoreError};
use std::sync::{Arc, PoisonError, RwLock};

/// What decides now: the live policy, and the shadow that decides beside it.
#[derive(Debug, Clone)]
pub struct ActivePolicy {
    pub live: Arc<Ruleset>,
    pub shadow: Option<Arc<Ruleset>>,
}

impl ActivePolicy {
    fn of(book: &PolicyBook) -> Option<ActivePolicy> {
        let live = book.live()?.policy.clone();
        Some(ActivePolicy {
            live,
            shadow: book.shadow().map(|s| s.policy.clone()),
        })
    }

    fn same_as(&self, other: &ActivePolicy) -> bool {
        self.live.version == other.live.version
            && self.shadow.as_ref().map(|s| &s.version) == other.shadow.as_ref().map(|s| &s.version)
    }
}

pub struct LivePolicy {
    book: RwLock<PolicyBook>,
    active: RwLock<Arc<ActivePolicy>>,
}

impl LivePolicy {
    /// Folds the policy streams; `fallback` decides until a policy is live
    /// (the service publishes one at start, `commands::bootstrap`).
    pub async fn load(store: &dyn EventStore, fallback: Ruleset) -> Result<LivePolicy, StoreError> {
        let book = read_book(store).await?;
        let active = ActivePolicy::of(&book).unwrap_or(ActivePolicy {
            live: Arc::new(fallback),
            shadow: None,
        });
        Ok(LivePolicy {
            book: RwLock::new(book),
            active: RwLock::new(Arc::new(active)),
        })
    }

    /// The policies to decide one request with.
    pub fn current(&self) -> Arc<ActivePolicy> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A copy of the folded stream (for the lifecycle's answers).
    pub fn book(&self) -> PolicyBook {
        self.book
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the book with one folded afresh (after this replica's own
    /// lifecycle command, so it switches at once, not when the follower
    /// comes by).
    pub fn replace(&self, book: PolicyBook) {
        let mut held = self.book.write().unwrap_or_else(PoisonError::into_inner);
        // The follower may have folded further already; never go back.
        if book.policy_events_folded() >= held.policy_events_folded() {
            *held = book;
        }
        self.activate(&held);
    }

    /// Folds the policy events among `events` (the follower's runs of the
    /// global log); the rest are ignored.
    pub fn apply(&self, events: &[RecordedEvent]) {
        let mut changed = false;
        for e in events {
            if e.stream_id != domain::streams::POLICY && e.stream_id != domain::streams::RULESET {
                continue;
            }
            let Some(event) = decode(e) else { continue };
            let mut book = self.book.write().unwrap_or_else(PoisonError::into_inner);
            // A replica that folded this already (its own command) skips it.
            if e.stream_id == domain::streams::POLICY
                && book.policy_events_folded() > e.stream_version
            {
                continue;
            }
            book.apply(&event, e.event_time);
            changed = true;
        }
        if changed {
            let book = self.book.read().unwrap_or_else(PoisonError::into_inner);
            self.activate(&book);
        }
    }

    fn activate(&self, book: &PolicyBook) {
        let Some(next) = ActivePolicy::of(book) else {
            return;
        };
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        if !active.same_as(&next) {
            tracing::info!(
                live = %next.live.version,
                shadow = next.shadow.as_ref().map(|s| s.version.as_str()),
                "policy switched"
            );
            metrics::counter!("sentinel_policy_switches_total").increment(1);
            *active = Arc::new(next);
        }
    }
}

/// The `ruleset` stream (rulesets from before policies), then the `policy`
/// stream, folded.
pub async fn read_book(store: &dyn EventStore) -> Result<PolicyBook, StoreError> {
    let mut book = PolicyBook::default();
    for stream in [domain::streams::RULESET, domain::streams::POLICY] {
        let (events, _) = read_from(store, stream, 0).await?;
        for (event, at) in &events {
            book.apply(event, *at);
        }
    }
    Ok(book)
}
