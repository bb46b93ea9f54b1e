//! Rejected input is never dropped: it is appended whole, with every reason,
//! to the `quarantine` stream, and the client is told its quarantine id.
//! Its personal fields are sealed first (`super::personal::seal_input`):
//! refused input is no exception to "no plaintext IP in the database".

use super::personal::seal_input;
use crate::commands::events::new_event;
use domain::DomainEvent;
use domain::events::InputQuarantined;
use domain::ids::QuarantineId;
use domain::ingest::FieldError;
use event_store::postgres::keys::KeyRing;
use event_store::{EventMetadata, EventStore, ExpectedVersion};
use std::sync::Arc;
use uuid::Uuid;

/// Bodies over this are kept as their first bytes plus a note: a 100 MB
/// body sent to a 1 MB limit must not become a 100 MB event.
const MAX_KEPT_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct Quarantine {
    store: Arc<dyn EventStore>,
    keys: Arc<KeyRing>,
}

/// What is known of one rejected input.
pub struct Rejected<'a> {
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    pub batch_index: Option<u32>,
    pub reasons: Vec<FieldError>,
}

impl Quarantine {
    pub fn new(store: Arc<dyn EventStore>, keys: Arc<KeyRing>) -> Self {
        Quarantine { store, keys }
    }

    /// Appends the rejected input; its id, or why it could not be kept.
    pub async fn record(
        &self,
        rejected: Rejected<'_>,
        metadata: EventMetadata,
    ) -> Result<QuarantineId, String> {
        let id = QuarantineId(Uuid::now_v7());
        for reason in &rejected.reasons {
            metrics::counter!("sentinel_quarantined_total", "reason" => reason.reason.code())
                .increment(1);
        }
        let complete = rejected.body.len() <= MAX_KEPT_BYTES;
        let sealed = seal_input(&self.keys, kept_text(rejected.body), complete)
            .await
            .map_err(|e| e.to_string())?;
        let event = DomainEvent::from(InputQuarantined {
            quarantine_id: id,
            raw_body: sealed.raw_body,
            content_type: rejected.content_type.map(str::to_owned),
            batch_index: rejected.batch_index,
            reasons: rejected.reasons,
            sealed_body: sealed.sealed_body,
            sealed_with: sealed.sealed_with,
        });
        let new = new_event(&event, chrono::Utc::now(), metadata).map_err(|e| e.to_string())?;
        self.store
            .append(domain::streams::QUARANTINE, ExpectedVersion::Any, vec![new])
            .await
            .map_err(|e| e.to_string())?;
        Ok(id)
    }
}

fn kept_text(body: &[u8]) -> String {
    if body.len() <= MAX_KEPT_BYTES {
        return String::from_utf8_lossy(body).into_owned();
    }
    format!(
        "{}... [{} more bytes not kept]",
        String::from_utf8_lossy(&body[..MAX_KEPT_BYTES]),
        body.len() - MAX_KEPT_BYTES
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_small_bodies_whole_and_cuts_huge_ones() {
        assert_eq!(kept_text(b"{\"a\":1}"), "{\"a\":1}");
        assert_eq!(kept_text(&[0xff, b'x']), "\u{fffd}x");
        let huge = vec![b'a'; MAX_KEPT_BYTES + 10];
        assert!(kept_text(&huge).ends_with("[10 more bytes not kept]"));
    }
}
