//! The verifier behind `fraudctl verify`: recomputes the hash chain of the
//! PostgreSQL log from its rows and checks every signed checkpoint, and
//! names the first position that does not verify, and why.
//!
//! It reads the log as it stands when it starts, in pages of position
//! ranges, several at a time on their own tasks and connections; each task
//! reads its range as a binary COPY, decodes the tuples where they lie in
//! the receive buffers and recomputes their hashes, so reading and hashing
//! spread over every core. One pass in position order then checks that each
//! event chains onto the one before it and that each checkpoint verifies. Only what
//! the log holds is trusted, except the public keys the caller passes (with
//! none, each checkpoint is checked against the key it names, which proves
//! it intact but not who signed it).

use crate::error::StoreError;
use crate::trust::chain::{self, EventContent, GENESIS, Hash, Link};
use crate::trust::{Checkpoint, SignatureProblem};
use ed25519_dalek::VerifyingKey;
use futures_util::StreamExt;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Start at this position (the event before it is taken as it stands).
    pub from: Option<u64>,
    /// The public keys checkpoints must be signed with; empty: any key the
    /// checkpoints name (integrity only).
    pub trusted: Vec<VerifyingKey>,
    /// Events per page (default 10,000).
    pub page: Option<usize>,
}

/// Why a position does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The event's content or hashes were changed.
    Edited,
    /// An event (or a checkpoint's event) is not in the log.
    Missing,
    /// An event is not where it was written.
    Reordered,
    /// A checkpoint's signature does not verify (forged or altered).
    Signature,
    /// A checkpoint covers events past the end of the log.
    Truncated,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureKind::Edited => "edited",
            FailureKind::Missing => "missing",
            FailureKind::Reordered => "reordered",
            FailureKind::Signature => "signature",
            FailureKind::Truncated => "truncated",
        })
    }
}

/// The first position that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub position: u64,
    pub kind: FailureKind,
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "position {}: {}: {}",
            self.position, self.kind, self.detail
        )
    }
}

/// What was checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Chained events whose hashes were recomputed and matched.
    pub verified: u64,
    /// Events older than the chain (written before its migration): read,
    /// not protected.
    pub before_chain: u64,
    /// The last position written before the chain existed.
    pub chain_starts_after: u64,
    /// Checkpoints whose signature and chain hash verified.
    pub checkpoints: u64,
    /// The newest event read.
    pub last_position: u64,
    /// The newest checkpoint verified.
    pub last_checkpoint: Option<u64>,
}

/// The verdict: everything verified, or the first failure (with what was
/// verified before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified(Summary),
    Failed { failure: Failure, summary: Summary },
}

/// One event as the ordered pass needs it: where it is, its stored hashes,
/// and whether its own hash matches its content (checked on the page's task).
struct Checked {
    position: u64,
    /// Where it is and what it is, kept only for an event whose content
    /// does not match its hash (the failure names them); empty otherwise.
    what: Option<(String, String)>,
    prev_hash: Option<Hash>,
    hash: Option<Hash>,
    /// Whether `hash` is what the content and the stored `prev_hash`
    /// give (false when either hash is missing or malformed).
    intact: bool,
}

/// The columns a page reads, in the order [`check_tuple`] decodes them.
const COLUMNS: usize = 14;

