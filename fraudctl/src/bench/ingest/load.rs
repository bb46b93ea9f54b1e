//! The load of `bench ingest`: an open-loop driver of single POSTs and a
//! closed-loop driver of batch POSTs, over a keep-alive HTTP/1.1 pool.
//!
//! Open loop: send `i` is due at `start + i / rate`, whatever happened to
//! the sends before it, and its latency is measured from when it was due,
//! so time spent waiting for a free connection (queueing, in the client or
//! the server) counts: no coordinated omission. A send is one request: a
//! single POST, or (with [`Shape::items`] over 1) a batch POST, and
//! `bench pipeline` notes when each transaction was acknowledged
//! ([`Shape::acks`]) to time it to the read models.

use crate::simulate::feed::Feed;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Longest a request may take, counted from when it was due; later counts
/// as a failure.
const TIMEOUT: Duration = Duration::from_secs(30);

pub type Client = HyperClient<HttpConnector, Full<Bytes>>;

/// A keep-alive pool that keeps up to `connections` idle connections.
pub fn client(connections: usize) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Where to POST, with the bearer token to send.
#[derive(Clone)]
pub struct Endpoint {
    pub uri: Uri,
    pub authorization: HeaderValue,
}

impl Endpoint {
    pub fn new(uri: &str, token: &str) -> anyhow::Result<Endpoint> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))?;
        authorization.set_sensitive(true);
        Ok(Endpoint {
            uri: uri.parse()?,
            authorization,
        })
    }
}

/// POSTs `body`: the status, the body, and whether a `Retry-After` came.
async fn post(client: &Client, to: &Endpoint, body: Vec<u8>) -> anyhow::Result<(u16, Bytes, bool)> {
    let request = hyper::Request::post(to.uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, to.authorization.clone())
        .body(Full::new(Bytes::from(body)))?;
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key(RETRY_AFTER);
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body, retry_after))
}

/// One acknowledged transaction of an open loop: its send, when its
/// request was due and when the answer came.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub send: u64,
    pub due: Instant,
    pub answered: Instant,
}

/// Where an open loop notes its acknowledged transactions.
pub type Acks = Arc<Mutex<Vec<Ack>>>;

/// What each send of an open loop is.
#[derive(Clone)]
pub struct Shape {
    /// Transactions per request: 1 is a single POST of one transaction,
    /// more a batch POST (a JSON array) of that many.
    pub items: usize,
    /// Where every acknowledged (2xx) transaction is noted, if anywhere.
    pub acks: Option<Acks>,
    /// No spinner (the caller shows its own progress).
    pub quiet: bool,
}

impl Shape {
    pub fn single() -> Shape {
        Shape {
            items: 1,
            acks: None,
            quiet: false,
        }
    }
}

/// The schedule of an open loop: `rate` sends per second for `total` sends.
/// Integer nanoseconds, so "due" never drifts or rounds the wrong way.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    rate: u64,
    total: u64,
}

impl OpenLoop {
    pub fn new(rate: u64, duration: Duration) -> OpenLoop {
        let rate = rate.max(1);
        let total = (u128::from(rate) * duration.as_nanos() / 1_000_000_000) as u64;
        OpenLoop { rate, total }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// When send `i` is due, after the start.
    pub fn due_at(&self, i: u64) -> Duration {
        Duration::from_nanos((u128::from(i) * 1_000_000_000 / u128::from(self.rate)) as u64)
    }

    /// How many sends are due by `elapsed` (those with `due_at <= elapsed`).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        // floor(i * 1e9 / rate) <= e  <=>  i < (e + 1) * rate / 1e9
        let e = elapsed.as_nanos() + 1;
        let n = (e * u128::from(self.rate)).div_ceil(1_000_000_000);
        (n as u64).min(self.total)
    }
}

/// Decisions in the answers, as a check that the traffic makes the rules fire.
#[derive(Debug, Default, Clone, Copy)]
pub struct Decisions {
    pub approve: u64,
    pub review: u64,
    pub decline: u64,
    pub late: u64,
}

