//! `fraudctl model train [--promote]`: gradient-boosted trees from the log
//! (ADR 0016, docs/models.md).
//!
//! Reads every recorded transaction of the window with its features as
//! decided and its label as known now (`crate::dataset`), trains on the
//! older part and validates on the newest slice (`train`), prints the
//! validation figures and importances, and records the model as
//! `ModelTrained` in the `model` stream. With `--promote`, a new policy
//! version (the live policy, this model, thresholds chosen on the
//! validation slice for `--target-fpr`) is published and promoted when no
//! model is live or when it beats the live policy on that slice
//! (`choose`); otherwise it says why. The pipeline (`crate::pipeline`) and
//! calibration (`crate::policy::calibrate`) reuse these steps.

pub mod choose;
pub mod convert;
pub mod record;
#[cfg(test)]
pub(crate) mod tests;
pub mod train;

use crate::dataset::Range;
use choose::{Thresholds, Verdict};
use chrono::{DateTime, Utc};
use domain::model::metrics::Scored;
use domain::ruleset::Ruleset;
use domain::scoring::combine;
use event_store::postgres::PgEventStore;
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use train::{Settings, Table, Trained, Unlabelled};

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ModelCommand {
    /// Train gradient-boosted trees on the log (features as decided, labels
    /// as known now; validated on the newest slice), print their figures
    /// and record them in the `model` stream; `--promote` puts them live in
    /// a new policy version when they beat what is live.
    Train(TrainArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Publish and promote a policy version with this model and thresholds
    /// for `--target-fpr`, when no model is live or it beats the live one.
    #[arg(long)]
    pub promote: bool,
}

/// What training and the pipeline share.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// The false-positive rate the thresholds are chosen for (on the
    /// validation slice).
    #[arg(long, default_value_t = 0.01)]
    pub target_fpr: f64,
    /// Transactions with an event time at or after this (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Transactions with an event time before this (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// Validate on the newest this many days of the window (or its newest
    /// quarter, if shorter).
    #[arg(long, default_value_t = 7.0)]
    pub validation_days: f64,
    /// What unlabelled transactions count as.
    #[arg(long, value_enum, default_value = "legit")]
    pub unlabelled: Unlabelled,
    /// At most this many trees (early stopping usually ends sooner).
    #[arg(long, default_value_t = 300)]
    pub iterations: usize,
    /// Above this many legitimate training rows, sample them down to it
    /// (weighted; every fraud is kept).
    #[arg(long, default_value_t = 250_000)]
    pub max_legit_rows: usize,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

impl CommonArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            range: Range {
                from: self.from,
                to: self.to,
            },
            validation_days: self.validation_days,
            unlabelled: self.unlabelled,
            iterations: self.iterations,
            max_legit_rows: self.max_legit_rows,
            ..Settings::default()
        }
    }
}

pub async fn run(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Train(args) => {
            let pool = crate::database::connect(&args.common.database_url).await?;
            let store = PgEventStore::new(pool.clone());
            let outcome =
                train_and_record(&pool, &store, &args.common, "fraudctl model train").await;
            let result = match outcome {
                Ok(candidate) if args.promote => {
                    let verdict = promote_if_better(&store, &candidate, &args.common, 0.0).await?;
                    println!("{}", verdict.message());
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            pool.close().await;
            result
        }
    }
}

/// A trained, recorded model and what it was trained on.
pub struct Candidate {
    pub table: Table,
    pub trained: Trained,
    /// The version recorded in the `model` stream.
    pub version: String,
    pub by: String,
}

/// A model version that sorts by time: `m-YYYYMMDD-HHMMSS`.
pub fn version_now() -> String {
    format!("m-{}", Utc::now().format("%Y%m%d-%H%M%S"))
}

/// Reads the window, trains (a spinner while the trees grow), prints the
/// report and records the model.
pub async fn train_and_record(
    pool: &sqlx::PgPool,
    store: &PgEventStore,
    args: &CommonArgs,
    by: &str,
) -> anyhow::Result<Candidate> {
    let started = Instant::now();
    let settings = args.settings();
    let table = Table::read(pool, settings.range).await?;
    let read = started.elapsed();
    let version = version_now();
    let spinner = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
        "{spinner} fitting trees on {msg} rows, {elapsed}",
    )?);
    spinner.set_message(table.len().to_string());
    spinner.enable_steady_tick(Duration::from_millis(200));
    let (table, trained) = tokio::task::spawn_blocking(move || {
        let trained = train::train(&table, &settings, &version);
        (table, trained)
    })
    .await?;
    spinner.finish_and_clear();
    let trained = trained?;
    let fitted = started.elapsed() - read;
    let recorded = record::record_model(store, &trained.model, by).await?;
    print!("{}", report(&trained, &recorded, read, fitted));
    Ok(Candidate {
        table,
        trained,
        version: recorded,
        by: by.to_owned(),
    })
}

