//! `fraudctl eval --protocol temporal`: does Sentinel learn from labels?
//! The evaluation an outside evaluator runs, through the same interfaces:
//!
//! 1. the first half of a simulated world (weeks 1-4 of 8) through
//!    `POST /v1/transactions/batch`, in event-time order, 1,000 a request;
//! 2. their labels through `POST /v1/labels/batch`, 1,000 a request;
//! 3. `fraudctl model train --promote` as a child process with only
//!    `DATABASE_URL` (the way the evaluator calls it), then `GET /v1/policy`
//!    until it names a model;
//! 4. the second half one simulated day at a time, and after each day the
//!    labels of the transactions older than the label delay not yet posted;
//! 5. figures over the second half only: what the service answered
//!    (rules + model) beside what the rules-only policy live before training
//!    decided on the same transactions (from the rules recorded in the log),
//!    and the model alone's ranking (AUC) from the scores in the log.
//!
//! This module sets up (a fresh database, the services in this process) and
//! tears down; `drive` talks HTTP, `score` reads the log and computes,
//! `render` prints. Everything but wall-clock timings is a function of the
//! arguments (the simulation is seeded and starts at a fixed `--start`).

mod drive;
mod render;
mod score;

use crate::database::{self, Database};
use crate::simulate::{self, worlds::World};
use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub use drive::Mechanics;

/// Which protocol `--protocol` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Train on weeks 1-4, then score weeks 5-8 day by day with labels
    /// arriving `--label-delay-days` late.
    Temporal,
}

/// Which transactions get a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LabelSet {
    /// Fraud only (chargebacks: what the simulator's label feed makes; an
    /// unlabelled transaction reads as legitimate once its label is due).
    Fraud,
    /// Every transaction, fraud or not (a fully labelled data set).
    All,
}

/// Which services run in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Services {
    /// The command side, the projectors and the query API (`serve --role all`).
    All,
    /// The command side alone (faster; nothing here reads the read models).
    Command,
}

/// `fraudctl eval --protocol ...`'s own options (ignored without it).
#[derive(clap::Args, Debug, Clone)]
pub struct ProtocolArgs {
    /// Run an evaluation protocol end to end (simulate, serve, drive over
    /// HTTP, train, score) instead of scoring a --truth file.
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// The simulated world (see docs/detection.md, "Simulator worlds").
    #[arg(long, value_enum, default_value = "default")]
    pub world: World,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 5_000)]
    pub customers: u32,
    /// Simulated days; the first half is posted before training, the
    /// second half scored.
    #[arg(long, default_value_t = 56)]
    pub days: u32,
    /// A label is posted once its transaction is this many simulated days
    /// old (second half; the first half's labels are all posted before
    /// training).
    #[arg(long, default_value_t = 7.0)]
    pub label_delay_days: f64,
    /// The false-positive rate the model alone is also reported at.
    #[arg(long, default_value_t = 0.01)]
    pub target_fpr: f64,
    /// Share of transactions that are fraudulent.
    #[arg(long, default_value_t = 0.01)]
    pub fraud_rate: f64,
    #[arg(long, value_enum, default_value = "fraud")]
    pub labels: LabelSet,
    /// Start of the simulated period (fixed, so that times of day and days
    /// of the week, and so the figures, are the same every run).
    #[arg(long, default_value = "2026-01-05T00:00:00Z")]
    pub start: DateTime<Utc>,
    /// Keep the evaluation database (its name is printed) instead of
    /// dropping it at the end.
    #[arg(long)]
    pub keep: bool,
    /// How long to wait for `GET /v1/policy` to name the model once
    /// training has succeeded, in seconds.
    #[arg(long, default_value_t = 60)]
    pub promote_timeout: u64,
    #[arg(long, value_enum, default_value = "all")]
    pub services: Services,
}

