//! `fraudctl bench`: throughput benchmarks that report themselves beside the
//! raw PostgreSQL ceiling measured in the same run (`scripts/pg-ceiling.sh`).
//! - `append`: the event store alone;
//! - `ingest`: the command side over HTTP with the simulator's traffic;
//! - `replay`: read-model rebuild rate and live projection lag;
//! - `query`: the query API's dashboard and alerts page over a million transactions;
//! - `pipeline`: the services as deployed, POST to read model, rising rates and a burst;
//! - `common`: a fresh database per run, medians, the figures table.

mod append;
mod ceiling;
mod common;
mod ingest;
mod pipeline;
mod query;
mod replay;

pub use ingest::IngestArgs;

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Event-store append and catch-up throughput.
    Append(AppendArgs),
    /// The command side over HTTP: single POSTs at a fixed offered rate
    /// (open loop), then batch POSTs at maximum rate, with the
    /// simulator's traffic; the service runs in-process on a fresh database.
    Ingest(IngestArgs),
    /// Projection: every read model rebuilt from a seeded log (beside a
    /// plain scan of the same log), then live lag under steady appends.
    Replay(replay::ReplayArgs),
    /// The query API: dashboard and a 100-row alerts page, timed over HTTP
    /// with a million transactions in the read models.
    Query(query::QueryArgs),
    /// The whole pipeline as deployed (command, projection and query
    /// services as processes): rising offered rates of the simulator's
    /// traffic through the single and batch endpoints, end-to-end latency
    /// to the slowest projector, the highest rate sustained (`sustained N
    /// tx/s`), and a burst at 50,000 tx/s.
    Pipeline(pipeline::PipelineArgs),
}

#[derive(clap::Args)]
pub struct AppendArgs {
    /// Server to benchmark on; each run makes and drops its own database.
    /// Without it, a private cluster is started in .sentinel/pg.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Seconds per append case (and per ceiling case).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Runs; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// A raw-ceiling script to run instead of the embedded
    /// `scripts/pg-ceiling.sh`.
    #[arg(long)]
    pub ceiling_script: Option<PathBuf>,
    /// Skip the ceiling (no ratios).
    #[arg(long)]
    pub no_ceiling: bool,
    /// Events written before timing `read_all` catch-up.
    #[arg(long, default_value_t = 500_000)]
    pub catch_up_events: usize,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Append(args) => append::run(args).await,
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Replay(args) => replay::run(args).await,
        BenchCommand::Query(args) => query::run(args).await,
        BenchCommand::Pipeline(args) => pipeline::run(args).await,
    }
}
