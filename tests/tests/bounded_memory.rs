//! Bounded memory on the command side (issue 8, item 6).
//!
//! The command service keeps each hot customer's aggregate in an LRU cache
//! bounded by a customer count (`SENTINEL_CUSTOMER_CACHE`); every other
//! per-stream structure is bounded too (the writer's stream-head cache).
//! A sustained run of distinct customers, one transaction each, through the
//! batch endpoint must therefore keep the cache at its bound and the
//! process's resident memory on a plateau once the cache is full.
//!
//! - `cache_and_memory_stay_bounded` (every test run): 20,000 customers
//!   through a cache of 1,024.
//! - `one_million_customers` (`#[ignore]`, documented in
//!   docs/reliability.md):
//!   `cargo test --release -p sentinel-tests --test bounded_memory -- --ignored --nocapture`
//!   with `SENTINEL_MEMORY_CUSTOMERS` (default 1,000,000),
//!   `SENTINEL_MEMORY_CACHE` (default 100,000, the service's default) and
//!   `SENTINEL_MEMORY_BOUND_MB` (default 512) to vary it.
//!
//! The service runs in this process (its startup module, port 0, real HTTP,
//! real PostgreSQL), so the resident set read from /proc/self/status is the
//! service's plus a small load generator (one batch of JSON at a time per
//! client).

