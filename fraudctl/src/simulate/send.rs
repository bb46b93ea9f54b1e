//! Sends a simulation to a command side, open loop: request `r` is due at
//! its scheduled time whatever happened to earlier ones (up to
//! `--connections` in flight). A customer's transactions still arrive in
//! event-time order: a request waits for the previous request holding any of
//! its customers to be answered, as a card network delivers one card's
//! authorisations in order. 503s are retried after `Retry-After`.
//!
//! Labels (the feed of `super::labels`) go in arrival order, each once the
//! clock passes its arrival time: with the simulated clock, just before the
//! first transaction dated at or after it (a label arriving after the last
//! transaction goes at the end if that time has passed in the real world,
//! and not at all if it lies ahead); with the real-time clock, when its
//! time comes. A label also waits for its transaction's request to be
//! answered, so the log always has the transaction first.

use super::{Clock, SimulateArgs, Simulation};
use crate::http::{BatchAnswer, BatchItem, Target, TxAnswer};
use chrono::{DateTime, Utc};
use hyper::body::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What happened to the traffic.
#[derive(Default)]
pub struct Tally {
    pub accepted: AtomicU64,
    pub repeated: AtomicU64,
    pub refused: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
    pub approve: AtomicU64,
    pub review: AtomicU64,
    pub decline: AtomicU64,
    pub alerts: AtomicU64,
    pub labels_recorded: AtomicU64,
    pub labels_repeated: AtomicU64,
    pub labels_refused: AtomicU64,
    pub labels_failed: AtomicU64,
    first_problem: Mutex<Option<String>>,
}

pub struct Report {
    pub tally: Arc<Tally>,
    pub sent: u64,
    /// Labels sent, and those not sent because they arrive after now.
    pub labels: u64,
    pub labels_ahead: u64,
    pub elapsed: Duration,
}

impl Tally {
    fn answered(&self, status: u16, answer: Option<&TxAnswer>, problem: impl FnOnce() -> String) {
        match status {
            201 => self.accepted.fetch_add(1, Ordering::Relaxed),
            200 => self.repeated.fetch_add(1, Ordering::Relaxed),
            _ => {
                let mut first = self.first_problem.lock().unwrap_or_else(|e| e.into_inner());
                if first.is_none() {
                    *first = Some(problem());
                }
                self.refused.fetch_add(1, Ordering::Relaxed)
            }
        };
        if let Some(a) = answer {
            match a.decision.as_str() {
                "approve" => &self.approve,
                "review" => &self.review,
                _ => &self.decline,
            }
            .fetch_add(1, Ordering::Relaxed);
            self.alerts
                .fetch_add(a.alerts.len() as u64, Ordering::Relaxed);
        }
    }

    fn failed(&self, n: u64, why: String) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        let mut first = self.first_problem.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(why);
    }

    fn labelled(&self, status: u16, problem: impl FnOnce() -> String) {
        match status {
            201 => self.labels_recorded.fetch_add(1, Ordering::Relaxed),
            200 => self.labels_repeated.fetch_add(1, Ordering::Relaxed),
            _ => {
                let mut first = self.first_problem.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(problem);
                self.labels_refused.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    fn label_failed(&self, n: u64, why: String) {
        self.labels_failed.fetch_add(n, Ordering::Relaxed);
        let mut first = self.first_problem.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(why);
    }

    fn done(&self) -> u64 {
        [
            &self.accepted,
            &self.repeated,
            &self.refused,
            &self.failed,
            &self.labels_recorded,
            &self.labels_repeated,
            &self.labels_refused,
            &self.labels_failed,
        ]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .sum()
    }
}

impl Report {
    pub fn print(&self) {
        let t = &self.tally;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "sent {} in {:.1} s ({:.0}/s): {} recorded, {} repeats, {} refused, {} failed; {} waits on 503",
            self.sent,
            secs,
            self.sent as f64 / secs,
            n(&t.accepted),
            n(&t.repeated),
            n(&t.refused),
            n(&t.failed),
            n(&t.retries),
        );
        println!(
            "decisions: {} approve, {} review, {} decline; {} alerts",
            n(&t.approve),
            n(&t.review),
            n(&t.decline),
            n(&t.alerts)
        );
        if self.labels > 0 || self.labels_ahead > 0 {
            println!(
                "labels: {} sent ({} recorded, {} repeats, {} refused, {} failed); {} arrive after now, not sent",
                self.labels,
                n(&t.labels_recorded),
                n(&t.labels_repeated),
                n(&t.labels_refused),
                n(&t.labels_failed),
                self.labels_ahead,
            );
        }
        if let Some(p) = t
            .first_problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            println!("first problem: {p}");
        }
    }
}