impl Decisions {
    fn add(&mut self, a: &AnswerBody) {
        match a.decision.as_str() {
            "approve" => self.approve += 1,
            "review" => self.review += 1,
            "decline" => self.decline += 1,
            _ => {}
        }
        self.late += u64::from(a.late);
    }

    fn merge(&mut self, o: &Decisions) {
        self.approve += o.approve;
        self.review += o.review;
        self.decline += o.decline;
        self.late += o.late;
    }

    pub fn total(&self) -> u64 {
        self.approve + self.review + self.decline
    }
}

#[derive(Deserialize)]
struct AnswerBody {
    decision: String,
    #[serde(default)]
    late: bool,
}

#[derive(Deserialize)]
struct BatchBody {
    results: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    /// The item's place in the batch.
    #[serde(default)]
    index: usize,
    status: u16,
    #[serde(default)]
    answer: Option<AnswerBody>,
    #[serde(default)]
    problem: Option<serde_json::Value>,
}

/// What one case measured.
pub struct Figures {
    /// Transactions sent.
    pub sent: u64,
    /// HTTP requests answered (a batch is one).
    pub requests: u64,
    /// Transactions answered 2xx.
    pub accepted: u64,
    /// Transactions answered 503 (overload).
    pub overloaded: u64,
    /// Requests answered 503 without a `Retry-After` header.
    pub overloaded_without_retry_after: u64,
    /// Transactions answered anything else, or not answered in time.
    pub errors: u64,
    /// Of `errors`: transactions of requests the client gave up on (no
    /// answer within its timeout), which a server error is not.
    pub timeouts: u64,
    /// Of `errors`: transactions answered 5xx other than 503 (the server
    /// failed rather than refused).
    pub server_errors: u64,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// Per request (a single POST, or a whole batch), microseconds; only
    /// requests whose transactions were accepted.
    pub latency: Histogram<u64>,
    pub decisions: Decisions,
    /// The first refusal seen, to say why.
    pub first_problem: Option<String>,
}