/// PostgreSQL's binary COPY signature (the first 11 bytes of the stream).
const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), which
/// binary `timestamptz` values count from.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Decodes one tuple of a page's binary COPY (the fields borrowed where
/// they lie: the payload is hashed in the receive buffer, never copied) and
/// recomputes its hash.
fn check_tuple(fields: &[Option<&[u8]>; COLUMNS]) -> Result<Checked, StoreError> {
    let position = int8(fields[0]).unwrap_or(0) as u64;
    let malformed = |what: &str| StoreError::Decode {
        position,
        message: format!("verify read a malformed {what} column"),
    };
    if fields[0].is_none() {
        return Err(malformed("position"));
    }
    let text = |i: usize, what: &str| {
        fields[i]
            .map(std::str::from_utf8)
            .transpose()
            .map_err(|_| malformed(what))
    };
    let uuid = |i: usize, what: &str| {
        fields[i]
            .map(Uuid::from_slice)
            .transpose()
            .map_err(|_| malformed(what))
    };
    let stream_id = text(2, "stream_id")?.ok_or_else(|| malformed("stream_id"))?;
    let event_type = text(4, "event_type")?.ok_or_else(|| malformed("event_type"))?;
    let prev_hash = fields[12].and_then(chain::hash_from_slice);
    let hash = fields[13].and_then(chain::hash_from_slice);
    let intact = match (&prev_hash, &hash) {
        (Some(prev), Some(hash)) => {
            let content = EventContent {
                event_id: uuid(1, "event_id")?.ok_or_else(|| malformed("event_id"))?,
                stream_id,
                event_type,
                schema_version: int4(fields[5]).ok_or_else(|| malformed("schema_version"))? as u32,
                event_time_micros: timestamp(fields[6]).ok_or_else(|| malformed("event_time"))?,
                correlation_id: uuid(8, "correlation_id")?,
                causation_id: uuid(9, "causation_id")?,
                traceparent: text(10, "traceparent")?,
                payload: fields[11].ok_or_else(|| malformed("payload"))?,
            }
            .digest();
            let link = Link {
                prev_hash: *prev,
                position,
                stream_version: int8(fields[3]).ok_or_else(|| malformed("stream_version"))? as u64,
                recorded_time_micros: timestamp(fields[7])
                    .ok_or_else(|| malformed("recorded_time"))?,
            };
            link.hash(&content) == *hash
        }
        _ => false,
    };
    Ok(Checked {
        position,
        what: (!intact).then(|| (stream_id.to_owned(), event_type.to_owned())),
        prev_hash,
        hash,
        intact,
    })
}

fn int8(field: Option<&[u8]>) -> Option<i64> {
    Some(i64::from_be_bytes(field?.try_into().ok()?))
}

fn int4(field: Option<&[u8]>) -> Option<i32> {
    Some(i32::from_be_bytes(field?.try_into().ok()?))
}

/// A binary `timestamptz` as microseconds since the Unix epoch.
fn timestamp(field: Option<&[u8]>) -> Option<i64> {
    int8(field)?.checked_add(PG_EPOCH_MICROS)
}

/// Reads PostgreSQL's binary COPY format (the `COPY ... TO STDOUT (FORMAT
/// binary)` stream: a header, then per tuple a 16-bit field count and each
/// field as a 32-bit length, -1 for NULL, and its bytes; a count of -1
/// ends it) as its chunks arrive, whatever their boundaries.
#[derive(Default)]
struct CopyReader {
    header_read: bool,
    ended: bool,
    /// The start of a tuple cut by a chunk's end.
    pending: Vec<u8>,
}

impl CopyReader {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Checked>) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            let used = self.read(chunk, out)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut data = std::mem::take(&mut self.pending);
            data.extend_from_slice(chunk);
            let used = self.read(&data, out)?;
            data.drain(..used);
            self.pending = data;
        }
        Ok(())
    }

    /// Decodes every whole tuple at the start of `data`; how many bytes
    /// they took.
    fn read(&mut self, data: &[u8], out: &mut Vec<Checked>) -> Result<usize, StoreError> {
        let protocol = |what: &str| StoreError::Backend(format!("verify's COPY stream: {what}"));
        let mut at = 0;
        if !self.header_read {
            // Signature, flags, header extension length, extension.
            if data.len() < 19 {
                return Ok(0);
            }
            if &data[..11] != COPY_SIGNATURE {
                return Err(protocol("not PostgreSQL's binary COPY format"));
            }
            let extension = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
            if data.len() < 19 + extension {
                return Ok(0);
            }
            at = 19 + extension;
            self.header_read = true;
        }
        while !self.ended {
            let Some(count) = data.get(at..at + 2) else {
                break;
            };
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.ended = true;
                at += 2;
                break;
            }
            if count as usize != COLUMNS {
                return Err(protocol(&format!(
                    "a tuple of {count} fields, not {COLUMNS}"
                )));
            }
            let mut fields: [Option<&[u8]>; COLUMNS] = [None; COLUMNS];
            let mut cursor = at + 2;
            let mut whole = true;
            for field in fields.iter_mut() {
                let Some(len) = data.get(cursor..cursor + 4) else {
                    whole = false;
                    break;
                };
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                cursor += 4;
                if len < 0 {
                    continue;
                }
                let Some(bytes) = data.get(cursor..cursor + len as usize) else {
                    whole = false;
                    break;
                };
                *field = Some(bytes);
                cursor += len as usize;
            }
            if !whole {
                break;
            }
            out.push(check_tuple(&fields)?);
            at = cursor;
        }
        Ok(at)
    }
}

