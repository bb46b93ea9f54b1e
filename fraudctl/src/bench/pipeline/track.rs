//! End-to-end timing for `bench pipeline`: when the slowest projector's
//! checkpoint passed each acknowledged transaction's log position.
//!
//! While a step runs, a [`Sampler`] reads the slowest checkpoint (the same
//! query as `bench replay`'s live case) every few milliseconds, with the
//! instant it came back, and the command service's resident memory. After
//! the step the log is read from where the step started, and each
//! acknowledged transaction's id gives its position ([`Positions`]); its
//! end-to-end latency is from its answer to the first sample at or past
//! that position. An acknowledged transaction with no position is lost.

use super::super::ingest::load::Ack;
use super::services::rss_bytes;
use event_store::{EventStore, Position};
use hdrhistogram::Histogram;
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the checkpoint is read.
const EVERY: Duration = Duration::from_millis(5);

/// The slowest checkpoint over time, and the command side's memory.
#[derive(Default)]
pub struct Samples {
    /// (when the read came back, slowest checkpoint): non-decreasing.
    pub checkpoints: Vec<(Instant, u64)>,
    /// Highest resident memory of the command service seen, bytes.
    pub peak_rss: u64,
}

impl Samples {
    /// When the checkpoint was first seen at or past `position`.
    pub fn passed(&self, position: u64) -> Option<Instant> {
        let i = self.checkpoints.partition_point(|(_, at)| *at < position);
        self.checkpoints.get(i).map(|(t, _)| *t)
    }

    /// The newest checkpoint seen.
    pub fn last(&self) -> u64 {
        self.checkpoints.last().map_or(0, |(_, at)| *at)
    }
}

/// Samples in the background until stopped.
pub struct Sampler {
    samples: Arc<Mutex<Samples>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pool: PgPool, slowest: String, command_pid: u32) -> Sampler {
        let samples = Arc::new(Mutex::new(Samples::default()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let shared = samples.clone();
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            while !*stopped.borrow() {
                let read: Result<i64, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(slowest.clone()))
                    .fetch_one(&pool)
                    .await;
                let now = Instant::now();
                if let Ok(at) = read {
                    let mut s = lock(&shared);
                    let at = (at.max(0) as u64).max(s.last());
                    s.checkpoints.push((now, at));
                }
                if n.is_multiple_of(20) {
                    let rss = rss_bytes(command_pid);
                    let mut s = lock(&shared);
                    s.peak_rss = s.peak_rss.max(rss);
                }
                n += 1;
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        });
        Sampler {
            samples,
            stop,
            task,
        }
    }

    /// The newest checkpoint seen so far.
    pub fn last(&self) -> u64 {
        lock(&self.samples).last()
    }

    pub async fn finish(self) -> Samples {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        std::mem::take(&mut *lock(&self.samples))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until the slowest checkpoint reaches `position`, at most `limit`;
/// whether it did.
pub async fn wait_for(sampler: &Sampler, position: u64, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if sampler.last() >= position {
            return true;
        }
        tokio::time::sleep(EVERY).await;
    }
    sampler.last() >= position
}

/// The log positions of the transactions a step sent, by feed name and send.
#[derive(Default)]
pub struct Positions(HashMap<String, HashMap<u64, u64>>);

#[derive(Deserialize)]
struct Recorded {
    transaction: RecordedTx,
}

#[derive(Deserialize)]
struct RecordedTx {
    transaction_id: String,
}

impl Positions {
    /// Reads the log after `after`: every `TransactionRecorded` whose id is
    /// `tx-{feed}-{n}` of one of `feeds`.
    pub async fn read(
        store: &dyn EventStore,
        after: u64,
        feeds: &[&str],
    ) -> anyhow::Result<Positions> {
        let mut out = Positions::default();
        let mut at = Position(after);
        loop {
            let page = store.read_all(at, 5000).await?;
            let Some(last) = page.last() else { break };
            at = last.position;
            for e in &page {
                if e.event_type != "TransactionRecorded" {
                    continue;
                }
                let Ok(r) = e.payload.parse::<Recorded>() else {
                    continue;
                };
                if let Some((feed, send)) = parse_id(&r.transaction.transaction_id)
                    && feeds.contains(&feed)
                {
                    out.0
                        .entry(feed.to_owned())
                        .or_default()
                        .insert(send, e.position.0);
                }
            }
        }
        Ok(out)
    }

