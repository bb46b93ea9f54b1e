//! `fraudctl features`: the feature catalogue for analysts.
//!
//! - `features list [--markdown]`: every feature's name, kind and meaning,
//!   from `domain::features::CATALOGUE` (docs/detection.md prints it);
//! - `features export --from --to --out FILE`: one CSV row per recorded
//!   transaction with an event time in `[from, to)`, every feature as it
//!   was known at decision time (recomputed from the log by
//!   `domain::features::FeatureReplay`, the code the decision ran), and the
//!   label as known now (the newest label of any source; empty when
//!   unlabelled). Two read-only scans of the log: the labels first, then
//!   the features, streamed to the file, with a progress bar. The log is
//!   the truth: nothing is written back.

#[cfg(test)]
mod tests;

use crate::{dataset, logscan};
use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::features::CATALOGUE;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum FeaturesCommand {
    /// Print the catalogue: name, kind, meaning.
    List {
        /// A Markdown table instead of tab-separated lines.
        #[arg(long)]
        markdown: bool,
    },
    /// Write every feature of every transaction in a time range, as known
    /// when it was decided, and its label as known now, to a CSV file.
    Export(ExportArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// Transactions with an event time at or after this (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Transactions with an event time before this (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// The CSV file to write.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

pub async fn run(command: FeaturesCommand) -> anyhow::Result<()> {
    match command {
        FeaturesCommand::List { markdown } => {
            print!("{}", list(markdown));
            Ok(())
        }
        FeaturesCommand::Export(args) => {
            let pool = logscan::read_only_pool(&args.database_url).await?;
            let written = export(&pool, &args).await;
            pool.close().await;
            let (rows, labelled) = written?;
            eprintln!(
                "wrote {rows} transactions ({labelled} labelled) with {} features to {}",
                CATALOGUE.len(),
                args.out.display()
            );
            Ok(())
        }
    }
}

/// The catalogue as text.
pub fn list(markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        out.push_str(&format!(
            "Catalogue version {}: {} features.\n\n| name | kind | meaning |\n|---|---|---|\n",
            domain::features::VERSION,
            CATALOGUE.len()
        ));
    }
    for f in CATALOGUE {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if markdown {
            out.push_str(&format!("| `{}` | {kind} | {} |\n", f.name, f.doc));
        } else {
            out.push_str(&format!("{}\t{kind}\t{}\n", f.name, f.doc));
        }
    }
    out
}

/// Writes the file; returns (rows, rows with a label).
pub async fn export(pool: &sqlx::PgPool, args: &ExportArgs) -> anyhow::Result<(u64, u64)> {
    let labels = dataset::labels(pool).await?;
    let mut out = csv::Writer::from_path(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut header = vec![
        "transaction_id",
        "customer_id",
        "timestamp",
        "position",
        "decision",
        "risk_score",
    ];
    header.extend(CATALOGUE.iter().map(|f| f.name));
    header.push("is_fraud");
    out.write_record(&header)?;
    let (mut rows, mut labelled) = (0u64, 0u64);
    let range = dataset::Range {
        from: args.from,
        to: args.to,
    };
    dataset::examples(pool, &labels, range, |example| {
        let row = example.row;
        let mut record = vec![
            row.transaction_id.as_str().to_owned(),
            row.customer_id.as_str().to_owned(),
            row.timestamp.to_rfc3339(),
            row.position.to_string(),
            example.decision.as_str().to_owned(),
            example.risk_score.to_string(),
        ];
        record.extend(row.features.values().iter().map(|v| {
            if v.is_nan() {
                String::new()
            } else {
                v.to_string()
            }
        }));
        record.push(
            example
                .label
                .map_or(String::new(), |l| u8::from(l).to_string()),
        );
        out.write_record(&record)?;
        rows += 1;
        labelled += u64::from(example.label.is_some());
        Ok(())
    })
    .await?;
    out.flush()?;
    Ok((rows, labelled))
}
