//! `fraudctl simulate`: realistic traffic with labelled fraud.
//!
//! - `world`, `persona`, `population`: cities, the four personas, customers;
//! - `timeline`: each customer's legitimate transactions;
//! - `fraud`: the injected fraud episodes of the default world (eight
//!   scenarios);
//! - `worlds`: `--world`, which fraud is injected: the default world's or
//!   one the built-in rules were not written for (breached merchants,
//!   night-time fraud, slow draining), into the same legitimate traffic;
//! - `labels`: the label feed (`--label-delay`, `--labels-out`): chargebacks
//!   with the time each arrives;
//! - `tx`: a transaction's wire JSON (the one body every generated
//!   transaction is sent as) and ground-truth row;
//! - `send`: the open-loop sender to the single or batch endpoint, labels
//!   interleaved as their arrival time comes;
//! - `feed`: the same traffic, endless and dated "just now", for the
//!   benchmarks (`bench ingest`, `bench replay`).
//!
//! Everything but the clock is a function of `--seed`: with the same seed,
//! customers, `--days`, `--start`, `--world` and `--label-delay`, the output
//! is byte for byte the same (and the default world's is what it was before
//! worlds existed).

pub mod feed;
pub mod fraud;
pub mod labels;
pub mod persona;
pub mod population;
pub mod send;
#[cfg(test)]
mod tests;
pub mod timeline;
pub mod tx;
pub mod world;
pub mod worlds;

use anyhow::Context;
use chrono::{DateTime, DurationRound, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use labels::Label;
use std::io::Write;
use std::path::PathBuf;
use timeline::Period;
use tx::SimTx;
use worlds::{Breach, World};

/// How event times relate to the wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// `--days` of history ending now, sent as fast as `--rate` allows.
    Simulated,
    /// The timeline starts now and each transaction is sent when its event
    /// time comes (`--speed` > 1 plays it faster: windows shrink with it).
    Realtime,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Same seed, same traffic.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 10_000)]
    pub customers: u32,
    /// Simulated days of history.
    #[arg(long, default_value_t = 7.0)]
    pub days: f64,
    /// Share of transactions that are fraudulent.
    #[arg(long, default_value_t = 0.01)]
    pub fraud_rate: f64,
    /// Start of the simulated period (RFC 3339); default: `--days` before
    /// now, to the minute (simulated clock) or now (real-time clock).
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    #[arg(long, value_enum, default_value = "simulated")]
    pub clock: Clock,
    /// Real-time clock only: how much faster than life to play.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// A running command side to send to, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub target: Option<String>,
    /// Bearer token for the target (role ingest).
    #[arg(long, env = "SENTINEL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Transactions per second offered to the target (simulated clock).
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// Transactions per request: 1 uses POST /v1/transactions, more uses
    /// /v1/transactions/batch (at most 1,000).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Write the transactions as JSON lines here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the ground truth (CSV: transaction_id, customer_id, is_fraud,
    /// scenario, episode, event_time, amount) here.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Transaction ids are `{prefix}-{n}`; default `sim{seed}`.
    #[arg(long)]
    pub id_prefix: Option<String>,
    /// No progress bar (the demo prints its own summary).
    #[arg(long)]
    pub quiet: bool,
}

/// `--world` and the label feed: what `simulate` adds to the traffic the
/// demo and the benchmarks share (kept beside [`SimulateArgs`], so the
/// callers that want today's traffic need not name them).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WorldArgs {
    /// Which fraud is injected into the same legitimate traffic: the
    /// default world (what the built-in rules were written for) or one they
    /// were not written for. See docs/detection.md, "Simulator worlds".
    #[arg(long, value_enum, default_value = "default")]
    pub world: World,
    /// Mean days from a fraudulent transaction to its chargeback label
    /// (each drawn from 0.5x-1.5x of it). Above 0, or with --labels-out,
    /// labels are made: sent to --target as their arrival comes (interleaved
    /// with the transactions) and written to --labels-out. 0 and no
    /// --labels-out: no labels, as before.
    #[arg(long, default_value_t = 0.0)]
    pub label_delay: f64,
    /// Write the label feed as JSON lines (transaction_id, is_fraud, source,
    /// arrives_at), in arrival order.
    #[arg(long)]
    pub labels_out: Option<PathBuf>,
    /// Bearer token for posting labels (role analyst); default: --token.
    #[arg(long, env = "SENTINEL_LABEL_TOKEN", hide_env_values = true)]
    pub label_token: Option<String>,
}

