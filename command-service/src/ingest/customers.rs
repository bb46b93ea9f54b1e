//! The hot customers: each one's aggregate state, stream version and recent
//! answers, behind its own lock, in a bounded LRU split into shards.
//!
//! The lock serialises one customer's transactions without a global lock.
//! An entry evicted while a request still holds it lives on for that request;
//! a second entry for the same customer may then appear, and the stream's
//! expected version (not the cache) keeps the two from both appending: the
//! loser reloads and decides again.

use super::answer::Answer;
use chrono::{DateTime, Utc};
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
    /// Answers older than this (by event time) were dropped to keep the
    /// newest; `None` while every recorded transaction's answer is here.
    forgotten_before: Option<DateTime<Utc>>,
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
            forgotten_before: None,
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
            self.forgotten_before = Some(self.forgotten_before.map_or(cutoff, |f| f.max(cutoff)));
        }
    }

    /// A repeat of a transaction older than this may have been forgotten and
    /// has to be looked for in the stream. `None`: nothing was forgotten,
    /// so a transaction id not remembered here was never recorded (the
    /// customer was loaded with every answer in its stream, and each append
    /// since added its own), however early its event time.
    pub fn forgotten_before(&self) -> Option<DateTime<Utc>> {
        self.forgotten_before
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

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Decision, Ruleset};

    fn remembered(minute: i64) -> Remembered {
        Remembered {
            fingerprint: Uuid::nil(),
            answer: Answer {
                transaction_id: format!("t{minute}"),
                decision: Decision::Approve,
                risk_score: 0.0,
                alerts: Vec::new(),
                ruleset_version: "test".into(),
                late: false,
                model_version: None,
                model_score: None,
            },
            at: DateTime::UNIX_EPOCH + chrono::Duration::minutes(minute),
        }
    }

    fn id(minute: i64) -> TransactionId {
        TransactionId::parse(&format!("t{minute}")).expect("id")
    }

    #[test]
    fn nothing_is_forgotten_until_answers_are_dropped_whatever_the_order() {
        let mut customer = Customer::unloaded(CustomerState::for_ruleset(&Ruleset::default()));
        // Out of event-time order, under the bound (4 + 4 / 4 = 5 kept).
        for minute in [30, 10, 20, 5, 1] {
            customer.remember(id(minute), remembered(minute), 4);
        }
        assert_eq!(customer.forgotten_before(), None);
        assert!(customer.answer(&id(1)).is_some());
    }

    #[test]
    fn dropping_the_oldest_answers_marks_where_memory_ends() {
        let mut customer = Customer::unloaded(CustomerState::for_ruleset(&Ruleset::default()));
        for minute in [1, 2, 3, 4, 5, 6] {
            customer.remember(id(minute), remembered(minute), 4);
        }
        // Six is over the bound: the newest four stay, from minute 3.
        let edge = DateTime::UNIX_EPOCH + chrono::Duration::minutes(3);
        assert_eq!(customer.forgotten_before(), Some(edge));
        assert!(customer.answer(&id(2)).is_none());
        assert!(customer.answer(&id(3)).is_some());
        // A later trim never moves the mark back.
        for minute in [7, 8, 9] {
            customer.remember(id(minute), remembered(minute), 4);
        }
        assert!(customer.forgotten_before() >= Some(edge));
        customer.reset(CustomerState::for_ruleset(&Ruleset::default()));
        assert_eq!(
            customer.forgotten_before(),
            None,
            "a reset reloads everything"
        );
    }
}
