//! [`LivePeers`]: the book and the directory with the position they were
//! folded through; how a run of events is folded in, and the start's fold
//! of the whole log.

use super::directory::Directory;
use crate::commands::events::decode;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::events::{EventPayload, TransactionLabeled, TransactionRecorded};
use domain::ids::MerchantId;
use domain::peers::{PeerBook, PeerChange, PeerSnapshot};
use domain::text::MerchantCategory;
use event_store::{EventStore, Position, RecordedEvent, StoreError};
use std::sync::{PoisonError, RwLock};

/// Events per page while loading at start.
const LOAD_PAGE: usize = 5_000;

/// The live book and the directory, as of the position folded through.
pub struct LivePeers {
    folded: RwLock<Folded>,
    directory: Directory,
}

struct Folded {
    book: PeerBook,
    as_of: u64,
}

impl LivePeers {
    pub fn new(max_merchants: usize, directory_capacity: usize) -> Self {
        LivePeers {
            folded: RwLock::new(Folded {
                book: PeerBook::new(max_merchants),
                as_of: 0,
            }),
            directory: Directory::new(directory_capacity),
        }
    }

    /// A book folded from the whole log up to its head now.
    pub async fn load(
        store: &dyn EventStore,
        max_merchants: usize,
        directory_capacity: usize,
    ) -> Result<LivePeers, StoreError> {
        let started = std::time::Instant::now();
        let peers = LivePeers::new(max_merchants, directory_capacity);
        let head = store.head_position().await?;
        let mut events = 0usize;
        while peers.as_of() < head.0 {
            let page = store.read_all(Position(peers.as_of()), LOAD_PAGE).await?;
            if page.is_empty() {
                break;
            }
            events += page.len();
            peers.apply(&page);
        }
        tracing::info!(
            events,
            as_of = peers.as_of(),
            merchants = peers.merchant_count(),
            transactions = peers.directory.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "merchant and category counts folded from the log"
        );
        peers.publish_gauges(head.0);
        Ok(peers)
    }

    /// The position folded through.
    pub fn as_of(&self) -> u64 {
        self.read().as_of
    }

    /// Merchants in the book now.
    pub fn merchant_count(&self) -> usize {
        self.read().book.merchant_count()
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// What the book says of a transaction at `at` with this merchant and
    /// category, stamped with the position folded through.
    pub fn snapshot(
        &self,
        merchant: Option<&MerchantId>,
        category: Option<&MerchantCategory>,
        at: DateTime<Utc>,
    ) -> PeerSnapshot {
        let folded = self.read();
        folded.book.snapshot(folded.as_of, merchant, category, at)
    }

    /// Folds a run of events read from the log in position order: decoded
    /// (only the two types that count) outside the lock, applied under one
    /// write lock, `as_of` moved to the last one's position.
    pub fn apply(&self, events: &[RecordedEvent]) {
        let Some(last) = events.last().map(|e| e.position.0) else {
            return;
        };
        let mut changes = Vec::new();
        for e in events {
            if e.event_type != TransactionRecorded::EVENT_TYPE
                && e.event_type != TransactionLabeled::EVENT_TYPE
            {
                continue;
            }
            let Some(event) = decode(e) else { continue };
            if let DomainEvent::TransactionRecorded(r) = &event {
                self.directory
                    .insert(r.transaction.transaction_id.as_str(), e.position.0);
            }
            changes.extend(PeerChange::of(&event));
        }
        let mut folded = self.folded.write().unwrap_or_else(PoisonError::into_inner);
        for change in &changes {
            folded.book.apply_change(change);
        }
        folded.as_of = folded.as_of.max(last);
    }

    /// `sentinel_peer_book_merchants` and `sentinel_peer_follower_lag_positions`
    /// (how far the book is behind `head`).
    pub fn publish_gauges(&self, head: u64) {
        let (merchants, as_of) = {
            let folded = self.read();
            (folded.book.merchant_count(), folded.as_of)
        };
        metrics::gauge!("sentinel_peer_book_merchants").set(merchants as f64);
        metrics::gauge!("sentinel_peer_follower_lag_positions")
            .set(head.saturating_sub(as_of) as f64);
        metrics::gauge!("sentinel_label_directory_transactions").set(self.directory.len() as f64);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Folded> {
        self.folded.read().unwrap_or_else(PoisonError::into_inner)
    }
}
