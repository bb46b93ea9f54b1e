//! `fraudctl`: the one Sentinel command line.
//!
//! Today: `demo` (the event store, the REST ingest and the projectors),
//! `serve`, `replay`, `pg` (a private PostgreSQL for development and tests),
//! `migrate`, `status`, `bench`, `simulate`, `eval`, `ingest-csv`,
//! `backtest`, `features`, `policy`, `model`, `pipeline`, `verify`,
//! `public-key` and `keys`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backtest;
mod bench;
mod database;
mod dataset;
mod demo;
mod eval;
mod features;
mod http;
mod ingest_csv;
mod keys;
mod logscan;
mod model;
mod offline;
mod pipeline;
mod policy;
mod replay;
mod serve;
mod simulate;
mod status;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "fraudctl",
    version,
    about = "Run, operate and measure Sentinel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Sentinel end to end with simulated traffic and a live summary.
    /// With no DATABASE_URL a private PostgreSQL is started in .sentinel/
    /// and stopped again on Ctrl-C.
    Demo(demo::DemoArgs),
    /// Run Sentinel's services without traffic until Ctrl-C (with no
    /// DATABASE_URL, on a private PostgreSQL).
    Serve {
        #[arg(long, value_enum, default_value = "command")]
        role: serve::Role,
    },
    /// Rebuild read models from the event log into fresh tables and swap
    /// them in atomically, while the current ones keep serving.
    Replay(replay::ReplayArgs),
    /// Apply every database migration.
    Migrate {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Print the event store's status (head, streams, events by type).
    Status {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// A private PostgreSQL cluster for development and tests.
    Pg {
        #[command(subcommand)]
        action: PgAction,
    },
    /// Benchmarks, each beside the raw PostgreSQL ceiling of the same run.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Generate realistic traffic (personas, travel, labelled fraud) and
    /// send it to a command side (open loop) and/or write it as JSON lines,
    /// with the ground truth beside it; `--world` picks the fraud (the
    /// default or one the built-in rules were not written for),
    /// `--label-delay` adds chargeback labels arriving late.
    Simulate(simulate::SimulateCommand),
    /// Score decisions against ground truth: recall, false-positive rate,
    /// precision, alert rate, time to detection, fraud amount caught;
    /// overall and per scenario. `--protocol temporal` runs the learning
    /// evaluation end to end instead (docs/detection.md, "Learning: the
    /// temporal protocol").
    Eval(eval::EvalArgs),
    /// Backfill historical transactions from a CSV (any column names, epoch
    /// or RFC 3339 times) through the command side, in event-time order;
    /// an optional label column is recorded as labels.
    IngestCsv(ingest_csv::IngestCsvArgs),
    /// Replay the recorded transactions through a draft policy in memory
    /// (read-only) and compare with what was decided; nothing is written
    /// unless `--record` appends the summary to the `backtest` stream.
    Backtest(backtest::BacktestArgs),
    /// The policy: show, list, publish, promote, roll back, set the shadow,
    /// diff two versions (over the command side's API), and compare live
    /// with the shadow over the recorded decisions and labels (the log).
    Policy(policy::PolicyArgs),
    /// The feature catalogue: list it, or export every transaction's
    /// features as known at decision time with its label as known now.
    Features {
        #[command(subcommand)]
        what: features::FeaturesCommand,
    },
    /// Models: train gradient-boosted trees on the log, record them in the
    /// `model` stream and, with `--promote`, put them live in a new policy
    /// version when they beat what is live (docs/models.md).
    Model {
        #[command(subcommand)]
        what: model::ModelCommand,
    },
    /// Batch jobs for an orchestrator (cron, Airflow): `retrain` trains,
    /// compares with live and promotes when better; exit codes 0 promoted
    /// or nothing new, 1 error, 3 trained but not better, 4 not enough
    /// labels.
    Pipeline {
        #[command(subcommand)]
        what: pipeline::PipelineCommand,
    },
    /// Check that the event log is intact: recompute its hash chain and
    /// every signed checkpoint. Exit 0 with the count verified, or 2
    /// naming the first position that does not verify (edited, missing,
    /// reordered, signature, truncated). See docs/trust.md.
    Verify(verify::VerifyArgs),
    /// Print the public key (hex) the log's checkpoints are signed with.
    PublicKey,
    /// The crypto-shredding key ring: `rewrap` finishes a master key
    /// rotation (docs/trust.md).
    Keys {
        #[command(subcommand)]
        what: keys::KeysCommand,
    },
}

#[derive(Subcommand)]
enum PgAction {
    /// Start it (initdb on first use) and print `DATABASE_URL=...`; it keeps
    /// running until `fraudctl pg down`.
    Up {
        #[arg(long, default_value = ".sentinel/pg")]
        dir: PathBuf,
    },
    /// Stop it.
    Down {
        #[arg(long, default_value = ".sentinel/pg")]
        dir: PathBuf,
    },
    /// Say whether it runs, and its URL.
    Status {
        #[arg(long, default_value = ".sentinel/pg")]
        dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    // Tools that read or write the PostgreSQL log itself (its `events`
    // table, its hash chain) refuse a KurrentDB SENTINEL_EVENT_STORE rather
    // than answer for a log that is not the one the services use.
    if let Some(name) = postgres_log_only(&command) {
        event_store::LogBackend::from_env()?.require_postgres(name)?;
    }
    match command {
        Command::Demo(args) => demo::demo(args).await,
        Command::Serve { role } => serve::serve(role).await,
        Command::Migrate { database_url } => {
            let pool = database::connect(&database_url).await?;
            database::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Status { database_url } => {
            let pool = database::connect(&database_url).await?;
            status::print(&pool).await
        }
        Command::Pg { action } => match action {
            PgAction::Up { dir } => {
                let url = local_pg::up(&dir)?;
                println!("DATABASE_URL={url}");
                Ok(())
            }
            PgAction::Down { dir } => local_pg::down(&dir),
            PgAction::Status { dir } => {
                match local_pg::running_url(&dir)? {
                    Some(url) => println!("running: DATABASE_URL={url}"),
                    None => println!("not running ({})", dir.display()),
                }
                Ok(())
            }
        },
        Command::Bench { what } => bench::run(what).await,
        Command::Replay(args) => replay::replay(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Eval(args) => eval::run(args).await,
        Command::IngestCsv(args) => ingest_csv::run(args).await,
        Command::Backtest(args) => backtest::run(args).await,
        Command::Policy(args) => policy::run(args).await,
        Command::Features { what } => features::run(what).await,
        Command::Model { what } => model::run(what).await,
        Command::Verify(args) => {
            let code = verify::run(args).await?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::PublicKey => verify::print_public_key(),
        Command::Keys { what } => keys::run(what).await,
        Command::Pipeline { what } => {
            let code = match pipeline::run(what).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    pipeline::ERROR
                }
            };
            if code != pipeline::OK {
                std::process::exit(code);
            }
            Ok(())
        }
    }
}

/// The commands that work on the PostgreSQL log only (see
/// docs/adr/0023-kurrentdb-selected-at-run-time.md): `serve` and `replay`
/// open the configured log; `simulate` and `policy`'s changes go through
/// the services' APIs; `eval`, `policy compare` and `ingest-csv` check the
/// modes that read the log themselves.
fn postgres_log_only(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Verify(_) => "fraudctl verify",
        Command::Status { .. } => "fraudctl status",
        Command::Demo(_) => "fraudctl demo",
        Command::Bench { .. } => "fraudctl bench",
        Command::Backtest(_) => "fraudctl backtest",
        Command::Features { .. } => "fraudctl features",
        Command::Model { .. } => "fraudctl model",
        Command::Pipeline { .. } => "fraudctl pipeline",
        _ => return None,
    })
}
