//! `fraudctl eval --truth FILE`: how well the decisions caught the fraud.
//!
//! Decisions come from the read model `rm_transactions.transactions`
//! (default), from the event log (`--source log`), or are made in memory
//! from a simulated JSON-lines file (`--decide FILE`, with `--ruleset`),
//! which needs no service at all. `figures` computes, `table` prints.
//!
//! `fraudctl eval --protocol temporal` runs a whole evaluation instead
//! (simulate, serve, drive over HTTP, train, score): `protocol`.

pub mod figures;
pub mod protocol;
mod table;

use crate::logscan;
use anyhow::Context;
use domain::DomainEvent;
use domain::ingest::{ParseContext, parse_transaction};
use figures::{Flag, Truth, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// rm_transactions.transactions (the projection must have caught up).
    ReadModels,
    /// TransactionRecorded events in the log.
    Log,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Ground truth: CSV with transaction_id, is_fraud, and optionally
    /// scenario and episode (what `fraudctl simulate --truth` writes).
    #[arg(long, required_unless_present = "protocol")]
    pub truth: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "read-models")]
    pub source: Source,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Decide this JSON-lines file in memory instead of reading decisions.
    #[arg(long, conflicts_with = "source")]
    pub decide: Option<PathBuf>,
    /// With --decide: the ruleset (TOML); default: the built-in one.
    #[arg(long, requires = "decide")]
    pub ruleset: Option<PathBuf>,
    /// What counts as flagged.
    #[arg(long, value_enum, default_value = "alert")]
    pub flag: Flag,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub protocol: protocol::ProtocolArgs,
}

pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.protocol.protocol.is_some() {
        return protocol::run(&args.protocol, args.database_url.as_deref(), args.json).await;
    }
    let truth = read_truth(args.truth.as_deref().context("--truth FILE")?)?;
    let verdicts = match (&args.decide, args.source) {
        (Some(file), _) => {
            let ruleset = crate::offline::load_ruleset(args.ruleset.as_deref())?;
            decide_file(file, ruleset)?
        }
        (None, source) => {
            let url = args
                .database_url
                .as_deref()
                .context("set DATABASE_URL (or --database-url), or use --decide FILE")?;
            let pool = logscan::read_only_pool(url).await?;
            let verdicts = match source {
                Source::ReadModels => from_read_models(&pool).await?,
                Source::Log => from_log(&pool).await?,
            };
            pool.close().await;
            verdicts
        }
    };
    let figures = figures::compute(&truth, &verdicts, args.flag);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print!("{}", table::render(&figures));
    }
    Ok(())
}

pub fn read_truth(path: &Path) -> anyhow::Result<Vec<Truth>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 2)))
        .collect()
}

async fn from_read_models(pool: &sqlx::PgPool) -> anyhow::Result<HashMap<String, Verdict>> {
    type Row = (
        String,
        String,
        bool,
        chrono::DateTime<chrono::Utc>,
        f64,
        Vec<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT transaction_id, decision, alert_id IS NOT NULL, event_time, amount::float8, \
                ARRAY(SELECT r->>'rule' FROM jsonb_array_elements(rules_fired) r) \
         FROM rm_transactions.transactions",
    )
    .fetch_all(pool)
    .await
    .context("reading rm_transactions.transactions (is the projection service running?)")?;
    Ok(rows
        .into_iter()
        .map(|(id, decision, alerted, event_time, amount, rules)| {
            let v = Verdict {
                decision,
                alerted,
                event_time,
                amount,
                rules,
            };
            (id, v)
        })
        .collect())
}

async fn from_log(pool: &sqlx::PgPool) -> anyhow::Result<HashMap<String, Verdict>> {
    let bar = ProgressBar::new(logscan::head(pool).await?).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec}")?,
    );
    let mut verdicts = HashMap::new();
    logscan::scan(
        pool,
        &["TransactionRecorded"],
        |_, event| {
            if let DomainEvent::TransactionRecorded(r) = event {
                verdicts.insert(
                    r.transaction.transaction_id.as_str().to_owned(),
                    verdict_of(&r),
                );
            }
            Ok(())
        },
        |n| bar.set_position(n),
    )
    .await?;
    bar.finish_and_clear();
    Ok(verdicts)
}

pub fn verdict_of(r: &domain::events::TransactionRecorded) -> Verdict {
    Verdict {
        decision: r.decision.as_str().to_owned(),
        alerted: r.alert_id.is_some(),
        event_time: r.transaction.timestamp,
        amount: r.transaction.amount.as_f64(),
        rules: r.rules_fired.iter().map(|h| h.rule.to_string()).collect(),
    }
}

/// Decides a JSON-lines file in memory, in file order (a simulation is
/// written in event-time order).
fn decide_file(path: &Path, ruleset: domain::Ruleset) -> anyhow::Result<HashMap<String, Verdict>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let ctx = ParseContext {
        now: chrono::Utc::now(),
        // A file may be replayed long after it was made, or before its times.
        max_future_skew: chrono::Duration::days(36_500),
        default_currency: domain::money::Currency::parse("USD")
            .map_err(|e| anyhow::anyhow!("USD: {e}"))?,
    };
    let mut replayer = crate::offline::Replayer::new(ruleset);
    let mut verdicts = HashMap::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}", path.display(), n + 1))?;
        let tx = parse_transaction(&value, &ctx)
            .map_err(|e| anyhow::anyhow!("{} line {}: refused: {e:?}", path.display(), n + 1))?;
        let recorded = replayer.decide(tx);
        verdicts.insert(
            recorded.transaction.transaction_id.as_str().to_owned(),
            verdict_of(&recorded),
        );
    }
    Ok(verdicts)
}
