//! The simulation as endless "now" traffic, for the benchmarks (`bench
//! ingest`, `bench replay`): the one generator serves them too, so a
//! benchmark sends what `simulate` and `demo` send (same customers, cities,
//! fraud scenarios, wire JSON).
//!
//! A benchmark needs traffic at any rate for as long as it runs, not a week
//! of history. So the simulation's transactions are generated once, before
//! anything is timed, and a [`Feed`] hands them out in event-time order, over
//! and over: send `n` is transaction `n mod len`, with its own id
//! (`tx-{name}-{n}`, so no send repeats another's) and dated `lag` before it
//! is sent, `lag` drawn from 0..=2 minutes for `n` (the same for the same
//! seed), so timestamps are recent and never in the future. What is left to
//! do per send is writing its JSON, as it always was.

use super::tx::SimTx;
use super::{Config, population::splitmix};
use chrono::{DateTime, TimeZone, Utc};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long before it is sent a transaction happened, at most.
pub const MAX_LAG: Duration = Duration::from_secs(120);

/// Simulated days a benchmark's traffic is drawn from: at the 100,000
/// customers `bench ingest` uses, about 300,000 transactions (about 100 MB
/// held), what a 10-second batch case sends before the feed starts over.
const DAYS: f64 = 1.0;

/// The generated transactions a benchmark sends.
pub struct Traffic {
    txs: Vec<SimTx>,
    seed: u64,
}

impl Traffic {
    /// `customers` customers over a simulated day with `fraud_rate` of
    /// fraud; the same for the same arguments.
    pub fn generate(seed: u64, customers: u32, fraud_rate: f64) -> Arc<Traffic> {
        let cfg = Config {
            seed,
            customers: customers.max(1),
            days: DAYS,
            fraud_rate,
            // Any fixed start (a Monday): timestamps are given when sent.
            start: Utc
                .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::UNIX_EPOCH),
            speed: 1.0,
            id_prefix: String::new(),
        };
        Arc::new(Traffic {
            txs: super::transactions(&cfg),
            seed,
        })
    }

    /// Transactions before the feed starts over.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// A feed of this traffic whose ids start with `tx-{name}-`.
    pub fn feed(self: &Arc<Self>, name: &str) -> Feed {
        Feed {
            traffic: self.clone(),
            name: name.into(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Hands out sends: clones share one position, so concurrent clients of a
/// feed send different transactions and never the same id.
#[derive(Clone)]
pub struct Feed {
    traffic: Arc<Traffic>,
    name: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Feed {
    /// The next `n` sends.
    pub fn take(&self, n: usize) -> Range<u64> {
        let from = self.next.fetch_add(n as u64, Ordering::Relaxed);
        from..from + n as u64
    }

    fn tx(&self, send: u64) -> &SimTx {
        let len = self.traffic.txs.len().max(1) as u64;
        &self.traffic.txs[(send % len) as usize]
    }

    /// The customer number of send `send`.
    pub fn customer(&self, send: u64) -> u32 {
        self.tx(send).customer
    }

    pub fn id(&self, send: u64) -> String {
        format!("tx-{}-{:09}", self.name, send + 1)
    }

    /// How long before it is sent send `send` happened.
    pub fn lag(&self, send: u64) -> Duration {
        let ms = splitmix(self.traffic.seed ^ splitmix(send)) % (MAX_LAG.as_millis() as u64 + 1);
        Duration::from_millis(ms)
    }

    /// Appends the JSON body of send `send`, sent at `sent`.
    pub fn write_json(&self, send: u64, sent: DateTime<Utc>, out: &mut Vec<u8>) {
        let at = sent - self.lag(send);
        // Plain structs of strings and numbers into a Vec cannot fail.
        self.tx(send)
            .write_json(&self.id(send), at, out)
            .expect("serialising a transaction");
    }

    pub fn json(&self, send: u64, sent: DateTime<Utc>) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_json(send, sent, &mut out);
        out
    }

    /// A JSON array of `sends`, all sent at `sent`.
    pub fn batch_json(&self, sends: Range<u64>, sent: DateTime<Utc>) -> Vec<u8> {
        let mut out = Vec::with_capacity((sends.end - sends.start) as usize * 480 + 2);
        out.push(b'[');
        for send in sends {
            if out.len() > 1 {
                out.push(b',');
            }
            self.write_json(send, sent, &mut out);
        }
        out.push(b']');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ingest::{ParseContext, parse_transaction};
    use std::collections::HashSet;

    fn traffic(seed: u64) -> Arc<Traffic> {
        Traffic::generate(seed, 300, 0.03)
    }

    fn bodies(feed: &Feed, n: usize, sent: DateTime<Utc>) -> Vec<Vec<u8>> {
        feed.take(n).map(|s| feed.json(s, sent)).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic() {
        let sent = Utc::now();
        let (a, b) = (traffic(7), traffic(7));
        assert_eq!(
            bodies(&a.feed("a"), 500, sent),
            bodies(&b.feed("a"), 500, sent)
        );
        assert_ne!(
            bodies(&a.feed("a"), 100, sent),
            bodies(&traffic(8).feed("a"), 100, sent)
        );
    }

    #[test]
    fn every_send_is_valid_recent_unique_and_not_in_the_future() {
        let t = traffic(1);
        let feed = t.feed("v");
        let now = Utc::now();
        let ctx = ParseContext {
            now,
            max_future_skew: chrono::Duration::zero(),
            default_currency: domain::money::Currency::parse("USD").expect("USD"),
        };
        let mut ids = HashSet::new();
        // Past the end: the feed starts over with new ids.
        for send in feed.take(t.len() + 100) {
            assert!(feed.lag(send) <= MAX_LAG);
            let value: serde_json::Value =
                serde_json::from_slice(&feed.json(send, now)).expect("json");
            let parsed = parse_transaction(&value, &ctx)
                .unwrap_or_else(|e| panic!("{value} refused: {e:?}"));
            assert!(parsed.timestamp <= now);
            assert!(now - parsed.timestamp <= chrono::Duration::minutes(2));
            assert!(ids.insert(parsed.transaction_id), "ids are unique");
        }
        assert!(feed.lag(0) != feed.lag(1) || feed.lag(1) != feed.lag(2));
    }

    #[test]
    fn clones_share_the_position_and_feeds_never_share_an_id() {
        let t = traffic(2);
        let a = t.feed("a");
        let a2 = a.clone();
        assert_eq!(a.take(3), 0..3);
        assert_eq!(a2.take(1).start, 3);
        assert_ne!(t.feed("b").id(0), a.id(0));
    }

    #[test]
    fn a_batch_is_a_json_array_of_transactions() {
        let feed = traffic(3).feed("b");
        let sends = feed.take(3);
        let v: serde_json::Value =
            serde_json::from_slice(&feed.batch_json(sends, Utc::now())).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(3));
        assert_eq!(v[1]["transaction_id"], feed.id(1).as_str());
    }

    #[test]
    fn fraud_is_in_the_traffic_in_the_requested_share() {
        let t = Traffic::generate(5, 3_000, 0.03);
        let feed = t.feed("f");
        let fraud = t.txs.iter().filter(|tx| tx.fraud.is_some()).count();
        let share = fraud as f64 / t.len() as f64;
        assert!((0.02..0.04).contains(&share), "fraud share {share}");
        let customers: HashSet<u32> = (0..t.len() as u64).map(|s| feed.customer(s)).collect();
        assert!(customers.len() > 2_500, "{}", customers.len());
    }
}
