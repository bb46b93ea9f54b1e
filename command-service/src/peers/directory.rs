//! The transaction directory: transaction id -> the log position of its
//! `TransactionRecorded`, so a label (which names only a transaction id)
//! can be given its transaction's customer, merchant, category and time
//! (`TransactionLabeled` v2) by reading one event.
//!
//! Filled by the log follower (`super::follower`, every recorded
//! transaction, from position 0 at start) and by the ingest right after its
//! own append (so a label sent right after its transaction finds it, before
//! the follower has caught up).
//!
//! Bounded: two generations of hash maps keyed by a 64-bit hash of the id
//! (the id itself is not kept). When the current generation is full it
//! becomes the previous one and the oldest is cleared and reused, so the
//! newest `per_generation` ids are always known and at most twice that.
//! `per_generation` is the largest 7/8 * 2^k not over half the configured
//! capacity (917,504 for the default 2,000,000), which is exactly a full
//! table of 2^k slots: a slot is 17 bytes (8 hash, 8 position, 1 control
//! byte), about 19.4 bytes per id, at most 2 * 2^20 * 17 B = 34 MiB for the
//! default. A hash collision can only point at the wrong event, and the
//! reader checks the event it finds (`crate::commands::labels`).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Mutex, PoisonError};

/// The default capacity (`SENTINEL_LABEL_DIRECTORY`).
pub const DEFAULT_CAPACITY: usize = 2_000_000;

/// Keys are hashes already: the table uses them as they are.
#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; kept total all the same.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Table = HashMap<u64, u64, BuildHasherDefault<AsIs>>;

pub struct Directory {
    hasher: RandomState,
    per_generation: usize,
    tables: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: Table,
    previous: Table,
}

impl Directory {
    /// Room for about `capacity` ids (see the header for the rounding).
    pub fn new(capacity: usize) -> Self {
        Directory {
            hasher: RandomState::new(),
            per_generation: per_generation(capacity),
            tables: Mutex::new(Generations::default()),
        }
    }

    fn key(&self, transaction_id: &str) -> u64 {
        self.hasher.hash_one(transaction_id)
    }

    /// Remembers where the transaction's `TransactionRecorded` is.
    pub fn insert(&self, transaction_id: &str, position: u64) {
        let key = self.key(transaction_id);
        let mut t = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if t.current.len() >= self.per_generation && !t.current.contains_key(&key) {
            let Generations { current, previous } = &mut *t;
            std::mem::swap(current, previous);
            // The oldest generation's table, emptied, keeps its allocation.
            current.clear();
        }
        t.current.insert(key, position);
    }

    /// Where the transaction's `TransactionRecorded` probably is (check it).
    pub fn get(&self, transaction_id: &str) -> Option<u64> {
        let key = self.key(transaction_id);
        let t = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        t.current
            .get(&key)
            .or_else(|| t.previous.get(&key))
            .copied()
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        let t = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        t.current.len() + t.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The largest 7/8 * 2^k (a full table of 2^k slots) not over half of
/// `capacity`; at least 7.
fn per_generation(capacity: usize) -> usize {
    let half = (capacity / 2).max(7);
    let mut slots: usize = 8;
    while (slots * 2) / 8 * 7 <= half {
        slots *= 2;
    }
    slots / 8 * 7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_full_tables() {
        assert_eq!(per_generation(2_000_000), 917_504);
        assert_eq!(per_generation(0), 7);
        assert_eq!(per_generation(16), 7);
        assert_eq!(per_generation(28), 14);
    }

    #[test]
    fn keeps_the_newest_and_forgets_the_oldest() {
        let d = Directory::new(28); // 14 per generation
        for i in 0..100u64 {
            d.insert(&format!("t-{i}"), i + 1);
        }
        assert!(d.len() <= 28);
        // The newest generation at least is whole.
        for i in 86..100u64 {
            assert_eq!(d.get(&format!("t-{i}")), Some(i + 1));
        }
        assert_eq!(d.get("t-0"), None);
        // Inserting again what is known moves nothing out.
        let before = d.len();
        d.insert("t-99", 100);
        assert_eq!(d.len(), before);
    }
}