/// When transaction `i` is due, after the start of sending.
fn due(
    sim: &Simulation,
    args: &SimulateArgs,
    begin: chrono::DateTime<chrono::Utc>,
    i: usize,
) -> Duration {
    match args.clock {
        Clock::Simulated => {
            Duration::from_nanos((i as u128 * 1_000_000_000 / u128::from(args.rate.max(1))) as u64)
        }
        Clock::Realtime => (sim.timestamps[i] - begin)
            .to_std()
            .unwrap_or(Duration::ZERO),
    }
}

/// When the labels go: which are sent at all, and when each is ready.
pub(crate) struct LabelPlan {
    clock: Clock,
    /// Simulated clock: label `j` goes before transaction `before[j]`.
    before: Vec<usize>,
    /// Real-time clock: label `j` goes this long after sending began.
    due: Vec<Duration>,
    /// The first this many labels are sent; the rest arrive after now.
    pub count: usize,
}

impl LabelPlan {
    pub(crate) fn new(sim: &Simulation, clock: Clock, begin: DateTime<Utc>) -> LabelPlan {
        let labels = &sim.labels;
        let mut plan = LabelPlan {
            clock,
            before: Vec::new(),
            due: Vec::new(),
            count: labels.len(),
        };
        match clock {
            Clock::Simulated => {
                plan.before = labels
                    .iter()
                    .map(|l| {
                        let reached = sim.timestamps.partition_point(|t| *t < l.arrives_at);
                        reached.max(l.tx + 1)
                    })
                    .collect();
                // After the last transaction the clock is the real one.
                let last = sim.timestamps.last().copied().unwrap_or(begin);
                let until = last.max(begin);
                plan.count = labels.partition_point(|l| l.arrives_at <= until);
            }
            Clock::Realtime => {
                plan.due = labels
                    .iter()
                    .map(|l| (l.arrives_at - begin).to_std().unwrap_or(Duration::ZERO))
                    .collect();
            }
        }
        plan
    }

    /// Whether label `j` may go once transactions `..next` are sent and
    /// `elapsed` has passed since sending began.
    pub(crate) fn ready(&self, sim: &Simulation, j: usize, next: usize, elapsed: Duration) -> bool {
        j < self.count
            && match self.clock {
                Clock::Simulated => self.before[j] <= next,
                Clock::Realtime => sim.labels[j].tx < next && self.due[j] <= elapsed,
            }
    }

    /// Real-time clock: when label `j` is due.
    fn due(&self, j: usize) -> Option<Duration> {
        (j < self.count).then(|| self.due.get(j).copied()).flatten()
    }
}

/// Labels a task posts, in one `POST /v1/labels/batch` (labels come due a
/// few at a time, so chunks are rarely full; the endpoint takes 1,000).
const LABELS_PER_TASK: usize = 1000;

/// Sends `sim`, its labels to the same target.
pub async fn send(
    sim: &Simulation,
    target: &Target,
    args: &SimulateArgs,
) -> anyhow::Result<Report> {
    send_to(sim, target, target, args).await
}

