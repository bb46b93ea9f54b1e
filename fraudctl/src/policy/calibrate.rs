//! `fraudctl policy calibrate --target-fpr F | --alerts-per-day N`: new
//! thresholds for the live policy, chosen on the latest labelled window,
//! published as a new version (the shadow by default, `--promote` to make
//! it live).
//!
//! The window: the newest `--days` (default 7) ending at the newest
//! labelled transaction's event time. Every transaction in it is re-scored
//! as the live policy decides now: the recorded rules' share
//! (`scoring::risk_score` of the recorded hits) combined with the live
//! policy's model (loaded from the `model` stream) on the features as
//! decided (`crate::dataset`). Thresholds then follow `model::choose`:
//! review at the target rate (or at the bar that flags about N a day),
//! stricter levels at fractions of it. Unlabelled transactions count as
//! legitimate unless `--unlabelled skip`.

use crate::dataset::{self, Range};
use crate::model::choose::{self, Thresholds};
use crate::model::record::{self, Then};
use crate::model::train::Unlabelled;
use chrono::{DateTime, Duration, Utc};
use domain::model::metrics::{self, AtThreshold, Scored};
use domain::ruleset::Ruleset;
use domain::scoring::{combine, risk_score};
use event_store::postgres::PgEventStore;

#[derive(clap::Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Thresholds for this false-positive rate on the window.
    #[arg(
        long,
        required_unless_present = "alerts_per_day",
        conflicts_with = "alerts_per_day"
    )]
    pub target_fpr: Option<f64>,
    /// Thresholds that would have raised about this many alerts a day over
    /// the window.
    #[arg(long)]
    pub alerts_per_day: Option<f64>,
    /// The window: this many days up to the newest labelled transaction.
    #[arg(long, default_value_t = 7.0)]
    pub days: f64,
    /// Make the new version live instead of the shadow.
    #[arg(long)]
    pub promote: bool,
    /// What unlabelled transactions count as.
    #[arg(long, value_enum, default_value = "legit")]
    pub unlabelled: Unlabelled,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

/// What to aim for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aim {
    Fpr(f64),
    AlertsPerDay(f64),
}

/// What calibration did.
#[derive(Debug, Clone)]
pub struct Calibrated {
    pub base: String,
    pub version: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub transactions: u64,
    pub fraud: u64,
    pub thresholds: Thresholds,
    /// The new version's figures on the window at its review bar.
    pub at_review: AtThreshold,
    pub promoted: bool,
}

impl Calibrated {
    pub fn message(&self) -> String {
        let t = &self.thresholds;
        let a = &self.at_review;
        format!(
            "published {} ({}) from {}: review {} decline {} (alerts p3 {} p2 {} p1 {} p0 {})\n  on {} .. {}: {} transactions, {} fraud; recall {:.1}%, FPR {:.2}%, precision {:.1}%, {} flagged",
            self.version,
            if self.promoted { "live" } else { "shadow" },
            self.base,
            t.decision.review,
            t.decision.decline,
            t.priority.p3,
            t.priority.p2,
            t.priority.p1,
            t.priority.p0,
            self.from.to_rfc3339(),
            self.to.to_rfc3339(),
            self.transactions,
            self.fraud,
            a.recall * 100.0,
            a.fpr * 100.0,
            a.precision * 100.0,
            a.flagged
        )
    }
}

pub async fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let aim = match (args.target_fpr, args.alerts_per_day) {
        (Some(f), _) => Aim::Fpr(f),
        (None, Some(n)) => Aim::AlertsPerDay(n),
        (None, None) => anyhow::bail!("give --target-fpr or --alerts-per-day"),
    };
    let pool = crate::database::connect(&args.database_url).await?;
    let store = PgEventStore::new(pool.clone());
    let done = calibrate(
        &pool,
        &store,
        aim,
        args.days,
        args.unlabelled,
        args.promote,
        "fraudctl policy calibrate",
    )
    .await;
    pool.close().await;
    println!("{}", done?.message());
    Ok(())
}

/// Calibrates the live policy and publishes the result (see the module's
/// header).
pub async fn calibrate(
    pool: &sqlx::PgPool,
    store: &PgEventStore,
    aim: Aim,
    days: f64,
    unlabelled: Unlabelled,
    promote: bool,
    by: &str,
) -> anyhow::Result<Calibrated> {
    let live = record::live_policy(store)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no policy is live: nothing to calibrate"))?;
    let model = live.scorer.get();
    let labels = dataset::labels(pool).await?;
    // (event time, label, risk as the live policy decides now)
    let mut rows: Vec<(DateTime<Utc>, Option<bool>, f64)> = Vec::new();
    dataset::examples(pool, &labels, Range::default(), |e| {
        let rules = risk_score(e.rules_fired);
        let risk = match model {
            Some(m) => combine(rules, (m.probability(&e.row.features) * 1e6).round() / 1e6),
            None => rules,
        };
        rows.push((e.row.timestamp, e.label, risk));
        Ok(())
    })
    .await?;
    let to = rows
        .iter()
        .filter(|r| r.1.is_some())
        .map(|r| r.0)
        .max()
        .ok_or_else(|| {
            anyhow::anyhow!("no transaction is labelled yet: nothing to calibrate on")
        })?;
    let from = to - Duration::milliseconds((days.max(0.0) * 86_400_000.0) as i64);
    let scored: Vec<Scored> = rows
        .iter()
        .filter(|r| r.0 >= from && r.0 <= to)
        .filter_map(|r| match (r.1, unlabelled) {
            (Some(l), _) => Some((r.2, l)),
            (None, Unlabelled::Legit) => Some((r.2, false)),
            (None, Unlabelled::Skip) => None,
        })
        .collect();
    let fraud = scored.iter().filter(|s| s.1).count() as u64;
    anyhow::ensure!(
        scored.len() as u64 > fraud,
        "the window {from} .. {to} has no legitimate transaction to calibrate on"
    );
    let thresholds = match aim {
        Aim::Fpr(f) => choose::for_fpr(&scored, f),
        Aim::AlertsPerDay(n) => {
            let span = (to - from).num_milliseconds() as f64 / 86_400_000.0;
            let review = choose::review_for_alerts(&scored, n, span.max(1e-3));
            let fpr = metrics::at_threshold(&scored, review).fpr;
            choose::with_review(&scored, review, fpr)
        }
    };
    let at_review = metrics::at_threshold(&scored, thresholds.decision.review);
    let policy = calibrated(&live, &thresholds);
    let then = if promote { Then::Promote } else { Then::Shadow };
    let version = record::publish(store, &policy, by, then).await?;
    Ok(Calibrated {
        base: live.version.clone(),
        version,
        from,
        to,
        transactions: scored.len() as u64,
        fraud,
        thresholds,
        at_review,
        promoted: promote,
    })
}

/// The live policy with new thresholds under a new version name.
fn calibrated(live: &Ruleset, t: &Thresholds) -> Ruleset {
    let stamp = Utc::now().format("%Y%m%d-%H%M%S");
    let mut version = format!("{}-cal-{stamp}", live.version);
    if version.len() > 60 {
        version = format!("cal-{stamp}");
    }
    Ruleset {
        version,
        scorer: domain::model::Scorer::default(),
        decision: t.decision.clone(),
        priority: t.priority.clone(),
        ..live.clone()
    }
}
