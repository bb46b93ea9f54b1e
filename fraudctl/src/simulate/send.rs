//! Sends a simulation to a command side, open loop: request `r` is due at
//! its scheduled time whatever happened to earlier ones (up to
//! `--connections` in flight). A customer's transactions still arrive in
//! event-time order: a request waits for the previous request holding any of
//! its customers to be answered, as a card network delivers one card's
//! authorisations in order. 503s are retried after `Retry-After`.

use super::{Clock, SimulateArgs, Simulation};
use crate::http::Target;
use hyper::body::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[derive(Deserialize)]
struct AnswerBody {
    decision: String,
    #[serde(default)]
    alerts: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct BatchBody {
    results: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    index: usize,
    status: u16,
    #[serde(default)]
    answer: Option<AnswerBody>,
    #[serde(default)]
    problem: Option<serde_json::Value>,
}

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
    first_problem: Mutex<Option<String>>,
}

pub struct Report {
    pub tally: Arc<Tally>,
    pub sent: u64,
    pub elapsed: Duration,
}

impl Tally {
    fn answered(&self, status: u16, answer: Option<&AnswerBody>, problem: impl FnOnce() -> String) {
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

    fn done(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
            + self.repeated.load(Ordering::Relaxed)
            + self.refused.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
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

pub async fn send(
    sim: &Simulation,
    target: &Target,
    args: &SimulateArgs,
) -> anyhow::Result<Report> {
    let total = sim.txs.len();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64).with_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}",
        )?)
    };
    let tally = Arc::new(Tally::default());
    let slots = Arc::new(Semaphore::new(args.connections.max(1)));
    // Each customer's last request: closed when that request is answered.
    let mut last: HashMap<u32, Arc<Semaphore>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let begin = chrono::Utc::now();
    let mut next = 0;
    while next < total {
        let at = due(sim, args, begin, next);
        if at > start.elapsed() {
            bar.set_position(tally.done());
            tokio::time::sleep_until((start + at).into()).await;
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
        elapsed: start.elapsed(),
        tally,
    })
}

async fn send_one(target: &Target, body: Vec<u8>, tally: &Tally) {
    match target
        .post_patiently("/v1/transactions", Bytes::from(body), &tally.retries)
        .await
    {
        Ok(reply) => {
            let answer = serde_json::from_slice::<AnswerBody>(&reply.body).ok();
            tally.answered(reply.status, answer.as_ref(), || {
                format!("{} {}", reply.status, String::from_utf8_lossy(&reply.body))
            });
        }
        Err(e) => tally.failed(1, format!("{e:#}")),
    }
}

/// One batch; items answered 503 inside it are sent again after a second.
async fn send_batch(target: &Target, mut bodies: Vec<Vec<u8>>, tally: &Tally) {
    for _attempt in 0..30 {
        let mut array = Vec::with_capacity(bodies.iter().map(Vec::len).sum::<usize>() + 2);
        array.push(b'[');
        for (i, b) in bodies.iter().enumerate() {
            if i > 0 {
                array.push(b',');
            }
            array.extend_from_slice(b);
        }
        array.push(b']');
        let reply = match target
            .post_patiently("/v1/transactions/batch", Bytes::from(array), &tally.retries)
            .await
        {
            Ok(r) => r,
            Err(e) => return tally.failed(bodies.len() as u64, format!("{e:#}")),
        };
        if reply.status != 200 {
            let why = format!(
                "batch {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            return tally.failed(bodies.len() as u64, why);
        }
        let answer: BatchBody = match serde_json::from_slice(&reply.body) {
            Ok(a) => a,
            Err(e) => {
                return tally.failed(bodies.len() as u64, format!("unreadable batch answer: {e}"));
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
            tally.answered(item.status, item.answer.as_ref(), || {
                format!("item {}: {}", item.status, item.problem.unwrap_or_default())
            });
        }
        if again.is_empty() {
            return;
        }
        tally.retries.fetch_add(1, Ordering::Relaxed);
        bodies = again;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tally.failed(
        bodies.len() as u64,
        "still overloaded after 30 tries".into(),
    );
}
