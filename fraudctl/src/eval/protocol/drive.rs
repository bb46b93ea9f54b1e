//! The protocol's HTTP side: what an outside evaluator does, through the
//! public endpoints only. Transactions go in event-time order, one request
//! at a time (so a customer's are decided in order, and the log holds them
//! in the order sent), at most [`PER_REQUEST`] a request; labels likewise;
//! training is the `fraudctl model train --promote` child process, and
//! `GET /v1/policy` says whether it put a model live. Every request and
//! label posted is counted in [`Mechanics`], which the report carries (the
//! protocol's own test checks its rules from it and from the log).

use super::{LabelSet, ProtocolArgs, Timings};
use crate::http::{BatchAnswer, BatchItem, Target, TxAnswer};
use crate::simulate::Simulation;
use crate::simulate::labels::SOURCE as CHARGEBACK;
use anyhow::Context;
use hyper::body::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// Items per batch request (the endpoints' limit).
pub const PER_REQUEST: usize = 1_000;
/// Source of a "not fraud" label (`--labels all`).
const NOT_FRAUD_SOURCE: &str = "ground-truth";
/// How often a batch's items answered 503 are sent again.
const ITEM_RETRIES: usize = 30;

/// How the protocol was carried out, counted as it went.
#[derive(Debug, Default, Serialize)]
pub struct Mechanics {
    pub transaction_requests: u64,
    pub max_transactions_per_request: u64,
    pub label_requests: u64,
    pub max_labels_per_request: u64,
    /// Answered 201 / 200 (a repeat) / anything else / no answer.
    pub transactions_recorded: u64,
    pub transactions_repeated: u64,
    pub transactions_refused: u64,
    pub labels_recorded: u64,
    pub labels_repeated: u64,
    pub labels_refused: u64,
    /// Labels of first-half transactions, posted before training.
    pub labels_first_half: u64,
    /// Labels of second-half transactions, posted once due.
    pub labels_second_half: u64,
    /// Second-half labels never posted: not yet due when the period ended.
    pub labels_not_due_by_end: u64,
    /// The youngest second-half label's transaction, in simulated days, by
    /// the simulated clock (the end of the day just posted) when posted.
    pub min_label_age_days: Option<f64>,
    /// Simulated days posted one at a time.
    pub second_half_days: u64,
    /// Waits on 503 (whole requests and items).
    pub retries: u64,
    pub first_problem: Option<String>,
}

/// What training did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainStatus {
    /// It succeeded and `GET /v1/policy` named its model in time.
    Promoted,
    /// It succeeded but no model went live (it refused to promote, or the
    /// command side did not switch within `--promote-timeout`).
    NotPromoted,
    /// It failed.
    Failed,
    /// This build has no `model train` (the second half is rules only).
    Unavailable,
}

#[derive(Debug, Serialize)]
pub struct Training {
    pub status: TrainStatus,
    pub exit_code: Option<i32>,
    pub seconds: f64,
    /// Seconds from its exit to the model being live.
    pub promotion_seconds: Option<f64>,
    pub model_version: Option<String>,
    pub policy_before: String,
    pub policy_after: String,
    /// The last lines it wrote (stdout then stderr).
    pub output_tail: Vec<String>,
}

/// `GET /v1/policy`, the parts read here.
#[derive(Debug, Clone, Deserialize)]
pub struct LivePolicy {
    pub version: String,
    #[serde(default)]
    pub model_version: Option<String>,
    pub toml: String,
}

/// What the service answered for one transaction.
#[derive(Debug, Clone)]
pub struct Served {
    pub decision: Option<String>,
    pub alerted: bool,
}

/// The result of driving: the answers by simulation index, and the policy
/// that was live before training (the rules-only baseline).
pub struct Driven {
    pub served: Vec<Option<Served>>,
    pub baseline: LivePolicy,
    pub mechanics: Mechanics,
    pub training: Training,
}

pub struct Driver {
    target: Target,
    served: Vec<Option<Served>>,
    mechanics: Mechanics,
    retries: AtomicU64,
}

impl Driver {
    pub fn new(base: &str, sim: &Simulation) -> anyhow::Result<Driver> {
        Ok(Driver {
            target: Target::new(base, None, 2)?,
            served: vec![None; sim.txs.len()],
            mechanics: Mechanics::default(),
            retries: AtomicU64::new(0),
        })
    }

