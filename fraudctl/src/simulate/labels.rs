//! The label feed (`--label-delay`, `--labels-out`): ground truth as it
//! reaches a fraud team, late. Each fraudulent transaction gets a fraud
//! label from `chargeback`, arriving `delay x U(0.5, 1.5)` after the
//! transaction (a chargeback comes when the card holder reads a statement,
//! not at a fixed lag); the draw is a function of the seed and the
//! transaction, so the feed is deterministic like the rest.
//!
//! Legitimate transactions get no label: chargebacks only say "fraud", and
//! "not fraud" verdicts come from analysts reviewing alerts, which depend on
//! what the service decided, not on the simulation. A learner reads an
//! unlabelled transaction as legitimate once its labels would have come.
//!
//! `--label-delay` is in simulated days; with `--clock realtime --speed S`
//! it shrinks with the rest of the timeline.

use super::Simulation;
use super::population::splitmix;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::io::Write;

/// Where chargeback labels say they come from.
pub const SOURCE: &str = "chargeback";

/// One label and when it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// Index of the labelled transaction in the simulation.
    pub tx: usize,
    pub is_fraud: bool,
    pub source: &'static str,
    pub arrives_at: DateTime<Utc>,
}

/// The body `POST /v1/labels` takes (and each item of the batch endpoint).
#[derive(Serialize)]
pub struct LabelBody<'a> {
    pub transaction_id: &'a str,
    pub is_fraud: bool,
    pub source: &'a str,
}

/// One line of `--labels-out`.
#[derive(Serialize)]
struct LabelLine<'a> {
    #[serde(flatten)]
    body: LabelBody<'a>,
    arrives_at: String,
}

/// The labels of `sim` with a mean delay of `delay_days` (simulated days;
/// event times run `speed` times faster than life), sorted by arrival.
pub fn feed(sim: &Simulation, delay_days: f64, speed: f64, seed: u64) -> Vec<Label> {
    let speed = if speed > 0.0 { speed } else { 1.0 };
    let delay_ms = delay_days.max(0.0) * 86_400_000.0 / speed;
    let mut labels: Vec<Label> = sim
        .txs
        .iter()
        .enumerate()
        .filter(|(_, t)| t.fraud.is_some())
        .map(|(i, _)| {
            // A uniform draw in [0, 1) for this seed and transaction.
            let u = (splitmix(seed ^ 0x1abe_1000 ^ splitmix(i as u64)) >> 11) as f64
                / (1u64 << 53) as f64;
            let lag = (delay_ms * (0.5 + u)) as i64;
            Label {
                tx: i,
                is_fraud: true,
                source: SOURCE,
                arrives_at: sim.timestamps[i] + chrono::Duration::milliseconds(lag),
            }
        })
        .collect();
    labels.sort_by_key(|l| (l.arrives_at, l.tx));
    labels
}

impl Simulation {
    /// The body that posts label `l`.
    pub fn label_body(&self, l: &Label) -> LabelBody<'_> {
        LabelBody {
            transaction_id: &self.ids[l.tx],
            is_fraud: l.is_fraud,
            source: l.source,
        }
    }

    /// The label feed as JSON lines, in arrival order.
    pub fn write_labels(&self, w: &mut impl Write) -> anyhow::Result<()> {
        for l in &self.labels {
            let line = LabelLine {
                body: self.label_body(l),
                arrives_at: l.arrives_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            };
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}