    pub fn of(&self, feed: &str, send: u64) -> Option<u64> {
        self.0.get(feed)?.get(&send).copied()
    }
}

/// `tx-{feed}-{n:09}` (as `Feed::id` writes it, `n` = send + 1) -> (feed, send).
fn parse_id(id: &str) -> Option<(&str, u64)> {
    let rest = id.strip_prefix("tx-")?;
    let (feed, n) = rest.rsplit_once('-')?;
    Some((feed, n.parse::<u64>().ok()?.checked_sub(1)?))
}

/// One step's end-to-end figures.
pub struct EndToEnd {
    /// From each answer to the checkpoint passing it, microseconds.
    pub after_answer: Histogram<u64>,
    /// From each request's due time to the checkpoint passing it.
    pub from_due: Histogram<u64>,
    /// Acknowledged, but not in the log: lost.
    pub lost: u64,
    /// In the log, but never passed by the checkpoint while sampled.
    pub unprojected: u64,
}

impl EndToEnd {
    pub fn new() -> EndToEnd {
        EndToEnd {
            after_answer: histogram(),
            from_due: histogram(),
            lost: 0,
            unprojected: 0,
        }
    }

    /// Adds `acks` of feed `feed`.
    pub fn add(&mut self, feed: &str, acks: &[Ack], positions: &Positions, samples: &Samples) {
        for ack in acks {
            let Some(position) = positions.of(feed, ack.send) else {
                self.lost += 1;
                continue;
            };
            let Some(passed) = samples.passed(position) else {
                self.unprojected += 1;
                continue;
            };
            let us = |d: Duration| (d.as_micros() as u64).max(1);
            self.after_answer
                .saturating_record(us(passed.saturating_duration_since(ack.answered)));
            self.from_due
                .saturating_record(us(passed.saturating_duration_since(ack.due)));
        }
    }

    pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// 1 us .. 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_give_back_their_feed_and_send() {
        assert_eq!(parse_id("tx-p1s2b-000000042"), Some(("p1s2b", 41)));
        assert_eq!(parse_id("tx-a-000000001"), Some(("a", 0)));
        assert_eq!(parse_id("tx-a-000000000"), None);
        assert_eq!(parse_id("card-1"), None);
    }

    #[test]
    fn a_position_is_passed_by_the_first_sample_at_or_after_it() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let s = Samples {
            checkpoints: vec![(at(0), 5), (at(5), 9), (at(10), 9), (at(15), 20)],
            peak_rss: 0,
        };
        assert_eq!(s.passed(5), Some(at(0)));
        assert_eq!(s.passed(6), Some(at(5)));
        assert_eq!(s.passed(10), Some(at(15)));
        assert_eq!(s.passed(21), None);
        assert_eq!(s.last(), 20);
    }

    #[test]
    fn lost_and_late_acks_are_counted_apart() {
        let t0 = Instant::now();
        let mut positions = Positions::default();
        positions.0.entry("f".into()).or_default().insert(0, 10);
        positions.0.entry("f".into()).or_default().insert(1, 30);
        let samples = Samples {
            checkpoints: vec![(t0 + Duration::from_millis(20), 10)],
            peak_rss: 0,
        };
        let ack = |send| Ack {
            send,
            due: t0,
            answered: t0 + Duration::from_millis(5),
        };
        let mut e = EndToEnd::new();
        e.add("f", &[ack(0), ack(1), ack(2)], &positions, &samples);
        assert_eq!((e.lost, e.unprojected, e.after_answer.len()), (1, 1, 1));
        assert!((EndToEnd::ms(&e.after_answer, 0.5) - 15.0).abs() < 0.1);
        assert!((EndToEnd::ms(&e.from_due, 0.5) - 20.0).abs() < 0.1);
    }
}