    /// Phases 1-4.
    pub async fn run(
        mut self,
        args: &ProtocolArgs,
        sim: &Simulation,
        first_half: usize,
        url: &str,
        timings: &mut Timings,
    ) -> anyhow::Result<Driven> {
        let baseline = self.policy().await?;
        let wanted = |i: usize| args.labels == LabelSet::All || sim.txs[i].fraud.is_some();

        let phase = Instant::now();
        let bar = progress(first_half as u64, "first half: transactions")?;
        self.post_transactions(sim, 0..first_half, &bar).await?;
        bar.finish_and_clear();
        timings.first_half = phase.elapsed().as_secs_f64();

        let phase = Instant::now();
        let labels: Vec<usize> = (0..first_half).filter(|&i| wanted(i)).collect();
        let bar = progress(labels.len() as u64, "first half: labels")?;
        self.post_labels(sim, &labels, &bar).await?;
        self.mechanics.labels_first_half = labels.len() as u64;
        bar.finish_and_clear();
        timings.first_half_labels = phase.elapsed().as_secs_f64();

        let phase = Instant::now();
        let training = self.train(url, &baseline, args.promote_timeout).await?;
        timings.train = phase.elapsed().as_secs_f64();
        match training.status {
            TrainStatus::Promoted => eprintln!(
                "model {} live in policy {}",
                training.model_version.as_deref().unwrap_or("?"),
                training.policy_after
            ),
            other => eprintln!(
                "training {other:?} (exit {:?}); the second half is decided without a model\n  {}",
                training.exit_code,
                training.output_tail.join("\n  ")
            ),
        }

        let phase = Instant::now();
        let second = (sim.txs.len() - first_half) as u64;
        let bar = progress(second, "second half")?;
        let delay = chrono::Duration::milliseconds((args.label_delay_days * 86_400_000.0) as i64);
        let split = args.start + chrono::Duration::days(i64::from(args.days / 2));
        let mut next_tx = first_half;
        let mut next_due = first_half;
        let mut day = 0;
        while next_tx < sim.txs.len() {
            day += 1;
            let clock = split + chrono::Duration::days(day);
            let until = sim.timestamps.partition_point(|t| *t < clock);
            bar.set_message(format!("day {day}"));
            self.post_transactions(sim, next_tx..until, &bar).await?;
            next_tx = until;
            let from = next_due;
            while next_due < next_tx && sim.timestamps[next_due] + delay < clock {
                next_due += 1;
            }
            let due: Vec<usize> = (from..next_due).filter(|&i| wanted(i)).collect();
            if let Some(&youngest) = due.iter().max_by_key(|&&i| sim.timestamps[i]) {
                let age =
                    (clock - sim.timestamps[youngest]).num_milliseconds() as f64 / 86_400_000.0;
                let min = self.mechanics.min_label_age_days.get_or_insert(age);
                *min = min.min(age);
            }
            self.post_labels(sim, &due, &ProgressBar::hidden()).await?;
            self.mechanics.labels_second_half += due.len() as u64;
        }
        self.mechanics.second_half_days = day as u64;
        self.mechanics.labels_not_due_by_end =
            (next_due..sim.txs.len()).filter(|&i| wanted(i)).count() as u64;
        bar.finish_and_clear();
        timings.second_half = phase.elapsed().as_secs_f64();
        self.mechanics.retries = self.retries.into_inner();
        Ok(Driven {
            served: self.served,
            baseline,
            mechanics: self.mechanics,
            training,
        })
    }

