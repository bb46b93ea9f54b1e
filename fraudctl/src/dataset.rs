//! The one place a batch job turns the log into labelled examples: every
//! recorded transaction in an event-time range with the feature catalogue
//! as it was known at decision time (`domain::features::FeatureReplay`, the
//! code the decision ran) and its label as known now (the newest label of
//! any source). `fraudctl features export`, `model train`, `policy
//! calibrate` and `pipeline retrain` all read through here.
//!
//! Two read-only scans, both bounded by the head of the log read first (so
//! "labels as of" is one log position even while the service keeps
//! writing), each reading only the event types it needs
//! (`logscan::scan_types`): the labels, then the features in log order,
//! each with a progress bar.

use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::features::{FeatureReplay, Row};
use domain::ids::TransactionId;
use domain::rules::RuleHit;
use domain::ruleset::Ruleset;
use domain::scoring::Decision;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;

/// Which transactions: event time in `[from, to)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Range {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }
}

/// The newest label of each transaction, as known at log position `as_of`.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    pub by_transaction: HashMap<TransactionId, bool>,
    pub as_of: u64,
}

/// One recorded transaction as the scan hands it over.
pub struct Example<'a> {
    /// Its features as decided, position, ids and event time.
    pub row: &'a Row,
    pub decision: Decision,
    /// The recorded risk score (rules and, if any, the model combined).
    pub risk_score: f64,
    /// The rules that fired, with their weights: `scoring::risk_score` of
    /// them is the rules' share alone, without any model's.
    pub rules_fired: &'a [RuleHit],
    /// The newest label as known at `Labels::as_of`.
    pub label: Option<bool>,
}

/// A progress bar over the log's events.
pub fn bar(len: u64, what: &str) -> anyhow::Result<ProgressBar> {
    Ok(
        ProgressBar::new(len).with_style(ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} events {{per_sec}} eta {{eta}}"
        ))?),
    )
}

/// Pass 1: the labels as known at the head of the log now.
pub async fn labels(pool: &sqlx::PgPool) -> anyhow::Result<Labels> {
    let head = crate::logscan::head(pool).await?;
    let mut by_transaction: HashMap<TransactionId, bool> = HashMap::new();
    let spinner = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
        "{spinner} reading the labels {elapsed}",
    )?);
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let labels = crate::logscan::all_of_type(pool, "TransactionLabeled", head).await;
    spinner.finish_and_clear();
    // In log order: the newest label of a transaction wins.
    for typed in labels? {
        if let DomainEvent::TransactionLabeled(l) = typed.event {
            by_transaction.insert(l.transaction_id, l.is_fraud);
        }
    }
    Ok(Labels {
        by_transaction,
        as_of: head,
    })
}

/// Pass 2: calls `f` with every recorded transaction in `range` (event
/// time) up to `labels.as_of`, in log order, features as decided and label
/// as known. Returns how many were handed over.
pub async fn examples(
    pool: &sqlx::PgPool,
    labels: &Labels,
    range: Range,
    mut f: impl FnMut(Example<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let head = labels.as_of;
    let ruleset = Ruleset::default();
    let mut replay = FeatureReplay::new(
        ruleset.history.clone(),
        domain::peers::DEFAULT_MAX_MERCHANTS,
    );
    let progress = bar(head, "features")?;
    let mut handed = 0u64;
    crate::logscan::scan_types(
        pool,
        &["TransactionRecorded", "TransactionLabeled"],
        head,
        |typed| {
            let Some(row) = replay.apply(typed.position, &typed.event) else {
                return Ok(());
            };
            let DomainEvent::TransactionRecorded(r) = &typed.event else {
                return Ok(());
            };
            if !range.contains(row.timestamp) {
                return Ok(());
            }
            handed += 1;
            f(Example {
                row: &row,
                decision: r.decision,
                risk_score: r.risk_score,
                rules_fired: &r.rules_fired,
                label: labels.by_transaction.get(&row.transaction_id).copied(),
            })
        },
        |n| progress.set_position(n),
    )
    .await?;
    progress.finish_and_clear();
    Ok(handed)
}