/// Sends `sim`'s transactions to `target` and its labels to `label_target`
/// (the same server; the token may differ: labels need the analyst role).
pub async fn send_to(
    sim: &Simulation,
    target: &Target,
    label_target: &Target,
    args: &SimulateArgs,
) -> anyhow::Result<Report> {
    let total = sim.txs.len();
    let begin = chrono::Utc::now();
    let plan = LabelPlan::new(sim, args.clock, begin);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((total + plan.count) as u64).with_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}",
        )?)
    };
    let tally = Arc::new(Tally::default());
    let slots = Arc::new(Semaphore::new(args.connections.max(1)));
    // Each customer's last request: closed when that request is answered.
    let mut last: HashMap<u32, Arc<Semaphore>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let mut next = 0;
    let mut next_label = 0;
    loop {
        // Labels whose time has come, in arrival order.
        let mut ready = next_label;
        while plan.ready(sim, ready, next, start.elapsed()) {
            ready += 1;
        }
        if ready > next_label {
            for from in (next_label..ready).step_by(LABELS_PER_TASK) {
                let to = (from + LABELS_PER_TASK).min(ready);
                let mut before: Vec<Arc<Semaphore>> = Vec::new();
                let mut bodies = Vec::with_capacity(to - from);
                for l in &sim.labels[from..to] {
                    if let Some(prev) = last.get(&sim.txs[l.tx].customer)
                        && !before.iter().any(|p| Arc::ptr_eq(p, prev))
                    {
                        before.push(prev.clone());
                    }
                    bodies.push(serde_json::to_vec(&sim.label_body(l))?);
                }
                let permit = slots.clone().acquire_owned().await?;
                let (target, tally) = (label_target.clone(), tally.clone());
                tasks.spawn(async move {
                    for prev in before {
                        // Closed (Err) once the transaction's request is answered.
                        let _ = prev.acquire().await;
                    }
                    post_labels(&target, bodies, &tally).await;
                    drop(permit);
                });
            }
            next_label = ready;
            continue;
        }
        if next >= total {
            // Only labels left: with the real-time clock, wait for the next.
            match plan.due(next_label) {
                Some(at) if args.clock == Clock::Realtime => {
                    bar.set_position(tally.done());
                    tokio::time::sleep_until((start + at).into()).await;
                    continue;
                }
                _ => break,
            }
        }
        let at = due(sim, args, begin, next);
        if at > start.elapsed() {
            bar.set_position(tally.done());
            let wake = match plan.due(next_label) {
                Some(label) if args.clock == Clock::Realtime => at.min(label),
                _ => at,
            };
            tokio::time::sleep_until((start + wake).into()).await;
            continue;
        }
        let now = start.elapsed();
        let mut end = next + 1;
        while end < total
            && end - next < args.batch
            && (args.clock == Clock::Simulated || due(sim, args, begin, end) <= now)
        {
            end += 1;
        }
        let done = Arc::new(Semaphore::new(0));
        let mut before = Vec::new();
        for t in &sim.txs[next..end] {
            // A customer twice in one batch must not wait for itself.
            if let Some(prev) = last.insert(t.customer, done.clone())
                && !Arc::ptr_eq(&prev, &done)
                && !before.iter().any(|p| Arc::ptr_eq(p, &prev))
            {
                before.push(prev);
            }
        }
        let bodies: Vec<Vec<u8>> = (next..end)
            .map(|i| sim.json(i))
            .collect::<anyhow::Result<_>>()?;
        let permit = slots.clone().acquire_owned().await?;
        let (target, shared, batch) = (target.clone(), tally.clone(), args.batch > 1);
        tasks.spawn(async move {
            let tally = shared;
            for prev in before {
                // Closed (Err) once the earlier request is answered.
                let _ = prev.acquire().await;
            }
            if batch {
                send_batch(&target, bodies, &tally).await;
            } else {
                for body in bodies {
                    send_one(&target, body, &tally).await;
                }
            }
            done.close();
            drop(permit);
        });
        next = end;
        while tasks.try_join_next().is_some() {}
        if next % 256 == 0 {
            bar.set_position(tally.done());
        }
    }
    while tasks.join_next().await.is_some() {
        bar.set_position(tally.done());
    }
    bar.finish_and_clear();
    Ok(Report {
        sent: total as u64,
        labels: next_label as u64,
        labels_ahead: (sim.labels.len() - next_label) as u64,
        elapsed: start.elapsed(),
        tally,
    })
}