use command_service::configuration::Settings;
use command_service::ingest::IngestOptions;
use command_service::startup::Application;
use event_store::postgres::{PgEventStore, pool_options};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The cache is 64 shards of `ceil(capacity / 64)` customers each, so it
/// holds at most `capacity` rounded up to a multiple of 64.
fn room(capacity: usize) -> usize {
    capacity.div_ceil(64) * 64
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .expect("VmRSS in /proc/self/status")
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// One transaction of customer `n` (its only one).
fn transaction(n: usize, at: &str) -> Value {
    json!({
        "transaction_id": format!("mem-{n}"), "timestamp": at, "user_id": format!("memc-{n}"),
        "merchant_id": format!("m-{}", n % 97), "amount": 5.0 + (n % 400) as f64, "currency": "USD",
        "transaction_type": "purchase", "payment_method": "credit_card", "merchant_category": "grocery",
        "location": {"city": "Austin", "state": "TX", "country": "US", "coordinates": [30.27, -97.74]},
        "device_info": {"device_type": "mobile", "ip_address": "10.0.0.1", "user_agent": "Mozilla/5.0"}
    })
}

/// A sample: customers sent so far, cache length, resident KiB.
#[derive(Debug, Clone, Copy)]
struct Sample {
    done: usize,
    cached: usize,
    rss_kib: u64,
}

struct Figures {
    samples: Vec<Sample>,
    max_cached: usize,
    elapsed: Duration,
    /// Items answered 503 and sent again.
    retried: usize,
}

/// Sends `customers` distinct customers' transactions in batches of 1,000
/// from 4 clients through a command service whose cache holds `cache`.
async fn run(pool: PgPool, customers: usize, cache: usize) -> Figures {
    // A pool as the binary builds it (sqlx::test's has 5 connections).
    let o = pool.connect_options();
    let url = format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    );
    let pool = pool_options(32).connect(&url).await.expect("connect");
    let store = Arc::new(PgEventStore::new(pool));
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ingest: IngestOptions {
            customer_cache: cache,
            ..IngestOptions::default()
        },
        ..Settings::default()
    };
    let batch = settings.batch_max_items;
    let app = Application::build(settings, store)
        .await
        .expect("command service");
    let state = app.state();
    let base = format!("http://{}", app.local_addr().expect("addr"));
    tokio::spawn(app.run_until(std::future::pending()));

    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    // The cache's length, every 10 ms: it must never pass its room.
    let sampler = {
        let (state, done, finished) = (state.clone(), done.clone(), finished.clone());
        tokio::spawn(async move {
            let mut max = 0;
            let mut samples = Vec::new();
            let mut last_rss = Instant::now() - Duration::from_secs(1);
            while !finished.load(Ordering::Relaxed) {
                let cached = state.ingest.cached_customers();
                max = max.max(cached);
                if last_rss.elapsed() >= Duration::from_millis(250) {
                    last_rss = Instant::now();
                    samples.push(Sample {
                        done: done.load(Ordering::Relaxed),
                        cached,
                        rss_kib: rss_kib(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (max, samples)
        })
    };
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (http, base, next, done, retried) = (
                http.clone(),
                base.clone(),
                next.clone(),
                done.clone(),
                retried.clone(),
            );
            tokio::spawn(async move {
                // Within the allowed clock skew, and late only by seconds.
                let at = chrono::Utc::now().to_rfc3339();
                loop {
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= customers {
                        return;
                    }
                    let to = (from + batch).min(customers);
                    let mut body: Vec<Value> = (from..to).map(|n| transaction(n, &at)).collect();
                    // Items answered 503 (the pool busy past its acquire
                    // timeout) are sent again, as a client would.
                    while !body.is_empty() {
                        let answer: Value = http
                            .post(format!("{base}/v1/transactions/batch"))
                            .json(&body)
                            .send()
                            .await
                            .expect("batch sent")
                            .json()
                            .await
                            .expect("batch answer");
                        let results = answer["results"].as_array().expect("results");
                        assert_eq!(results.len(), body.len());
                        let mut again = Vec::new();
                        for (r, item) in results.iter().zip(body) {
                            match r["status"].as_u64() {
                                Some(201 | 200) => {}
                                Some(503) => again.push(item),
                                _ => panic!("a new customer's transaction was refused: {r}"),
                            }
                        }
                        if !again.is_empty() {
                            retried.fetch_add(again.len(), Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        body = again;
                    }
                    done.fetch_add(to - from, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    let elapsed = started.elapsed();
    finished.store(true, Ordering::Relaxed);
    let (max_cached, mut samples) = sampler.await.expect("sampler");
    samples.push(Sample {
        done: customers,
        cached: state.ingest.cached_customers(),
        rss_kib: rss_kib(),
    });
    Figures {
        samples,
        max_cached,
        elapsed,
        retried: retried.load(Ordering::Relaxed),
    }
}

/// Highest resident memory among samples taken after `from` customers.
fn peak_after(samples: &[Sample], from: usize) -> u64 {
    samples
        .iter()
        .filter(|s| s.done >= from)
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0)
}

fn print(name: &str, customers: usize, cache: usize, f: &Figures) {
    let step = (f.samples.len() / 10).max(1);
    let curve: Vec<String> = f
        .samples
        .iter()
        .step_by(step)
        .map(|s| format!("{}: {} MiB ({} cached)", s.done, s.rss_kib / 1024, s.cached))
        .collect();
    eprintln!(
        "{name}: {customers} customers, cache {cache} (room {}), most cached {}, {} items retried after 503, {:.1} s ({:.0}/s)\n  RSS by customers sent: {}",
        room(cache),
        f.max_cached,
        f.retried,
        f.elapsed.as_secs_f64(),
        customers as f64 / f.elapsed.as_secs_f64(),
        curve.join(", ")
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn cache_and_memory_stay_bounded(pool: PgPool) {
    let (customers, cache) = (20_000, 1_024);
    let f = run(pool, customers, cache).await;
    print("bounded_memory", customers, cache, &f);
    assert!(
        f.max_cached <= room(cache),
        "the cache held {} customers, over its {cache}",
        f.max_cached
    );
    let last = f.samples.last().expect("a sample");
    assert_eq!(last.cached, room(cache), "the cache filled and evicted");
    // Once the cache is full (a quarter of the way), memory stays within
    // 24 MiB of where it was (measured: +15 MiB over the last 15,000
    // customers, in a debug build; the writer's stream-head cache and the
    // allocator). An unbounded customer cache fails the length check above.
    let full = f
        .samples
        .iter()
        .filter(|s| s.done <= customers / 4)
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0);
    let later = peak_after(&f.samples, customers / 4);
    assert!(
        later.saturating_sub(full) < 24 * 1024,
        "resident memory grew from {} MiB to {} MiB after the cache was full",
        full / 1024,
        later / 1024
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
#[ignore = "a long run (a million customers); see docs/reliability.md"]
async fn one_million_customers(pool: PgPool) {
    let customers = env("SENTINEL_MEMORY_CUSTOMERS", 1_000_000);
    let cache = env("SENTINEL_MEMORY_CACHE", 100_000);
    let bound_mib = env("SENTINEL_MEMORY_BOUND_MB", 512) as u64;
    let f = run(pool, customers, cache).await;
    print("one_million_customers", customers, cache, &f);
    assert!(f.max_cached <= room(cache), "cache over its bound");
    let peak = peak_after(&f.samples, 0) / 1024;
    assert!(
        peak < bound_mib,
        "resident memory peaked at {peak} MiB, over {bound_mib} MiB"
    );
    // The plateau: the second half adds at most 10% over the first half's peak.
    let first_half = f
        .samples
        .iter()
        .filter(|s| s.done <= customers / 2)
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0);
    let second_half = peak_after(&f.samples, customers / 2);
    assert!(
        second_half <= first_half + first_half / 10,
        "no plateau: {} MiB in the first half, {} MiB in the second",
        first_half / 1024,
        second_half / 1024
    );
}