/// The training report, as printed.
pub fn report(t: &Trained, version: &str, read: Duration, fitted: Duration) -> String {
    let m = &t.model;
    let tr = &m.training;
    let v = &m.validation;
    let mut out = String::new();
    let _ = writeln!(out, "model {version} (catalogue v{})", m.catalogue_version);
    let _ = writeln!(
        out,
        "  window        {} .. {} (validation from {})",
        tr.from.to_rfc3339(),
        tr.to.to_rfc3339(),
        tr.validation_from.to_rfc3339()
    );
    let _ = writeln!(
        out,
        "  training      {} rows, {} fraud ({} fitted, legitimate sampled at {:.4}); labels as of log position {}",
        tr.rows, tr.fraud, t.fit_rows, t.legit_rate, tr.labels_as_of
    );
    let _ = writeln!(
        out,
        "  validation    {} rows, {} fraud",
        tr.validation_rows, tr.validation_fraud
    );
    let _ = writeln!(out, "  trees         {} ({})", t.trees, tr.trainer);
    let _ = writeln!(
        out,
        "  time          {:.1}s reading the log, {:.1}s fitting",
        read.as_secs_f64(),
        fitted.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  ROC AUC {:.4}   average precision {:.4}",
        v.roc_auc, v.average_precision
    );
    let _ = writeln!(out, "  at FPR    recall  precision  threshold");
    for a in &v.at_fpr {
        let _ = writeln!(
            out,
            "  {:>5.1}%    {:>5.1}%   {:>6.1}%    {:.6}",
            a.target_fpr * 100.0,
            a.at.recall * 100.0,
            a.at.precision * 100.0,
            a.at.threshold
        );
    }
    let _ = writeln!(out, "  importances (share of gain)");
    for i in m.importances.iter().take(15) {
        let _ = writeln!(out, "    {:<36} {:>5.1}%", i.feature, i.gain * 100.0);
    }
    if m.importances.len() > 15 {
        let _ = writeln!(out, "    ... {} more", m.importances.len() - 15);
    }
    out
}

/// The validation slice scored by the candidate (rules' share recorded,
/// combined with the new model) and by `live` (its model, if any,
/// re-scored on the same features).
pub fn scored(
    candidate: &Candidate,
    live: Option<&Ruleset>,
    unlabelled: Unlabelled,
) -> (Vec<Scored>, Vec<Scored>) {
    let table = &candidate.table;
    let trained = &candidate.trained;
    let live_model = live.and_then(|p| p.scorer.get());
    let mut new = Vec::with_capacity(trained.split.validation.len());
    let mut old = Vec::with_capacity(trained.split.validation.len());
    for (&i, &p) in trained
        .split
        .validation
        .iter()
        .zip(&trained.validation_probabilities)
    {
        let fraud = table.target(i, unlabelled) == Some(true);
        let rules = table.rules_scores[i];
        new.push((combine(rules, p), fraud));
        let live_risk = match live_model {
            Some(m) => combine(
                rules,
                (m.probability(&table.features[i]) * 1e6).round() / 1e6,
            ),
            None => rules,
        };
        old.push((live_risk, fraud));
    }
    (new, old)
}