/// Posts labels, one a request to `POST /v1/labels` (the one label endpoint
/// today). The batch endpoint takes `{"labels": [...]}` of the same items:
/// switching is this function and [`LABELS_PER_TASK`].
/// Posts labels through `POST /v1/labels/batch`.
async fn post_labels(target: &Target, bodies: Vec<Vec<u8>>, tally: &Tally) {
    post_batch(
        target,
        "/v1/labels/batch",
        bodies,
        tally,
        |item| {
            tally.labelled(item.status, || {
                format!(
                    "label {}: {}",
                    item.status,
                    item.problem.clone().unwrap_or_default()
                )
            })
        },
        |n, why| tally.label_failed(n, why),
    )
    .await
}

/// JSON documents joined into one array.
fn json_array(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut array =
        Vec::with_capacity(bodies.iter().map(Vec::len).sum::<usize>() + bodies.len() + 2);
    array.push(b'[');
    for (i, b) in bodies.iter().enumerate() {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(b);
    }
    array.push(b']');
    array
}

async fn send_one(target: &Target, body: Vec<u8>, tally: &Tally) {
    match target
        .post_patiently("/v1/transactions", Bytes::from(body), &tally.retries)
        .await
    {
        Ok(reply) => {
            let answer = serde_json::from_slice::<TxAnswer>(&reply.body).ok();
            tally.answered(reply.status, answer.as_ref(), || {
                format!("{} {}", reply.status, String::from_utf8_lossy(&reply.body))
            });
        }
        Err(e) => tally.failed(1, format!("{e:#}")),
    }
}

/// One batch of transactions.
async fn send_batch(target: &Target, bodies: Vec<Vec<u8>>, tally: &Tally) {
    post_batch(
        target,
        "/v1/transactions/batch",
        bodies,
        tally,
        |item| {
            let answer = item
                .answer
                .as_ref()
                .and_then(|a| TxAnswer::deserialize(a).ok());
            tally.answered(item.status, answer.as_ref(), || {
                format!(
                    "item {}: {}",
                    item.status,
                    item.problem.clone().unwrap_or_default()
                )
            })
        },
        |n, why| tally.failed(n, why),
    )
    .await
}

/// Posts `bodies` as one JSON array to a batch endpoint (`path`); items
/// answered 503 are sent again after a second. `each` sees every other
/// item's answer, `failed` the items given up on with why.
async fn post_batch(
    target: &Target,
    path: &str,
    mut bodies: Vec<Vec<u8>>,
    tally: &Tally,
    each: impl Fn(&BatchItem),
    failed: impl Fn(u64, String),
) {
    for _attempt in 0..30 {
        let reply = match target
            .post_patiently(path, Bytes::from(json_array(&bodies)), &tally.retries)
            .await
        {
            Ok(r) => r,
            Err(e) => return failed(bodies.len() as u64, format!("{e:#}")),
        };
        if reply.status != 200 {
            let why = format!(
                "{path} {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            return failed(bodies.len() as u64, why);
        }
        let answer: BatchAnswer = match serde_json::from_slice(&reply.body) {
            Ok(a) => a,
            Err(e) => {
                return failed(bodies.len() as u64, format!("unreadable batch answer: {e}"));
            }
        };
        let mut again = Vec::new();
        for item in answer.results {
            if item.status == 503 {
                if let Some(b) = bodies.get_mut(item.index) {
                    again.push(std::mem::take(b));
                }
                continue;
            }
            each(&item);
        }
        if again.is_empty() {
            return;
        }
        tally.retries.fetch_add(1, Ordering::Relaxed);
        bodies = again;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    failed(
        bodies.len() as u64,
        "still overloaded after 30 tries".into(),
    );
}