/// What a run measured (the `--json` output).
#[derive(Debug, Serialize)]
pub struct Report {
    pub protocol: Protocol,
    pub world: String,
    pub seed: u64,
    pub customers: u32,
    pub days: u32,
    pub fraud_rate: f64,
    pub labels: LabelSet,
    pub label_delay_days: f64,
    pub target_fpr: f64,
    pub start: DateTime<Utc>,
    /// Transactions before this time are the first half (trained on),
    /// from it on the second half (scored).
    pub split_at: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub transactions: u64,
    pub first_half: u64,
    pub second_half: u64,
    /// Kept with `--keep`.
    pub database: Option<String>,
    pub mechanics: Mechanics,
    pub training: drive::Training,
    pub scores: score::Scores,
    /// Seconds per phase.
    pub timings: Timings,
}

#[derive(Debug, Default, Serialize)]
pub struct Timings {
    pub simulate: f64,
    pub start_services: f64,
    pub first_half: f64,
    pub first_half_labels: f64,
    pub train: f64,
    pub second_half: f64,
    pub score: f64,
    pub total: f64,
}

pub async fn run(
    args: &ProtocolArgs,
    database_url: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(args.days >= 2, "--days must be at least 2");
    anyhow::ensure!(
        args.label_delay_days.is_finite() && args.label_delay_days >= 0.0,
        "--label-delay-days must be 0 or more"
    );
    anyhow::ensure!(
        (0.0..1.0).contains(&args.target_fpr),
        "--target-fpr must be in [0, 1)"
    );
    let server = match database_url {
        Some(url) => Database::external(url.to_owned()),
        None => Database::from_env_or_private(Path::new(".sentinel/pg"))?,
    };
    let result = run_on(args, &server.url).await;
    server.shutdown()?;
    let report = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::render(&report));
    }
    Ok(())
}

/// The whole protocol on a fresh database of the server at `server_url`.
async fn run_on(args: &ProtocolArgs, server_url: &str) -> anyhow::Result<Report> {
    let began = Instant::now();
    let mut timings = Timings::default();
    let fresh = FreshDatabase::create(server_url, args.seed).await?;
    eprintln!(
        "evaluation database {} on {}",
        fresh.name,
        database::redact(server_url)
    );
    let outcome = protocol(args, &fresh.url, &mut timings).await;
    let dropped = if args.keep {
        eprintln!("kept: DATABASE_URL={}", database::redact(&fresh.url));
        Ok(())
    } else {
        fresh.drop().await
    };
    let mut report = outcome?;
    dropped?;
    report.database = args.keep.then(|| fresh.name.clone());
    timings.total = began.elapsed().as_secs_f64();
    report.timings = timings;
    Ok(report)
}

async fn protocol(args: &ProtocolArgs, url: &str, timings: &mut Timings) -> anyhow::Result<Report> {
    let phase = Instant::now();
    let cfg = simulate::Config {
        seed: args.seed,
        customers: args.customers,
        days: f64::from(args.days),
        fraud_rate: args.fraud_rate,
        start: args.start,
        speed: 1.0,
        id_prefix: format!("eval{}", args.seed),
    };
    let spinner = spinner(format!(
        "simulating {} customers x {} days",
        args.customers, args.days
    ))?;
    let extras = simulate::Extras {
        world: args.world,
        label_delay_days: None,
    };
    let sim = simulate::generate_with(&cfg, extras);
    spinner.finish_and_clear();
    let split_at = args.start + chrono::Duration::days(i64::from(args.days / 2));
    let end = args.start + chrono::Duration::days(i64::from(args.days));
    let first_half = sim.timestamps.partition_point(|t| *t < split_at);
    eprintln!(
        "{} transactions ({} fraudulent) from {} customers; first half {} (until {}), second half {}",
        sim.txs.len(),
        sim.fraud_count(),
        args.customers,
        first_half,
        split_at.to_rfc3339(),
        sim.txs.len() - first_half,
    );
    timings.simulate = phase.elapsed().as_secs_f64();

    let phase = Instant::now();
    let services = Running::start(url, args.services).await?;
    timings.start_services = phase.elapsed().as_secs_f64();
    let driven = drive::Driver::new(&services.command_base, &sim)?
        .run(args, &sim, first_half, url, timings)
        .await;
    let stopped = services.stop().await;
    let driven = driven?;
    stopped?;

    let phase = Instant::now();
    let scores = score::score(url, &sim, first_half, &driven, args.target_fpr).await?;
    timings.score = phase.elapsed().as_secs_f64();
    let world = clap::ValueEnum::to_possible_value(&args.world)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    Ok(Report {
        protocol: Protocol::Temporal,
        world,
        seed: args.seed,
        customers: args.customers,
        days: args.days,
        fraud_rate: args.fraud_rate,
        labels: args.labels,
        label_delay_days: args.label_delay_days,
        target_fpr: args.target_fpr,
        start: args.start,
        split_at,
        end,
        transactions: sim.txs.len() as u64,
        first_half: first_half as u64,
        second_half: (sim.txs.len() - first_half) as u64,
        database: None,
        mechanics: driven.mechanics,
        training: driven.training,
        scores,
        timings: Timings::default(),
    })
}

