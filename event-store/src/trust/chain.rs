//! The hash chain over the global log (PostgreSQL backend): what each
//! event's hash covers, byte for byte, so the writer that computes it and
//! any verifier (ours, or an auditor's script: docs/trust.md spells the
//! encoding out) agree.
//!
//! Two steps per event, SHA-256 both:
//! - `content = H("sentinel/event/v1" 0x00, event id, stream id, type,
//!   schema version, event time, correlation id, causation id, traceparent,
//!   payload bytes)`: everything the appender chose. It needs nothing the
//!   writer only learns under its lock, so it is computed before (by the
//!   calling task, in parallel with other callers).
//! - `hash = H("sentinel/link/v1" 0x00, prev hash, position, stream version,
//!   recorded time, content)`: where and when the log put it, and what came
//!   before. 128 bytes: the writer's share under the lock is one short hash
//!   per event.
//!
//! Integers are big-endian; strings and the payload are length-prefixed;
//! optional fields are a 0 byte (absent) or 1 and the value; times are
//! microseconds since the Unix epoch (what PostgreSQL stores).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The predecessor of the first chained event.
pub const GENESIS: Hash = [0; 32];

const CONTENT_TAG: &[u8] = b"sentinel/event/v1\0";
const LINK_TAG: &[u8] = b"sentinel/link/v1\0";

/// What the appender chose about an event: the part of the chain that is
/// known before the writer takes its lock.
#[derive(Debug, Clone, Copy)]
pub struct EventContent<'a> {
    pub event_id: Uuid,
    pub stream_id: &'a str,
    pub event_type: &'a str,
    pub schema_version: u32,
    /// Microseconds since the Unix epoch, as stored.
    pub event_time_micros: i64,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub traceparent: Option<&'a str>,
    /// The payload's exact bytes, as stored (the `json` column keeps them).
    pub payload: &'a [u8],
}

impl EventContent<'_> {
    pub fn digest(&self) -> Hash {
        let mut h = Sha256::new();
        h.update(CONTENT_TAG);
        h.update(self.event_id.as_bytes());
        put_str(&mut h, self.stream_id);
        put_str(&mut h, self.event_type);
        h.update(self.schema_version.to_be_bytes());
        h.update(self.event_time_micros.to_be_bytes());
        put_uuid(&mut h, self.correlation_id);
        put_uuid(&mut h, self.causation_id);
        match self.traceparent {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                put_str(&mut h, s);
            }
        }
        h.update((self.payload.len() as u64).to_be_bytes());
        h.update(self.payload);
        h.finalize().into()
    }
}

/// Where and when the log put an event, and the hash of the event before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub prev_hash: Hash,
    pub position: u64,
    pub stream_version: u64,
    /// Microseconds since the Unix epoch, as stored.
    pub recorded_time_micros: i64,
}

impl Link {
    /// The event's hash: this link over its content digest.
    pub fn hash(&self, content: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update(LINK_TAG);
        h.update(self.prev_hash);
        h.update(self.position.to_be_bytes());
        h.update(self.stream_version.to_be_bytes());
        h.update(self.recorded_time_micros.to_be_bytes());
        h.update(content);
        h.finalize().into()
    }
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u32).to_be_bytes());
    h.update(s.as_bytes());
}

fn put_uuid(h: &mut Sha256, id: Option<Uuid>) {
    match id {
        None => h.update([0u8]),
        Some(id) => {
            h.update([1u8]);
            h.update(id.as_bytes());
        }
    }
}

/// `t` cut to whole microseconds: what PostgreSQL keeps of it. The writer
/// stores the cut value, so what is hashed is exactly what is read back.
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Reads a hash from a database value (`None` unless exactly 32 bytes).
pub fn hash_from_slice(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(payload: &[u8]) -> EventContent<'_> {
        EventContent {
            event_id: Uuid::from_u128(7),
            stream_id: "customer-1",
            event_type: "TransactionRecorded",
            schema_version: 2,
            event_time_micros: 1_700_000_000_000_000,
            correlation_id: None,
            causation_id: Some(Uuid::from_u128(9)),
            traceparent: Some("00-abc-def-01"),
            payload,
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = content(br#"{"a":1}"#).digest();
        assert_ne!(base, content(br#"{"a":2}"#).digest());
        assert_ne!(base, content(br#"{"a": 1}"#).digest(), "bytes, not JSON");
        let mut moved = content(br#"{"a":1}"#);
        moved.stream_id = "customer-2";
        assert_ne!(base, moved.digest());
        let mut untraced = content(br#"{"a":1}"#);
        untraced.traceparent = None;
        assert_ne!(base, untraced.digest());

        let link = Link {
            prev_hash: GENESIS,
            position: 1,
            stream_version: 0,
            recorded_time_micros: 5,
        };
        let h = link.hash(&base);
        assert_ne!(
            h,
            Link {
                position: 2,
                ..link
            }
            .hash(&base)
        );
        assert_ne!(
            h,
            Link {
                stream_version: 1,
                ..link
            }
            .hash(&base)
        );
        assert_ne!(
            h,
            Link {
                recorded_time_micros: 6,
                ..link
            }
            .hash(&base)
        );
        assert_ne!(
            h,
            Link {
                prev_hash: [1; 32],
                ..link
            }
            .hash(&base)
        );
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        // "ab" + "c" and "a" + "bc" must not collide.
        let mut one = content(b"{}");
        one.stream_id = "ab";
        one.event_type = "c";
        let mut two = content(b"{}");
        two.stream_id = "a";
        two.event_type = "bc";
        assert_ne!(one.digest(), two.digest());
    }
}
