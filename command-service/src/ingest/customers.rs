//! The hot customers: each one's aggregate state, stream version and recent
//! answers, behind its own lock, in a bounded LRU split into shards.
//!
//! The lock serialises one customer's transactions without a global lock.
//! An entry evicted while a request still holds it lives on for that request;
//! a second entry for the same customer may then appear, and the stream's
//! expected version (not the cache) keeps the two from both appending: the
//! loser reloads and decides again.

use super::answer::Answer;
use chrono::{DateTime, Duration, Utc};
use domain::CustomerState;
use domain::ids::{CustomerId, TransactionId};
use event_store::StreamVersion;
use lru::LruCache;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const SHARDS: usize = 64;

/// What the command side keeps about one customer.
pub struct Customer {
    /// False until the state was rebuilt from the stream, and again after a
    /// failed append (the log is then the only truth).
    pub loaded: bool,
    pub state: CustomerState,
    /// Version of the stream's last event; `None` before the first.
    pub version: Option<StreamVersion>,
    answers: HashMap<TransactionId, Remembered>,
}

/// A decided transaction, for repeats: its fingerprint tells a true repeat
/// (same payload) from a clash (same id, other payload).
#[derive(Clone)]
pub struct Remembered {
    pub fingerprint: Uuid,
    pub answer: Answer,
    pub at: DateTime<Utc>,
}

impl Customer {
    pub fn unloaded(state: CustomerState) -> Self {
        Customer {
            loaded: false,
            state,
            version: None,
            answers: HashMap::new(),
        }
    }

    pub fn reset(&mut self, state: CustomerState) {
        *self = Customer::unloaded(state);
    }

    pub fn answer(&self, transaction: &TransactionId) -> Option<&Remembered> {
        self.answers.get(transaction)
    }

    /// Remembers an answer; keeps at most `max` of the newest (by event time).
    pub fn remember(&mut self, transaction: TransactionId, remembered: Remembered, max: usize) {
        self.answers.insert(transaction, remembered);
        if self.answers.len() > max + max / 4 {
            let mut times: Vec<DateTime<Utc>> = self.answers.values().map(|r| r.at).collect();
            times.sort_unstable();
            let cutoff = times[times.len() - max];
            self.answers.retain(|_, r| r.at >= cutoff);
        }
    }

    /// The oldest event time whose answer is surely remembered: a repeat of
    /// an older transaction has to be looked for in the stream.
    pub fn remembers_since(&self, retention: Duration) -> Option<DateTime<Utc>> {
        let oldest_kept = self.answers.values().map(|r| r.at).min();
        let newest = self.state.newest_event_time()?;
        Some(oldest_kept.map_or(newest - retention, |o| o.max(newest - retention)))
    }
}

pub struct Customers {
    shards: Vec<Mutex<LruCache<CustomerId, Arc<tokio::sync::Mutex<Customer>>>>>,
    hasher: RandomState,
}

impl Customers {
    /// Room for about `capacity` customers.
    pub fn new(capacity: usize) -> Self {
        let per_shard = NonZeroUsize::new(capacity.div_ceil(SHARDS)).unwrap_or(NonZeroUsize::MIN);
        Customers {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// The customer's entry, made (unloaded) if it is not cached.
    pub fn entry(
        &self,
        id: &CustomerId,
        fresh: impl FnOnce() -> Customer,
    ) -> Arc<tokio::sync::Mutex<Customer>> {
        let shard = (self.hasher.hash_one(id) as usize) % SHARDS;
        // A poisoned shard only means another thread panicked mid-update of
        // an LRU list; the map itself is still usable.
        let mut cache = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get_or_insert(id.clone(), || Arc::new(tokio::sync::Mutex::new(fresh())))
            .clone()
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