impl WorldArgs {
    /// Whether a label feed is asked for.
    pub fn labels(&self) -> bool {
        self.label_delay > 0.0 || self.labels_out.is_some()
    }
}

/// `fraudctl simulate`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateCommand {
    #[command(flatten)]
    pub args: SimulateArgs,
    #[command(flatten)]
    pub world: WorldArgs,
}

/// The generated traffic, in event-time order, with ids and timestamps.
pub struct Simulation {
    pub txs: Vec<SimTx>,
    pub ids: Vec<String>,
    pub timestamps: Vec<DateTime<Utc>>,
    pub world: World,
    /// The label feed in arrival order (empty unless asked for).
    pub labels: Vec<Label>,
    /// `compromised-merchants`: the breaches (ground truth for analysts).
    pub breaches: Vec<Breach>,
}

/// What a [`Config`] leaves at today's behaviour: the fraud world and the
/// label feed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    pub world: World,
    /// Mean label delay in simulated days; `None`: no label feed.
    pub label_delay_days: Option<f64>,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub customers: u32,
    pub days: f64,
    pub fraud_rate: f64,
    pub start: DateTime<Utc>,
    /// Event times are `start + offset / speed`.
    pub speed: f64,
    pub id_prefix: String,
}

/// The whole simulation of the default world, without labels; pure and
/// deterministic.
pub fn generate(cfg: &Config) -> Simulation {
    generate_with(cfg, Extras::default())
}

/// The whole simulation in `extras.world`, with its label feed if asked;
/// pure and deterministic.
pub fn generate_with(cfg: &Config, extras: Extras) -> Simulation {
    let (txs, breaches) = transactions_in(cfg, extras.world);
    let width = txs.len().max(1).to_string().len().max(6);
    let ids = (1..=txs.len())
        .map(|i| format!("{}-{i:0width$}", cfg.id_prefix))
        .collect();
    let speed = if cfg.speed > 0.0 { cfg.speed } else { 1.0 };
    let timestamps = txs
        .iter()
        .map(|t| cfg.start + chrono::Duration::milliseconds((t.at_ms as f64 / speed) as i64))
        .collect();
    let mut sim = Simulation {
        txs,
        ids,
        timestamps,
        world: extras.world,
        labels: Vec::new(),
        breaches,
    };
    if let Some(days) = extras.label_delay_days {
        sim.labels = labels::feed(&sim, days, speed, cfg.seed);
    }
    sim
}

/// Every transaction of the simulation (legitimate and injected fraud) in
/// the default world, in event-time order, before ids and timestamps are
/// given.
pub fn transactions(cfg: &Config) -> Vec<SimTx> {
    transactions_in(cfg, World::Default).0
}

/// Every transaction of the simulation in `world`, in event-time order, and
/// the world's breaches if it has any.
pub fn transactions_in(cfg: &Config, world: World) -> (Vec<SimTx>, Vec<Breach>) {
    let span_ms = (cfg.days.max(0.0) * 86_400_000.0) as i64;
    let period = Period {
        start: cfg.start,
        span_ms: span_ms.max(60_000),
    };
    let customers = population::population(cfg.seed, cfg.customers);
    let mut txs: Vec<SimTx> = customers
        .iter()
        .flat_map(|c| timeline::legit(c, period))
        .collect();
    let injected = worlds::inject(world, &customers, &txs, period, cfg.fraud_rate, cfg.seed);
    txs.extend(injected.txs);
    txs.sort_by_key(|t| (t.at_ms, t.customer, t.seq));
    (txs, injected.breaches)
}