/// Verifies the log; `progress(position, verified)` is called after each page.
pub async fn verify(
    pool: &PgPool,
    options: &VerifyOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verdict, StoreError> {
    let from = options.from.unwrap_or(0);
    let page = options.page.unwrap_or(10_000).max(1);
    let mut summary = Summary::default();

    let start: Option<i64> = sqlx::query_scalar("SELECT after_position FROM event_chain_start")
        .fetch_optional(pool)
        .await?;
    let Some(start) = start else {
        return Ok(Verdict::Failed {
            failure: Failure {
                position: 0,
                kind: FailureKind::Edited,
                detail: "the record of where the chain starts (event_chain_start) was removed"
                    .into(),
            },
            summary,
        });
    };
    summary.chain_starts_after = start as u64;
    // The checkpoints first, then the head: a checkpoint is written only
    // after the event it seals committed, so every checkpoint read here
    // seals a position at or below the head read next, unless the tail was
    // cut. The log is verified as it stands then; what is written while
    // this runs is left for the next run.
    let checkpoints = read_checkpoints(pool, from).await?;
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let head = head as u64;

    // The hash the first event read must chain onto: the stored hash of the
    // event before `from` (taken as it stands), or the genesis.
    let mut running: Hash = GENESIS;
    let mut previous_position = 0u64;
    if from > 1 {
        let before: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT position, hash FROM events WHERE position < $1 ORDER BY position DESC LIMIT 1",
        )
        .bind(from as i64)
        .fetch_optional(pool)
        .await?;
        if let Some((p, hash)) = before {
            previous_position = p as u64;
            running = hash
                .as_deref()
                .and_then(chain::hash_from_slice)
                .unwrap_or(GENESIS);
        }
    }

    // Pages are position ranges read on their own tasks, `READERS` at a
    // time on their own connections, each decoding and hashing its rows
    // as it arrives: the expensive work spreads over every core and the
    // database's backends. What stays in order here is cheap: comparing
    // each event's stored predecessor hash with the one before it.
    let mut pages = futures_util::stream::iter(page_ranges(from, head, page))
        .map(|(low, high)| {
            let pool = pool.clone();
            tokio::spawn(async move { read_page(&pool, low, high).await })
        })
        .buffered(READERS);

    let mut next_checkpoint = 0usize;
    let mut failure = None;
    'pages: while let Some(rows) = pages.next().await {
        let rows =
            rows.map_err(|e| StoreError::Backend(format!("a verify reader failed: {e}")))??;
        for row in &rows {
            // Checkpoints whose event is not in the log.
            while let Some(cp) = checkpoints.get(next_checkpoint)
                && cp.position < row.position
            {
                if cp.position > previous_position {
                    failure = Some(Failure {
                        position: cp.position,
                        kind: FailureKind::Missing,
                        detail: format!(
                            "a checkpoint seals position {}, which is not in the log (the log goes from {} to {})",
                            cp.position, previous_position, row.position
                        ),
                    });
                    break 'pages;
                }
                next_checkpoint += 1;
            }
            if row.position <= summary.chain_starts_after {
                summary.before_chain += 1;
            } else if let Some(f) = check_event(pool, row, &running, previous_position).await? {
                failure = Some(f);
                break 'pages;
            } else {
                // check_event proved the stored hash is the recomputed one.
                running = row.hash.unwrap_or(GENESIS);
                summary.verified += 1;
            }
            if let Some(cp) = checkpoints.get(next_checkpoint)
                && cp.position == row.position
            {
                if let Some(f) = check_checkpoint(cp, &running, &options.trusted) {
                    failure = Some(f);
                    break 'pages;
                }
                summary.checkpoints += 1;
                summary.last_checkpoint = Some(cp.position);
                next_checkpoint += 1;
            }
            previous_position = row.position;
            summary.last_position = row.position;
        }
        progress(summary.last_position, summary.verified);
    }
    if failure.is_none()
        && let Some(cp) = checkpoints.get(next_checkpoint)
    {
        failure = Some(Failure {
            position: cp.position,
            kind: FailureKind::Truncated,
            detail: format!(
                "a checkpoint seals position {}, past the end of the log (its last event is at {}): events were removed from the tail",
                cp.position, summary.last_position
            ),
        });
    }
    Ok(match failure {
        Some(failure) => Verdict::Failed { failure, summary },
        None => Verdict::Verified(summary),
    })
}

/// Pages at a time: enough to keep both the database and the hashing busy
/// on a small machine, few enough that memory stays a few pages.
const READERS: usize = 3;

/// The position ranges `(low, high]` that cover `from..=head`, `page` wide.
fn page_ranges(from: u64, head: u64, page: usize) -> impl Iterator<Item = (u64, u64)> {
    let first = from.saturating_sub(1);
    (first..head)
        .step_by(page)
        .map(move |low| (low, (low + page as u64).min(head)))
}

