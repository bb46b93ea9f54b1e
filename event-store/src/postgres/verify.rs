//! The verifier behind `fraudctl verify`: recomputes the hash chain of the
//! PostgreSQL log from its rows and checks every signed checkpoint, and
//! names the first position that does not verify, and why.
//!
//! It reads the log as it stands when it starts, in pages of position
//! ranges, several at a time on their own tasks and connections; each task
//! decodes its rows and recomputes their hashes, so reading and hashing
//! spread over every core. One pass in position order then checks that each
//! event chains onto the one before it and that each checkpoint verifies. Only what
//! the log holds is trusted, except the public keys the caller passes (with
//! none, each checkpoint is checked against the key it names, which proves
//! it intact but not who signed it).

use crate::error::StoreError;
use crate::trust::chain::{self, EventContent, GENESIS, Hash, Link};
use crate::trust::{Checkpoint, SignatureProblem};
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use futures_util::StreamExt;
use sqlx::postgres::PgRow;
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
    stream_id: String,
    event_type: String,
    prev_hash: Option<Hash>,
    hash: Option<Hash>,
    /// Whether `hash` is what the content and the stored `prev_hash`
    /// give (false when either hash is missing or malformed).
    intact: bool,
}

/// Decodes one row, borrowing its text columns (the payload is hashed
/// where it lies, never copied), and recomputes its hash.
fn check_row(row: &PgRow) -> Result<Checked, sqlx::Error> {
    let position = row.try_get::<i64, _>(0)? as u64;
    let stream_id: &str = row.try_get(2)?;
    let event_type: &str = row.try_get(4)?;
    let prev_hash = stored_hash(row, 12)?;
    let hash = stored_hash(row, 13)?;
    let intact = match (&prev_hash, &hash) {
        (Some(prev), Some(hash)) => {
            let event_time: DateTime<Utc> = row.try_get(6)?;
            let recorded_time: DateTime<Utc> = row.try_get(7)?;
            let content = EventContent {
                event_id: row.try_get::<Uuid, _>(1)?,
                stream_id,
                event_type,
                schema_version: row.try_get::<i32, _>(5)? as u32,
                event_time_micros: event_time.timestamp_micros(),
                correlation_id: row.try_get(8)?,
                causation_id: row.try_get(9)?,
                traceparent: row.try_get(10)?,
                payload: row.try_get::<&str, _>(11)?.as_bytes(),
            }
            .digest();
            let link = Link {
                prev_hash: *prev,
                position,
                stream_version: row.try_get::<i64, _>(3)? as u64,
                recorded_time_micros: recorded_time.timestamp_micros(),
            };
            link.hash(&content) == *hash
        }
        _ => false,
    };
    Ok(Checked {
        position,
        stream_id: stream_id.to_owned(),
        event_type: event_type.to_owned(),
        prev_hash,
        hash,
        intact,
    })
}

/// A hash column: `None` when NULL or not 32 bytes (the check reports it).
fn stored_hash(row: &PgRow, column: usize) -> Result<Option<Hash>, sqlx::Error> {
    let bytes: Option<&[u8]> = row.try_get(column)?;
    Ok(bytes.and_then(chain::hash_from_slice))
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

/// The events in `(low, high]`, decoded and each checked against its own
/// stored hashes.
async fn read_page(pool: &PgPool, low: u64, high: u64) -> Result<Vec<Checked>, StoreError> {
    let rows = sqlx::query(
        "SELECT position, event_id, stream_id, stream_version, event_type, schema_version, \
                event_time, recorded_time, correlation_id, causation_id, traceparent, \
                payload::text, prev_hash, hash \
         FROM events WHERE position > $1 AND position <= $2 ORDER BY position",
    )
    .persistent(false)
    .bind(low as i64)
    .bind(high as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(check_row).collect::<Result<_, _>>()?)
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
                row.event_type, row.stream_id
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
