//! `fraudctl policy`: the policy lifecycle from the command line (show,
//! list, publish, promote, rollback, shadow, diff) over the command side's
//! `/v1/policy*` routes, and `compare`, which reads the log (read-only) to
//! set live against the shadow over labelled traffic, and `calibrate`,
//! which reads the log and publishes new thresholds to it.
//!
//! `publish` checks the file here first with `domain::policy::from_toml`, so
//! a bad expression or a repeated rule name is refused, naming the rule,
//! even when the server is down.

pub mod api;
pub mod calibrate;
pub mod compare;
pub mod render;
#[cfg(test)]
mod tests;

use anyhow::Context;
use api::Api;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    /// The command side.
    #[arg(
        long,
        env = "SENTINEL_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// An admin's bearer token.
    #[arg(long, env = "SENTINEL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub action: PolicyCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print the live policy (or VERSION) as a policy file, as `publish`
    /// takes it.
    Show { version: Option<String> },
    /// Every version: who published and promoted it and when, which is live
    /// and which the shadow.
    List,
    /// Check a policy file here, then publish it (optionally as the shadow).
    Publish {
        file: PathBuf,
        /// Also make it the shadow policy: it decides every transaction too,
        /// recorded beside the live decision, with no effect.
        #[arg(long)]
        shadow: bool,
    },
    /// Make VERSION the live policy (with four eyes on, not by its publisher).
    Promote { version: String },
    /// Make the previously live policy live again.
    Rollback,
    /// Set the shadow policy, or clear it.
    Shadow {
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        version: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// What changed from version A to version B, value by value.
    Diff { a: String, b: String },
    /// Live against the shadow over the recorded decisions and labels (reads
    /// the log, read-only): changed decisions, alerts added and removed,
    /// recall, FPR and precision of both.
    Compare(CompareArgs),
    /// New thresholds for the live policy, chosen on the latest labelled
    /// window for a false-positive rate or an alert budget, published as a
    /// new version (the shadow; `--promote` makes it live). Reads and
    /// writes the log at `--database-url`.
    Calibrate(calibrate::CalibrateArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// The shadow version (default: the shadow set now, else the latest one
    /// a decision recorded).
    #[arg(long, value_name = "VERSION")]
    pub shadow: Option<String>,
    /// Only transactions with an event time at or after this (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Only transactions with an event time before this (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: PolicyArgs) -> anyhow::Result<()> {
    let api = || Api::new(&args.url, args.token.as_deref());
    match args.action {
        PolicyCommand::Show { version } => {
            let toml = api()?.toml(version.as_deref()).await?;
            print!("{toml}");
            if !toml.ends_with('\n') {
                println!();
            }
        }
        PolicyCommand::List => {
            print!("{}", render::versions(&api()?.versions().await?));
        }
        PolicyCommand::Publish { file, shadow } => {
            let (text, policy) = check_file(&file)?;
            let answer = api()?.publish(&text, shadow).await?;
            println!("{}", render::published(&policy.version, &answer));
        }
        PolicyCommand::Promote { version } => {
            let answer = api()?.promote(&version).await?;
            println!("{}", render::promoted(&version, &answer));
        }
        PolicyCommand::Rollback => {
            let api = api()?;
            // The answer names where it went; what was live, we ask first.
            let from = api.live().await?.version;
            let answer = api.rollback().await?;
            println!("{}", render::rolled_back(Some(&from), &answer));
        }
        PolicyCommand::Shadow { version, clear } => {
            let version = if clear { None } else { version };
            let answer = api()?.set_shadow(version.as_deref()).await?;
            println!("{}", render::shadow(&answer));
        }
        PolicyCommand::Diff { a, b } => {
            let api = api()?;
            let (x, y) = (fetch(&api, &a).await?, fetch(&api, &b).await?);
            let changes = domain::policy::diff::diff(&x, &y);
            print!("{}", render::diff(&a, &b, &changes));
        }
        PolicyCommand::Calibrate(args) => calibrate::run(args).await?,
        PolicyCommand::Compare(args) => {
            let report = compare(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render::comparison(&report));
            }
        }
    }
    Ok(())
}

/// Reads and checks a policy file as the server will: its text (sent as
/// is) and the policy. The error names the file, and the rule and what is
/// wrong with it.
pub fn check_file(path: &Path) -> anyhow::Result<(String, domain::Ruleset)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let policy = check_text(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a valid policy: {}", path.display(), reason(&e)))?;
    Ok((text, policy))
}

/// The reason without the "invalid ruleset: " prefix(es) the error carries.
fn reason(e: &domain::ruleset::RulesetError) -> &str {
    let mut text = e.0.as_str();
    while let Some(rest) = text.strip_prefix("invalid ruleset: ") {
        text = rest;
    }
    text
}

/// A policy file's text checked: the policy, or why not.
pub fn check_text(text: &str) -> Result<domain::Ruleset, domain::ruleset::RulesetError> {
    domain::policy::from_toml(text)
}

/// Version `v` as the server has it, read back as a policy.
async fn fetch(api: &Api, v: &str) -> anyhow::Result<domain::Ruleset> {
    let text = api.toml(Some(v)).await?;
    check_text(&text).with_context(|| format!("the server's policy {v:?} does not read back"))
}

/// `compare` over the log at `--database-url`, read-only.
pub async fn compare(args: &CompareArgs) -> anyhow::Result<compare::CompareReport> {
    let pool = crate::logscan::read_only_pool(&args.database_url).await?;
    let report = compare::compare_on(&pool, selection(args)).await;
    pool.close().await;
    report
}

pub fn selection(args: &CompareArgs) -> compare::Selection {
    compare::Selection {
        shadow: args.shadow.clone(),
        from: args.from,
        to: args.to,
    }
}