/// The events in `(low, high]`, each checked against its own stored
/// hashes. Read with a binary COPY and decoded in the receive buffers: no
/// row objects, no per-field allocation (half of verify's CPU went there
/// with ordinary queries).
async fn read_page(pool: &PgPool, low: u64, high: u64) -> Result<Vec<Checked>, StoreError> {
    let statement = format!(
        "COPY (SELECT position, event_id, stream_id, stream_version, event_type, schema_version, \
                      event_time, recorded_time, correlation_id, causation_id, traceparent, \
                      payload, prev_hash, hash \
               FROM events WHERE position > {low} AND position <= {high} ORDER BY position) \
         TO STDOUT (FORMAT binary)"
    );
    let mut chunks = pool.copy_out_raw(&statement).await?;
    let mut reader = CopyReader::default();
    let mut out = Vec::with_capacity(high.saturating_sub(low).min(100_000) as usize);
    while let Some(chunk) = chunks.next().await {
        reader.feed(&chunk?, &mut out)?;
    }
    if !reader.ended || !reader.pending.is_empty() {
        return Err(StoreError::Backend(
            "verify's COPY stream ended in the middle of a tuple".into(),
        ));
    }
    Ok(out)
}

/// Checks one chained event against the hash of the event before it.
async fn check_event(
    pool: &PgPool,
    row: &Checked,
    running: &Hash,
    previous_position: u64,
) -> Result<Option<Failure>, StoreError> {
    let fail = |kind, detail: String| {
        Ok(Some(Failure {
            position: row.position,
            kind,
            detail,
        }))
    };
    let (Some(prev), Some(_)) = (row.prev_hash, row.hash) else {
        return fail(
            FailureKind::Edited,
            "its chain hashes were removed or altered (the chain starts before it)".into(),
        );
    };
    let intact = row.intact;
    if prev == *running {
        if intact {
            return Ok(None);
        }
        return fail(
            FailureKind::Edited,
            format!(
                "its content ({} in {}) does not match its hash: it was changed after it was written",
                row.what.as_ref().map_or("", |w| w.1.as_str()),
                row.what.as_ref().map_or("", |w| w.0.as_str())
            ),
        );
    }
    // It does not chain onto the event before it. Is the event that should
    // come next somewhere else (moved), or gone?
    let belongs: Option<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE prev_hash = $1 AND position <> $2 ORDER BY position LIMIT 1",
    )
    .bind(running.as_slice())
    .bind(row.position as i64)
    .fetch_optional(pool)
    .await?;
    if let Some(elsewhere) = belongs {
        return fail(
            FailureKind::Reordered,
            format!(
                "the event that followed position {previous_position} when it was written is now at position {elsewhere}"
            ),
        );
    }
    if intact {
        return fail(
            FailureKind::Missing,
            format!(
                "it chains onto an event that is not in the log: what came between positions {previous_position} and {} was removed (or the event at {previous_position} was replaced)",
                row.position
            ),
        );
    }
    fail(
        FailureKind::Edited,
        "neither its content nor its link to the event before it matches its hash".into(),
    )
}

/// Checks a checkpoint at the position just verified: its signature, then
/// that the chain reaches the hash it sealed.
fn check_checkpoint(cp: &Checkpoint, running: &Hash, trusted: &[VerifyingKey]) -> Option<Failure> {
    if let Err(problem) = cp.verify(trusted) {
        let detail = match problem {
            SignatureProblem::UntrustedKey(_) | SignatureProblem::KeyIdMismatch { .. } => {
                format!("the checkpoint there is {problem}")
            }
            _ => format!("the checkpoint there is forged or altered: {problem}"),
        };
        return Some(Failure {
            position: cp.position,
            kind: FailureKind::Signature,
            detail,
        });
    }
    if cp.chain_hash != *running {
        return Some(Failure {
            position: cp.position,
            kind: FailureKind::Edited,
            detail: format!(
                "the chain no longer reaches the hash signed at {} by key {}: history up to here was rewritten",
                cp.signed_at.to_rfc3339(),
                cp.key_id
            ),
        });
    }
    None
}