    async fn policy(&self) -> anyhow::Result<LivePolicy> {
        let reply = self.target.get("/v1/policy").await?;
        anyhow::ensure!(
            reply.status == 200,
            "GET /v1/policy: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        serde_json::from_slice(&reply.body).context("reading GET /v1/policy")
    }

    /// `fraudctl model train --promote` exactly as the evaluator runs it:
    /// this executable, only `DATABASE_URL` set for it, no other flag.
    async fn train(
        &self,
        url: &str,
        before: &LivePolicy,
        timeout_secs: u64,
    ) -> anyhow::Result<Training> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let spinner = super::spinner("fraudctl model train --promote".into())?;
        let started = Instant::now();
        let output = tokio::process::Command::new(exe)
            .args(["model", "train", "--promote"])
            .env("DATABASE_URL", url)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("running fraudctl model train")?;
        spinner.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let output_tail = lines[lines.len().saturating_sub(12)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect();
        let mut status = if output.status.success() {
            TrainStatus::NotPromoted
        } else if text.contains("unrecognized subcommand") {
            TrainStatus::Unavailable
        } else {
            TrainStatus::Failed
        };
        // Even a failure might have changed the policy: read what is live.
        let waited = Instant::now();
        let mut after = self.policy().await?;
        if status == TrainStatus::NotPromoted {
            let deadline = Duration::from_secs(timeout_secs);
            while after.model_version.is_none() && waited.elapsed() < deadline {
                tokio::time::sleep(Duration::from_millis(250)).await;
                after = self.policy().await?;
            }
            if after.model_version.is_some() {
                status = TrainStatus::Promoted;
            }
        }
        Ok(Training {
            status,
            exit_code: output.status.code(),
            seconds,
            promotion_seconds: (status == TrainStatus::Promoted)
                .then(|| waited.elapsed().as_secs_f64()),
            model_version: after.model_version.clone(),
            policy_before: before.version.clone(),
            policy_after: after.version,
            output_tail,
        })
    }

    /// Transactions `range` (in event-time order), [`PER_REQUEST`] a request.
    async fn post_transactions(
        &mut self,
        sim: &Simulation,
        range: Range<usize>,
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        let indices: Vec<usize> = range.collect();
        for chunk in indices.chunks(PER_REQUEST) {
            let bodies = chunk
                .iter()
                .map(|&i| sim.json(i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let m = &mut self.mechanics;
            m.transaction_requests += 1;
            m.max_transactions_per_request = m.max_transactions_per_request.max(chunk.len() as u64);
            let items = self.post_batch("/v1/transactions/batch", bodies).await?;
            for (k, item) in items.into_iter().enumerate() {
                let answer = item
                    .answer
                    .as_ref()
                    .and_then(|a| TxAnswer::deserialize(a).ok());
                let m = &mut self.mechanics;
                match item.status {
                    201 => m.transactions_recorded += 1,
                    200 => m.transactions_repeated += 1,
                    _ => {
                        m.transactions_refused += 1;
                        m.first_problem.get_or_insert_with(|| {
                            format!("transaction {}: {:?}", item.status, item.problem)
                        });
                    }
                }
                self.served[chunk[k]] = Some(Served {
                    alerted: answer.as_ref().is_some_and(|a| !a.alerts.is_empty()),
                    decision: answer.map(|a| a.decision),
                });
            }
            bar.inc(chunk.len() as u64);
        }
        Ok(())
    }

    /// The labels of transactions `txs` (ground truth), [`PER_REQUEST`] a
    /// request.
    async fn post_labels(
        &mut self,
        sim: &Simulation,
        txs: &[usize],
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        for chunk in txs.chunks(PER_REQUEST) {
            let bodies = chunk
                .iter()
                .map(|&i| {
                    let fraud = sim.txs[i].fraud.is_some();
                    let body = crate::simulate::labels::LabelBody {
                        transaction_id: &sim.ids[i],
                        is_fraud: fraud,
                        source: if fraud { CHARGEBACK } else { NOT_FRAUD_SOURCE },
                    };
                    serde_json::to_vec(&body).map_err(anyhow::Error::from)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let m = &mut self.mechanics;
            m.label_requests += 1;
            m.max_labels_per_request = m.max_labels_per_request.max(chunk.len() as u64);
            let items = self.post_batch("/v1/labels/batch", bodies).await?;
            for item in items {
                let m = &mut self.mechanics;
                match item.status {
                    201 => m.labels_recorded += 1,
                    200 => m.labels_repeated += 1,
                    _ => {
                        m.labels_refused += 1;
                        m.first_problem.get_or_insert_with(|| {
                            format!("label {}: {:?}", item.status, item.problem)
                        });
                    }
                }
            }
            bar.inc(chunk.len() as u64);
        }
        Ok(())
    }

    /// One batch request, then again for the items answered 503 (overload:
    /// "not now"); the answers in the order of `bodies`.
    async fn post_batch(&self, path: &str, bodies: Vec<Vec<u8>>) -> anyhow::Result<Vec<BatchItem>> {
        let mut answers: Vec<Option<BatchItem>> = (0..bodies.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        for attempt in 0..=ITEM_RETRIES {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                self.retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut array = Vec::with_capacity(pending.iter().map(|&i| bodies[i].len() + 1).sum());
            array.push(b'[');
            for (k, &i) in pending.iter().enumerate() {
                if k > 0 {
                    array.push(b',');
                }
                array.extend_from_slice(&bodies[i]);
            }
            array.push(b']');
            let reply = self
                .target
                .post_patiently(path, Bytes::from(array), &self.retries)
                .await?;
            anyhow::ensure!(
                reply.status == 200,
                "{path}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            let answer: BatchAnswer =
                serde_json::from_slice(&reply.body).with_context(|| format!("reading {path}"))?;
            let mut again = Vec::new();
            for mut item in answer.results {
                let Some(&original) = pending.get(item.index) else {
                    anyhow::bail!("{path} answered item {} of {}", item.index, pending.len());
                };
                if item.status == 503 && attempt < ITEM_RETRIES {
                    again.push(original);
                    continue;
                }
                item.index = original;
                answers[original] = Some(item);
            }
            again.sort_unstable();
            pending = again;
        }
        answers
            .into_iter()
            .enumerate()
            .map(|(i, a)| a.with_context(|| format!("{path}: no answer for item {i}")))
            .collect()
    }
}

fn progress(len: u64, message: &str) -> anyhow::Result<ProgressBar> {
    Ok(ProgressBar::new(len)
        .with_style(ProgressStyle::with_template(
            "{prefix} {bar:40} {pos}/{len} {per_sec} eta {eta} {msg}",
        )?)
        .with_prefix(message.to_owned()))
}