pub(crate) fn spinner(message: String) -> anyhow::Result<ProgressBar> {
    let spinner = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}")?)
        .with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    Ok(spinner)
}

/// A database of its own on the server, created now and dropped at the end
/// (a run never mixes with an earlier one's log).
struct FreshDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create(server_url: &str, seed: u64) -> anyhow::Result<FreshDatabase> {
        let stamp = Utc::now().format("%Y%m%d%H%M%S");
        let name = format!("sentinel_eval_{seed}_{stamp}_{}", std::process::id());
        let admin = database::connect(server_url).await?;
        // The name is ours: digits, letters and underscores only.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
        admin.close().await;
        Ok(FreshDatabase {
            url: with_database(server_url, &name),
            server_url: server_url.to_owned(),
            name,
        })
    }

    async fn drop(&self) -> anyhow::Result<()> {
        let admin = database::connect(&self.server_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&admin)
        .await
        .with_context(|| format!("dropping database {}", self.name))?;
        admin.close().await;
        Ok(())
    }
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let host_from = base.find("://").map_or(0, |i| i + 3);
    let host = match base[host_from..].find('/') {
        Some(slash) => &base[..host_from + slash],
        None => base,
    };
    format!("{host}/{name}{query}")
}

/// Sentinel's services in this process, on free loopback ports, with an
/// open API (nothing but this run reaches them).
struct Running {
    command_base: String,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    pool: sqlx::PgPool,
}

impl Running {
    async fn start(url: &str, which: Services) -> anyhow::Result<Running> {
        use event_store::EventStore;
        use event_store::postgres::PgEventStore;
        let pool = database::connect(url).await?;
        database::migrate(&pool).await?;
        let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(pool.clone()));
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let (stop, stop_rx) = watch::channel(false);
        let until = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = tokio::task::JoinSet::new();
        let settings = command_service::configuration::Settings {
            listen: loopback,
            tokens: Default::default(),
            four_eyes: false,
            ..command_service::configuration::Settings::from_env()?
        };
        let app = command_service::startup::Application::build(settings, store.clone()).await?;
        let command_base = format!("http://{}", app.local_addr()?);
        let stopped = until(stop_rx.clone());
        tasks.spawn(async move { app.run_until(stopped).await.map_err(anyhow::Error::from) });
        if which == Services::All {
            let settings = projection_service::configuration::Settings {
                listen: loopback,
                ..projection_service::configuration::Settings::from_env()?
            };
            let app = projection_service::startup::Application::build(
                settings,
                pool.clone(),
                store.clone(),
            )
            .await?;
            tasks.spawn(app.run_until(until(stop_rx.clone())));
            let settings = query_api::configuration::Settings {
                listen: loopback,
                ..query_api::configuration::Settings::from_env()?
            };
            let app = query_api::startup::Application::build(settings, pool.clone(), store.clone())
                .await?;
            tasks.spawn(app.run_until(until(stop_rx.clone())));
        }
        eprintln!("command side on {command_base}");
        Ok(Running {
            command_base,
            stop,
            tasks,
            pool,
        })
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut result = Ok(());
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(Err(e)) | Err(e) = done.map_err(anyhow::Error::from) {
                result = Err(e);
            }
        }
        self.pool.close().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