/// Every checkpoint at or after `from`, in position order.
async fn read_checkpoints(pool: &PgPool, from: u64) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = sqlx::query(
        "SELECT position, chain_hash, signed_at, key_id, public_key, signature \
         FROM event_checkpoints WHERE position >= $1 ORDER BY position",
    )
    .bind(from as i64)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let position: i64 = row.try_get(0)?;
            let bytes = |i: usize| row.try_get::<Vec<u8>, _>(i);
            let malformed = |what: &str| StoreError::Decode {
                position: position as u64,
                message: format!("checkpoint {what} has the wrong length"),
            };
            Ok(Checkpoint {
                position: position as u64,
                chain_hash: bytes(1)?.try_into().map_err(|_| malformed("chain hash"))?,
                signed_at: row.try_get(2)?,
                key_id: row.try_get(3)?,
                public_key: bytes(4)?.try_into().map_err(|_| malformed("public key"))?,
                signature: bytes(5)?.try_into().map_err(|_| malformed("signature"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tuple in binary COPY form, chained onto `prev`; its hash.
    fn tuple(out: &mut Vec<u8>, position: u64, prev: Hash, payload: &[u8]) -> Hash {
        let id = Uuid::from_u128(position as u128);
        let content = EventContent {
            event_id: id,
            stream_id: "customer-7",
            event_type: "TransactionRecorded",
            schema_version: 2,
            event_time_micros: 1_700_000_000_000_000,
            correlation_id: None,
            causation_id: Some(id),
            traceparent: None,
            payload,
        }
        .digest();
        let hash = Link {
            prev_hash: prev,
            position,
            stream_version: position - 1,
            recorded_time_micros: 1_700_000_000_000_123,
        }
        .hash(&content);
        let fields: [Option<Vec<u8>>; COLUMNS] = [
            Some((position as i64).to_be_bytes().to_vec()),
            Some(id.as_bytes().to_vec()),
            Some(b"customer-7".to_vec()),
            Some((position as i64 - 1).to_be_bytes().to_vec()),
            Some(b"TransactionRecorded".to_vec()),
            Some(2i32.to_be_bytes().to_vec()),
            Some(
                (1_700_000_000_000_000 - PG_EPOCH_MICROS)
                    .to_be_bytes()
                    .to_vec(),
            ),
            Some(
                (1_700_000_000_000_123 - PG_EPOCH_MICROS)
                    .to_be_bytes()
                    .to_vec(),
            ),
            None,
            Some(id.as_bytes().to_vec()),
            None,
            Some(payload.to_vec()),
            Some(prev.to_vec()),
            Some(hash.to_vec()),
        ];
        out.extend_from_slice(&(COLUMNS as i16).to_be_bytes());
        for field in fields {
            match field {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(bytes) => {
                    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    out.extend_from_slice(&bytes);
                }
            }
        }
        hash
    }

    fn stream() -> Vec<u8> {
        let mut out = COPY_SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes()); // flags
        out.extend_from_slice(&0u32.to_be_bytes()); // no header extension
        let first = tuple(&mut out, 1, GENESIS, br#"{"amount":1}"#);
        tuple(&mut out, 2, first, br#"{"amount":2}"#);
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn a_copy_stream_decodes_the_same_whatever_its_chunks() {
        let data = stream();
        for size in [1, 2, 3, 5, 7, 64, data.len()] {
            let mut reader = CopyReader::default();
            let mut out = Vec::new();
            for chunk in data.chunks(size) {
                reader.feed(chunk, &mut out).unwrap();
            }
            assert!(
                reader.ended && reader.pending.is_empty(),
                "chunks of {size}"
            );
            assert_eq!(out.len(), 2, "chunks of {size}");
            assert!(out.iter().all(|c| c.intact && c.what.is_none()));
            assert_eq!(out[1].prev_hash, out[0].hash);
            assert_eq!((out[0].position, out[1].position), (1, 2));
        }
    }

    #[test]
    fn an_edited_byte_in_a_copy_stream_is_not_intact() {
        let mut data = stream();
        let at = data
            .windows(12)
            .position(|w| w == br#"{"amount":2}"#)
            .unwrap();
        data[at + 10] = b'3';
        let mut reader = CopyReader::default();
        let mut out = Vec::new();
        reader.feed(&data, &mut out).unwrap();
        assert!(out[0].intact);
        assert!(!out[1].intact);
        assert_eq!(
            out[1].what,
            Some(("customer-7".into(), "TransactionRecorded".into()))
        );
    }

    #[test]
    fn a_stream_that_is_not_binary_copy_is_refused() {
        let mut reader = CopyReader::default();
        let mut out = Vec::new();
        assert!(
            reader
                .feed(b"1\tcustomer-7\tTransactionRecorded\n", &mut out)
                .is_err()
        );
    }
}
