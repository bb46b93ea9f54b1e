//! `fraudctl backtest --policy DRAFT.toml [--from --to]` (`--ruleset` is
//! the old name): what a draft policy would have decided on the recorded
//! traffic, beside what was decided, without touching anything: the log is
//! read through a read-only session, decisions are made in memory
//! (`engine`), nothing is appended (the only file written is the optional
//! `--differences-out` CSV). Reports decision and rule differences, the
//! transactions decided differently (the first `--show N`, all in the CSV),
//! whether the baseline replay reproduced every recorded decision exactly,
//! and, where labels exist, recall, FPR, precision and alert rate for both.
//! With `--record` (and only then) its summary is appended afterwards as
//! `BacktestRecorded` to the `backtest` stream (`record`, ADR 0020), which
//! GraphQL and the console's policy page show.

pub mod engine;
pub mod record;
#[cfg(test)]
mod tests;

use crate::eval::figures::{self, Flag, Row, Truth};
use crate::logscan;
use chrono::{DateTime, Utc};
use engine::{Difference, Engine, Outcome};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct BacktestArgs {
    /// The draft policy (TOML, as `fraudctl policy show` prints one).
    #[arg(long = "policy", alias = "ruleset", value_name = "FILE")]
    pub policy: PathBuf,
    /// Compare with this policy instead of the one that decided each
    /// transaction (then mismatches are expected where they differ).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// How many of the transactions decided differently to list.
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Write every transaction decided differently to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    pub differences_out: Option<PathBuf>,
    /// Only transactions with an event time at or after this (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Only transactions with an event time before this (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// What counts as flagged for the label figures.
    #[arg(long, value_enum, default_value = "alert")]
    pub flag: Flag,
    #[arg(long)]
    pub json: bool,
    /// After the backtest, append its summary (counts and label figures,
    /// no transactions) to the `backtest` stream, where GraphQL
    /// (`backtests`) and the console's policy page show it.
    #[arg(long)]
    pub record: bool,
    /// Who ran it, as the recorded backtest names them.
    #[arg(long, default_value = "fraudctl backtest")]
    pub by: String,
}

/// The backtest's findings.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub candidate_version: String,
    pub baseline: String,
    pub events_read: u64,
    pub unreadable_events: u64,
    /// The log position of the newest event of a type it reads.
    pub as_of_position: u64,
    /// The baseline's version when one was given (`--baseline`).
    #[serde(skip)]
    pub baseline_version: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The first `--show` transactions decided differently, in log order.
    pub differences: Vec<Difference>,
    /// Where all of them were written.
    pub differences_out: Option<PathBuf>,
    pub labelled: u64,
    /// Label figures of the old (baseline) decisions, when labels exist.
    pub old_figures: Option<Row>,
    pub new_figures: Option<Row>,
}

pub async fn run(args: BacktestArgs) -> anyhow::Result<()> {
    let report = backtest(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if args.record {
        // Only now is anything written, and only the summary: the replay
        // itself ran on the read-only session.
        let pool = crate::database::connect(&args.database_url).await?;
        let store = event_store::postgres::PgEventStore::new(pool.clone());
        let result = record::record(&store, &report, &args).await;
        pool.close().await;
        let position = result?;
        eprintln!("recorded in the backtest stream at log position {position}");
    }
    Ok(())
}

pub async fn backtest(args: &BacktestArgs) -> anyhow::Result<Report> {
    // A draft that does not read is refused before any database is asked.
    crate::offline::load_ruleset(Some(&args.policy))?;
    let pool = logscan::read_only_pool(&args.database_url).await?;
    let report = backtest_on(&pool, args).await;
    pool.close().await;
    report
}

/// The backtest over the log in `pool` (which `backtest` opens read-only).
pub async fn backtest_on(pool: &sqlx::PgPool, args: &BacktestArgs) -> anyhow::Result<Report> {
    let candidate = crate::offline::load_ruleset(Some(&args.policy))?;
    let baseline = match &args.baseline {
        Some(p) => Some(crate::offline::load_ruleset(Some(p))?),
        None => None,
    };
    let baseline_version = baseline.as_ref().map(|b| b.version.clone());
    let baseline_name = baseline.as_ref().map_or_else(
        || "the policy that decided each transaction".to_owned(),
        |b| b.version.clone(),
    );
    let candidate_version = candidate.version.clone();
    let bar = ProgressBar::new(logscan::head(pool).await?).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")?,
    );
    let mut engine = Engine::new(candidate, baseline, args.from, args.to);
    let mut csv = match &args.differences_out {
        Some(path) => Some(DifferencesCsv::create(path)?),
        None => None,
    };
    let mut differences = Vec::new();
    let mut as_of_position = 0;
    let (events_read, unreadable_events) = logscan::scan(
        pool,
        &[
            &["TransactionRecorded", "TransactionLabeled"],
            domain::policy::book::EVENT_TYPES,
        ]
        .concat(),
        |recorded, event| {
            let at = recorded.event_time;
            as_of_position = as_of_position.max(recorded.position.0);
            if let Some(d) = engine.on_event(recorded.position.0, at, event) {
                if let Some(csv) = &mut csv {
                    csv.write(&d)?;
                }
                if differences.len() < args.show {
                    differences.push(d);
                }
            }
            Ok(())
        },
        |n| bar.set_position(n),
    )
    .await?;
    bar.finish_and_clear();
    if let Some(csv) = csv {
        csv.finish()?;
    }
    let outcome = engine.outcome;
    let truth: Vec<Truth> = outcome
        .labels
        .iter()
        .filter(|(id, _)| outcome.old.contains_key(*id))
        .map(|(id, is_fraud)| Truth {
            transaction_id: id.clone(),
            is_fraud: *is_fraud,
            scenario: None,
            episode: None,
        })
        .collect();
    let labelled = truth.len() as u64;
    let (old_figures, new_figures) = if truth.is_empty() {
        (None, None)
    } else {
        (
            Some(figures::compute(&truth, &outcome.old, args.flag).overall),
            Some(figures::compute(&truth, &outcome.new, args.flag).overall),
        )
    };
    Ok(Report {
        candidate_version,
        baseline: baseline_name,
        events_read,
        unreadable_events,
        as_of_position,
        baseline_version,
        outcome,
        differences,
        differences_out: args.differences_out.clone(),
        labelled,
        old_figures,
        new_figures,
    })
}