impl Simulation {
    pub fn json(&self, i: usize) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(512);
        self.txs[i].write_json(&self.ids[i], self.timestamps[i], &mut out)?;
        Ok(out)
    }

    pub fn fraud_count(&self) -> usize {
        self.txs.iter().filter(|t| t.fraud.is_some()).count()
    }

    pub fn write_jsonl(&self, w: &mut impl Write) -> anyhow::Result<()> {
        for i in 0..self.txs.len() {
            w.write_all(&self.json(i)?)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn write_truth(&self, w: impl Write) -> anyhow::Result<()> {
        let mut csv = csv::Writer::from_writer(w);
        for (i, t) in self.txs.iter().enumerate() {
            csv.serialize(t.truth(&self.ids[i], self.timestamps[i]))?;
        }
        csv.flush()?;
        Ok(())
    }
}

pub async fn run(command: SimulateCommand) -> anyhow::Result<()> {
    let SimulateCommand { args, world } = command;
    anyhow::ensure!(
        args.target.is_some() || args.out.is_some() || world.labels_out.is_some(),
        "say where the traffic goes: --target URL and/or --out FILE.jsonl"
    );
    anyhow::ensure!((1..=1000).contains(&args.batch), "--batch must be 1..=1000");
    anyhow::ensure!(args.days > 0.0, "--days must be positive");
    anyhow::ensure!(
        world.label_delay.is_finite() && world.label_delay >= 0.0,
        "--label-delay must be 0 or more days"
    );
    let now = Utc::now();
    let start = match (args.start, args.clock) {
        (Some(s), _) => s,
        (None, Clock::Simulated) => {
            let back = chrono::Duration::milliseconds((args.days * 86_400_000.0) as i64);
            (now - back)
                .duration_trunc(chrono::Duration::minutes(1))
                .context("rounding the start")?
                - chrono::Duration::minutes(1)
        }
        (None, Clock::Realtime) => now,
    };
    let cfg = Config {
        seed: args.seed,
        customers: args.customers,
        days: args.days,
        fraud_rate: args.fraud_rate,
        start,
        speed: if args.clock == Clock::Realtime {
            args.speed
        } else {
            1.0
        },
        id_prefix: args
            .id_prefix
            .clone()
            .unwrap_or_else(|| format!("sim{}", args.seed)),
    };
    let spinner = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg}")?)
        .with_message(format!(
            "generating {} customers x {} days",
            cfg.customers, cfg.days
        ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let extras = Extras {
        world: world.world,
        label_delay_days: world.labels().then_some(world.label_delay),
    };
    let sim = generate_with(&cfg, extras);
    spinner.finish_and_clear();
    let last = sim.timestamps.last().copied().unwrap_or(start);
    eprintln!(
        "{} transactions ({} fraudulent, {:.2}%) from {} customers, {} .. {}",
        sim.txs.len(),
        sim.fraud_count(),
        100.0 * sim.fraud_count() as f64 / sim.txs.len().max(1) as f64,
        cfg.customers,
        start.to_rfc3339(),
        last.to_rfc3339(),
    );
    if sim.world != World::Default {
        let name = clap::ValueEnum::to_possible_value(&sim.world)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        eprintln!("world {name}: fraud labelled {:?}", sim.world.scenarios());
    }
    if !sim.breaches.is_empty() {
        let cards: usize = sim.breaches.iter().map(|b| b.compromised).sum();
        eprintln!(
            "{} merchants breached ({} cards compromised), e.g. {}",
            sim.breaches.len(),
            cards,
            sim.breaches
                .iter()
                .take(3)
                .map(|b| b.merchant.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if world.labels() {
        let in_period = sim.labels.iter().filter(|l| l.arrives_at <= last).count();
        eprintln!(
            "{} chargeback labels, {} arriving by the last transaction",
            sim.labels.len(),
            in_period
        );
    }
    if let Some(path) = &world.labels_out {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        sim.write_labels(&mut w)
            .and_then(|()| w.flush().map_err(Into::into))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("labels: {}", path.display());
    }
    if let Some(path) = &args.truth {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        sim.write_truth(std::io::BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("ground truth: {}", path.display());
    }
    if let Some(path) = &args.out {
        if args.clock == Clock::Realtime {
            eprintln!("note: real-time event times lie ahead; the file is for --clock simulated");
        }
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        sim.write_jsonl(&mut w)
            .and_then(|()| w.flush().map_err(Into::into))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("transactions: {}", path.display());
    }
    if let Some(base) = &args.target {
        let target = crate::http::Target::new(base, args.token.as_deref(), args.connections)?;
        let label_token = world.label_token.as_deref().or(args.token.as_deref());
        let label_target = crate::http::Target::new(base, label_token, args.connections)?;
        let report = send::send_to(&sim, &target, &label_target, &args).await?;
        report.print();
    }
    Ok(())
}