impl Figures {
    pub fn accepted_per_sec(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Counters shared by the tasks of one case.
struct Tally {
    start: Instant,
    sent: AtomicU64,
    requests: AtomicU64,
    accepted: AtomicU64,
    overloaded: AtomicU64,
    no_retry_after: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    server_errors: AtomicU64,
    last_answer_ns: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    decisions: Mutex<Decisions>,
    first_problem: Mutex<Option<String>>,
}

impl Tally {
    fn new(start: Instant) -> Tally {
        Tally {
            start,
            sent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            no_retry_after: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            last_answer_ns: AtomicU64::new(0),
            // 1 µs .. 10 min, 3 significant digits.
            latency: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds")),
            decisions: Mutex::new(Decisions::default()),
            first_problem: Mutex::new(None),
        }
    }

    fn answered(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let ns = self.start.elapsed().as_nanos() as u64;
        self.last_answer_ns.fetch_max(ns, Ordering::Relaxed);
    }

    fn record_latency(&self, since: Instant) {
        let us = since.elapsed().as_micros().max(1) as u64;
        lock(&self.latency).saturating_record(us);
    }

    fn problem(&self, text: impl FnOnce() -> String) {
        let mut first = lock(&self.first_problem);
        if first.is_none() {
            *first = Some(text());
        }
    }

    fn count(&self, status: u16, n: u64) {
        if (500..=599).contains(&status) && status != 503 {
            self.server_errors.fetch_add(n, Ordering::Relaxed);
        }
        match status {
            200..=299 => &self.accepted,
            503 => &self.overloaded,
            _ => &self.errors,
        }
        .fetch_add(n, Ordering::Relaxed);
    }

    /// `n` transactions whose request got no answer in time: errors, and
    /// counted apart as the client's timeouts.
    fn timed_out(&self, n: u64) {
        self.errors.fetch_add(n, Ordering::Relaxed);
        self.timeouts.fetch_add(n, Ordering::Relaxed);
    }

    fn progress(&self, what: &str) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let accepted = self.accepted.load(Ordering::Relaxed);
        format!(
            "{what}: {} sent, {accepted} accepted ({:.0}/s), {} 503, {} errors",
            self.sent.load(Ordering::Relaxed),
            accepted as f64 / secs,
            self.overloaded.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    fn figures(&self, at_least: Duration) -> Figures {
        let elapsed = Duration::from_nanos(self.last_answer_ns.load(Ordering::Relaxed));
        Figures {
            sent: self.sent.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            overloaded: self.overloaded.load(Ordering::Relaxed),
            overloaded_without_retry_after: self.no_retry_after.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            elapsed: elapsed.max(at_least),
            latency: lock(&self.latency).clone(),
            decisions: *lock(&self.decisions),
            first_problem: lock(&self.first_problem).clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn spinner() -> anyhow::Result<ProgressBar> {
    Ok(ProgressBar::new_spinner().with_style(ProgressStyle::with_template("  {spinner} {msg}")?))
}

/// Single POSTs to `uri` on the `schedule`, at most `connections` at once
/// (the rest wait for a connection, and the wait counts).
pub async fn open_loop(
    client: Client,
    to: Endpoint,
    feed: Feed,
    schedule: OpenLoop,
    connections: usize,
) -> anyhow::Result<Figures> {
    open_loop_of(client, to, feed, schedule, connections, Shape::single()).await
}

/// Requests of `shape` to `uri` on the `schedule` (which counts requests,
/// not transactions), at most `connections` at once.
pub async fn open_loop_of(
    client: Client,
    to: Endpoint,
    feed: Feed,
    schedule: OpenLoop,
    connections: usize,
    shape: Shape,
) -> anyhow::Result<Figures> {
    let what = if shape.items > 1 {
        "batch POSTs"
    } else {
        "single POSTs"
    };
    let bar = if shape.quiet {
        ProgressBar::hidden()
    } else {
        spinner()?
    };
    let start = Instant::now();
    let tally = Arc::new(Tally::new(start));
    let slots = Arc::new(Semaphore::new(connections.max(1)));
    let shape = Arc::new(shape);
    let mut tasks = JoinSet::new();
    let mut next = 0u64;
    let mut shown = start;
    while next < schedule.total() {
        let due = schedule.due_by(start.elapsed());
        while next < due {
            let at = start + schedule.due_at(next);
            let sends = feed.take(shape.items.max(1));
            let (client, to, feed, tally, slots, shape) = (
                client.clone(),
                to.clone(),
                feed.clone(),
                tally.clone(),
                slots.clone(),
                shape.clone(),
            );
            tally
                .sent
                .fetch_add(sends.end - sends.start, Ordering::Relaxed);
            tasks.spawn(async move {
                let request = Request {
                    client: &client,
                    to: &to,
                    feed: &feed,
                    sends,
                    due: at,
                };
                if shape.items > 1 {
                    send_batch(request, &tally, &slots, &shape).await
                } else {
                    send_one(request, &tally, &slots, &shape).await
                }
            });
            next += 1;
        }
        while tasks.try_join_next().is_some() {}
        if shown.elapsed() >= Duration::from_millis(200) {
            bar.set_message(tally.progress(what));
            bar.tick();
            shown = Instant::now();
        }
        if next < schedule.total() {
            tokio::time::sleep_until((start + schedule.due_at(next)).into()).await;
        }
    }
    bar.set_message(format!(
        "{} (draining {} in flight)",
        tally.progress(what),
        tasks.len()
    ));
    while tasks.join_next().await.is_some() {}
    let figures = tally.figures(schedule.due_at(schedule.total()));
    bar.finish_and_clear();
    Ok(figures)
}

/// One send of an open loop.
struct Request<'a> {
    client: &'a Client,
    to: &'a Endpoint,
    feed: &'a Feed,
    sends: Range<u64>,
    due: Instant,
}

async fn send_one(r: Request<'_>, tally: &Tally, slots: &Semaphore, shape: &Shape) {
    let send = r.sends.start;
    let attempt = async {
        let _slot = slots.acquire().await?;
        post(r.client, r.to, r.feed.json(send, chrono::Utc::now())).await
    };
    match tokio::time::timeout_at((r.due + TIMEOUT).into(), attempt).await {
        Ok(Ok((status, body, retry_after))) => {
            tally.count(status, 1);
            if (200..300).contains(&status) {
                tally.record_latency(r.due);
                if let Some(acks) = &shape.acks {
                    let answered = Instant::now();
                    lock(acks).push(Ack {
                        send,
                        due: r.due,
                        answered,
                    });
                }
                if let Ok(a) = serde_json::from_slice::<AnswerBody>(&body) {
                    lock(&tally.decisions).add(&a);
                }
            } else {
                if status == 503 && !retry_after {
                    tally.no_retry_after.fetch_add(1, Ordering::Relaxed);
                }
                tally.problem(|| format!("{status} {}", String::from_utf8_lossy(&body)));
            }
        }
        Ok(Err(e)) => {
            tally.errors.fetch_add(1, Ordering::Relaxed);
            tally.problem(|| format!("request failed: {e:#}"));
        }
        Err(_) => {
            tally.timed_out(1);
            tally.problem(|| format!("no answer within {TIMEOUT:?} of the due time"));
        }
    }
    tally.answered();
}

async fn send_batch(r: Request<'_>, tally: &Tally, slots: &Semaphore, shape: &Shape) {
    let items = r.sends.end - r.sends.start;
    let first = r.sends.start;
    let attempt = async {
        let _slot = slots.acquire().await?;
        post(
            r.client,
            r.to,
            r.feed.batch_json(r.sends.clone(), chrono::Utc::now()),
        )
        .await
    };
    let result = tokio::time::timeout_at((r.due + TIMEOUT).into(), attempt).await;
    tally.answered();
    let answered = Instant::now();
    match result {
        Ok(Ok((200, body, _))) => match serde_json::from_slice::<BatchBody>(&body) {
            Ok(answer) => {
                tally.record_latency(r.due);
                let mut decisions = Decisions::default();
                let mut acked = Vec::new();
                for item in &answer.results {
                    tally.count(item.status, 1);
                    if (200..300).contains(&item.status) {
                        acked.push(Ack {
                            send: first + item.index as u64,
                            due: r.due,
                            answered,
                        });
                    }
                    if let Some(a) = &item.answer {
                        decisions.add(a);
                    }
                    if let Some(p) = item.problem.as_ref().filter(|_| item.status >= 300) {
                        tally.problem(|| format!("item {}: {p}", item.status));
                    }
                }
                lock(&tally.decisions).merge(&decisions);
                if let Some(acks) = &shape.acks {
                    lock(acks).extend(acked);
                }
            }
            Err(e) => {
                tally.errors.fetch_add(items, Ordering::Relaxed);
                tally.problem(|| format!("unreadable batch answer: {e}"));
            }
        },
        Ok(Ok((status, body, retry_after))) => {
            tally.count(status, items);
            if status == 503 && !retry_after {
                tally.no_retry_after.fetch_add(1, Ordering::Relaxed);
            }
            tally.problem(|| format!("batch {status} {}", String::from_utf8_lossy(&body)));
        }
        Ok(Err(e)) => {
            tally.errors.fetch_add(items, Ordering::Relaxed);
            tally.problem(|| format!("request failed: {e:#}"));
        }
        Err(_) => {
            tally.timed_out(items);
            tally.problem(|| format!("no answer within {TIMEOUT:?} of the due time"));
        }
    }
}

/// Batch POSTs of `batch` transactions from `feed` to `uri` from `clients`
/// concurrent clients, each sending its next batch when the last is
/// answered, for `duration`.
pub async fn batches(
    client: Client,
    to: Endpoint,
    feed: Feed,
    clients: usize,
    batch: usize,
    duration: Duration,
) -> anyhow::Result<Figures> {
    let bar = spinner()?;
    let start = Instant::now();
    let deadline = start + duration;
    let tally = Arc::new(Tally::new(start));
    let mut tasks = JoinSet::new();
    for _ in 0..clients.max(1) {
        let (client, to, feed, tally) = (client.clone(), to.clone(), feed.clone(), tally.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let sends = feed.take(batch);
                let items = sends.end - sends.start;
                let sent_at = Instant::now();
                let body = feed.batch_json(sends, chrono::Utc::now());
                tally.sent.fetch_add(items, Ordering::Relaxed);
                let result = tokio::time::timeout(TIMEOUT, post(&client, &to, body)).await;
                tally.answered();
                match result {
                    Ok(Ok((200, body, _))) => match serde_json::from_slice::<BatchBody>(&body) {
                        Ok(answer) => {
                            tally.record_latency(sent_at);
                            let mut decisions = Decisions::default();
                            for item in &answer.results {
                                tally.count(item.status, 1);
                                if let Some(a) = &item.answer {
                                    decisions.add(a);
                                }
                                if let Some(p) =
                                    item.problem.as_ref().filter(|_| item.status >= 300)
                                {
                                    tally.problem(|| format!("item {}: {p}", item.status));
                                }
                            }
                            lock(&tally.decisions).merge(&decisions);
                        }
                        Err(e) => {
                            tally.errors.fetch_add(items, Ordering::Relaxed);
                            tally.problem(|| format!("unreadable batch answer: {e}"));
                        }
                    },
                    Ok(Ok((status, body, _))) => {
                        tally.count(status, items);
                        tally.problem(|| {
                            format!("batch {status} {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Ok(Err(e)) => {
                        tally.errors.fetch_add(items, Ordering::Relaxed);
                        tally.problem(|| format!("request failed: {e:#}"));
                    }
                    Err(_) => {
                        tally.timed_out(items);
                        tally.problem(|| format!("no answer within {TIMEOUT:?}"));
                    }
                }
            }
        });
    }
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                bar.set_message(tally.progress("batch POSTs"));
                bar.tick();
            }
        }
    }
    let figures = tally.figures(Duration::ZERO);
    bar.finish_and_clear();
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spaces_sends_evenly() {
        let s = OpenLoop::new(5000, Duration::from_secs(10));
        assert_eq!(s.total(), 50_000);
        assert_eq!(s.due_at(0), Duration::ZERO);
        assert_eq!(s.due_at(1), Duration::from_micros(200));
        assert_eq!(s.due_at(5000), Duration::from_secs(1));
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(199)), 1);
        assert_eq!(s.due_by(Duration::from_micros(200)), 2);
        assert_eq!(s.due_by(Duration::from_millis(1)), 6);
        assert_eq!(s.due_by(Duration::from_secs(100)), 50_000, "capped");
    }

    #[test]
    fn a_send_is_due_exactly_from_its_due_time() {
        // Rates that do not divide a second: no rounding the wrong way.
        for rate in [1, 3, 7, 333, 4999, 5000, 12_345] {
            let s = OpenLoop::new(rate, Duration::from_secs(2));
            for i in 0..s.total() {
                let at = s.due_at(i);
                assert!(s.due_by(at) > i, "rate {rate}: send {i} due at {at:?}");
                if i > 0 && at > s.due_at(i - 1) {
                    assert_eq!(
                        s.due_by(at - Duration::from_nanos(1)),
                        i,
                        "rate {rate}, send {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram_in_milliseconds() {
        let tally = Tally::new(Instant::now());
        {
            let mut h = lock(&tally.latency);
            for us in 1..=10_000u64 {
                h.record(us).expect("in range");
            }
        }
        let f = tally.figures(Duration::from_secs(1));
        assert!((f.ms(0.5) - 5.0).abs() < 0.01, "{}", f.ms(0.5));
        assert!((f.ms(0.99) - 9.9).abs() < 0.01, "{}", f.ms(0.99));
        assert!((f.ms(0.999) - 9.99).abs() < 0.01, "{}", f.ms(0.999));
    }

    #[test]
    fn statuses_are_counted_as_accepted_overloaded_or_errors() {
        let tally = Tally::new(Instant::now());
        tally.count(201, 1);
        tally.count(200, 2);
        tally.count(503, 4);
        tally.count(422, 8);
        tally.count(500, 16);
        tally.count(504, 32);
        tally.timed_out(64);
        let f = tally.figures(Duration::from_secs(2));
        assert_eq!((f.accepted, f.overloaded, f.errors), (3, 4, 120));
        assert_eq!((f.server_errors, f.timeouts), (48, 64));
        assert_eq!(f.accepted_per_sec(), 1.5);
    }
}