/// `--differences-out`: one row per transaction decided differently.
struct DifferencesCsv {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
}

impl DifferencesCsv {
    const HEADER: [&str; 10] = [
        "transaction_id",
        "event_time",
        "old_decision",
        "old_score",
        "old_alert",
        "old_rules",
        "new_decision",
        "new_score",
        "new_alert",
        "new_rules",
    ];

    fn create(path: &std::path::Path) -> anyhow::Result<DifferencesCsv> {
        use anyhow::Context;
        let mut writer =
            csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
        writer.write_record(Self::HEADER)?;
        Ok(DifferencesCsv {
            path: path.to_owned(),
            writer,
        })
    }

    fn write(&mut self, d: &Difference) -> anyhow::Result<()> {
        use anyhow::Context;
        let (o, n) = (&d.old, &d.new);
        self.writer
            .write_record([
                d.transaction_id.as_str(),
                &d.at.to_rfc3339(),
                &o.decision,
                &o.risk_score.to_string(),
                &o.alert.to_string(),
                &o.rules.join(";"),
                &n.decision,
                &n.risk_score.to_string(),
                &n.alert.to_string(),
                &n.rules.join(";"),
            ])
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn finish(mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        self.writer
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// `review 0.450 alert [velocity_count, big_night]`.
fn side(v: &engine::SideVerdict) -> String {
    format!(
        "{} {:.3}{} [{}]",
        v.decision,
        v.risk_score,
        if v.alert { " alert" } else { "" },
        v.rules.join(", ")
    )
}

/// The list of transactions decided differently.
pub fn render_differences(r: &Report) -> String {
    let mut out = String::new();
    let total = r.outcome.differing;
    if total == 0 {
        let _ = writeln!(out, "no transaction decided differently");
        return out;
    }
    let shown = r.differences.len() as u64;
    let mut head = format!("{total} transactions decided differently (old -> new)");
    if shown < total {
        let _ = write!(head, ", the first {shown}");
    }
    if let Some(path) = &r.differences_out {
        let _ = write!(head, "; all in {}", path.display());
    }
    let _ = writeln!(out, "{head}:");
    for d in &r.differences {
        let _ = writeln!(
            out,
            "  {}  {}\n    {} -> {}",
            d.transaction_id,
            d.at.format("%Y-%m-%dT%H:%M:%SZ"),
            side(&d.old),
            side(&d.new)
        );
    }
    out
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

pub fn render(r: &Report) -> String {
    let o = &r.outcome;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "backtest: draft {} against {}; {} events read, {} transactions compared ({} outside the range)",
        r.candidate_version, r.baseline, r.events_read, o.compared, o.outside
    );
    let _ = writeln!(
        out,
        "exactness: {} of {} recorded decisions not reproduced by the baseline replay{}",
        o.mismatches,
        o.compared - o.unknown_ruleset,
        if o.unknown_ruleset > 0 {
            format!(
                " ({} decided by an unknown ruleset, not checked)",
                o.unknown_ruleset
            )
        } else {
            String::new()
        }
    );
    for m in &o.mismatch_examples {
        let _ = writeln!(
            out,
            "  {}\n    recorded: {}\n    replayed: {}",
            m.transaction_id, m.recorded, m.replayed
        );
    }
    let _ = writeln!(out, "\ndecisions (old -> new):");
    for (change, n) in &o.decisions {
        let mark = match change.split_once(" -> ") {
            Some((a, b)) if a != b => "  *",
            _ => "",
        };
        let _ = writeln!(out, "  {change:<22} {n:>9}{mark}");
    }
    let _ = writeln!(
        out,
        "alerts: {} -> {} ({:+})",
        o.alerts_old,
        o.alerts_new,
        o.alerts_new as i64 - o.alerts_old as i64
    );
    let _ = write!(out, "\n{}", render_differences(r));
    if !o.rules.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<22} {:>9} {:>9} {:>9} {:>9}",
            "rule", "old", "new", "only old", "only new"
        );
    }
    for (rule, d) in &o.rules {
        let _ = writeln!(
            out,
            "{rule:<22} {:>9} {:>9} {:>9} {:>9}",
            d.old, d.new, d.only_old, d.only_new
        );
    }
    match (&r.old_figures, &r.new_figures) {
        (Some(old), Some(new)) => {
            let _ = writeln!(
                out,
                "\non {} labelled transactions:\n{:<12} {:>9} {:>9}",
                r.labelled, "", "old", "new"
            );
            for (name, a, b) in [
                ("recall", old.recall, new.recall),
                ("FPR", old.false_positive_rate, new.false_positive_rate),
                ("precision", old.precision, new.precision),
                ("alert rate", old.alert_rate, new.alert_rate),
            ] {
                let _ = writeln!(out, "{name:<12} {:>9} {:>9}", pct(a), pct(b));
            }
        }
        _ => {
            let _ = writeln!(out, "\nno labels in the log: no recall or FPR");
        }
    }
    out
}