/// The policy the candidate would be: the live one (or the built-in
/// default), this model, thresholds for `target_fpr` on the slice.
pub fn candidate_policy(live: Option<&Ruleset>, model: &str, thresholds: &Thresholds) -> Ruleset {
    let base = live.cloned().unwrap_or_default();
    Ruleset {
        version: format!("p-{model}"),
        model: Some(model.to_owned()),
        scorer: domain::model::Scorer::default(),
        decision: thresholds.decision.clone(),
        priority: thresholds.priority.clone(),
        ..base
    }
}

/// What `--promote` (and the pipeline) did.
pub struct Promotion {
    pub verdict: Verdict,
    pub thresholds: Thresholds,
    /// The policy version published, if any, and whether it went live.
    pub published: Option<String>,
    pub promoted: bool,
}

impl Promotion {
    pub fn message(&self) -> String {
        let t = &self.thresholds;
        let c = &self.verdict.candidate.at_policy;
        let thresholds = format!(
            "review {} decline {} (alerts p3 {} p2 {} p1 {} p0 {}); on the validation slice: recall {:.1}%, FPR {:.2}%, precision {:.1}%",
            t.decision.review,
            t.decision.decline,
            t.priority.p3,
            t.priority.p2,
            t.priority.p1,
            t.priority.p0,
            c.recall * 100.0,
            c.fpr * 100.0,
            c.precision * 100.0
        );
        match (&self.published, self.promoted) {
            (Some(v), true) => format!(
                "promoted policy {v}: {}\n  {thresholds}",
                self.verdict.reason
            ),
            (Some(v), false) => format!(
                "not promoted: {}\n  published policy {v} as the shadow: {thresholds}",
                self.verdict.reason
            ),
            (None, _) => format!(
                "not promoted: {}\n  candidate: {thresholds}",
                self.verdict.reason
            ),
        }
    }
}

/// Compares the candidate with the live policy on the validation slice and
/// promotes a policy version with it when it is better by more than
/// `margin` (or no model is live); with `shadow_otherwise`, a candidate not
/// promoted is published as the shadow.
pub async fn decide(
    store: &PgEventStore,
    candidate: &Candidate,
    args: &CommonArgs,
    margin: f64,
    shadow_otherwise: bool,
) -> anyhow::Result<Promotion> {
    let live = record::live_policy(store).await?;
    let (new, old) = scored(candidate, live.as_ref(), args.unlabelled);
    let thresholds = choose::for_fpr(&new, args.target_fpr);
    let live_review = live
        .as_ref()
        .map_or(Ruleset::default().decision.review, |p| p.decision.review);
    let live_model = live
        .as_ref()
        .and_then(|p| p.scorer.get())
        .map(|m| m.version().to_owned());
    let verdict = choose::judge(
        &new,
        thresholds.decision.review,
        &old,
        live_review,
        live_model,
        args.target_fpr,
        margin,
    );
    let policy = candidate_policy(live.as_ref(), &candidate.version, &thresholds);
    let then = if verdict.promote {
        record::Then::Promote
    } else if shadow_otherwise {
        record::Then::Shadow
    } else {
        record::Then::Nothing
    };
    let published = match then {
        record::Then::Nothing => None,
        _ => Some(record::publish(store, &policy, &candidate.by, then).await?),
    };
    Ok(Promotion {
        promoted: verdict.promote,
        verdict,
        thresholds,
        published,
    })
}

/// `model train --promote`: promote when no model is live or the candidate
/// beats the live policy.
pub async fn promote_if_better(
    store: &PgEventStore,
    candidate: &Candidate,
    args: &CommonArgs,
    margin: f64,
) -> anyhow::Result<Promotion> {
    decide(store, candidate, args, margin, false).await
}
