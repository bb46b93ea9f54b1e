//! `fraudctl policy compare`: live against shadow over the recorded
//! decisions, read-only. Every `TransactionRecorded` carrying a shadow
//! outcome of the chosen version is paired with what live decided (the
//! priority from its `AlertRaised`), joined with the transaction's newest
//! label, and folded into `domain::policy::compare::Comparison`.
//!
//! The version compared: `--shadow`, else the shadow set now (the
//! `PolicyBook` folded from the `ruleset` and `policy` streams), else the
//! latest shadow version a decision recorded. Labels may arrive long after
//! the decision, so pairs are gathered first and folded once the whole log
//! is read.

use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::policy::book::PolicyBook;
use domain::policy::compare::{Comparison, Side, Verdict};
use domain::scoring::Priority;
use std::collections::{BTreeMap, HashMap};

/// Which transactions count.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The shadow version; `None`: the one set now, else the latest seen.
    pub shadow: Option<String>,
    /// Event time at or after.
    pub from: Option<DateTime<Utc>>,
    /// Event time before.
    pub to: Option<DateTime<Utc>>,
}

/// One shadowed decision; versions by their index in `CompareFold::names`
/// (a long log holds millions of pairs and a handful of versions).
#[derive(Debug, Clone)]
struct Pair {
    shadow_version: usize,
    live_version: usize,
    live: Verdict,
    shadow: Verdict,
}

/// The fold over the log, fed events in log order.
#[derive(Debug, Default)]
pub struct CompareFold {
    selection: Selection,
    book: PolicyBook,
    /// By transaction id.
    pairs: HashMap<String, Pair>,
    /// Every version a pair names, once.
    names: Vec<String>,
    /// The shadow version of the newest shadowed decision inside the range.
    latest_seen: Option<String>,
    /// The newest label of each transaction.
    labels: HashMap<String, bool>,
    /// Shadowed decisions outside the time range.
    pub outside: u64,
}

/// Recall, false-positive rate and precision of one side.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rates {
    pub recall: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub precision: Option<f64>,
}

impl Rates {
    pub fn of(side: &Side) -> Rates {
        Rates {
            recall: side.recall(),
            false_positive_rate: side.false_positive_rate(),
            precision: side.precision(),
        }
    }
}

/// What `compare` found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CompareReport {
    /// The shadow version compared; `None` when no decision recorded one.
    pub shadow_version: Option<String>,
    /// The live versions that decided the compared transactions, with how
    /// many each.
    pub live_versions: BTreeMap<String, u64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub events_read: u64,
    pub unreadable_events: u64,
    /// Shadowed decisions left out by the time range.
    pub outside: u64,
    #[serde(flatten)]
    pub comparison: Comparison,
    pub live_rates: Rates,
    pub shadow_rates: Rates,
}

/// The event types the fold reads besides the policy's.
const TYPES: &[&str] = &["TransactionRecorded", "AlertRaised", "TransactionLabeled"];

/// Every event type the fold reads: those, and the policy's
/// (`domain::policy::book::EVENT_TYPES`).
pub fn types() -> Vec<&'static str> {
    [TYPES, domain::policy::book::EVENT_TYPES].concat()
}

impl CompareFold {
    pub fn new(selection: Selection) -> CompareFold {
        CompareFold {
            selection,
            ..CompareFold::default()
        }
    }

    /// Folds one event, recorded at `at`.
    pub fn apply(&mut self, event: &DomainEvent, at: DateTime<Utc>) {
        match event {
            DomainEvent::TransactionRecorded(r) => {
                let Some(shadow) = &r.shadow else { return };
                if self
                    .selection
                    .shadow
                    .as_ref()
                    .is_some_and(|v| *v != shadow.policy_version)
                {
                    return;
                }
                let t = r.transaction.timestamp;
                let s = &self.selection;
                if s.from.is_some_and(|f| t < f) || s.to.is_some_and(|to| t >= to) {
                    self.outside += 1;
                    return;
                }
                self.latest_seen = Some(shadow.policy_version.clone());
                let shadow_version = self.name(&shadow.policy_version);
                let live_version = self.name(&r.ruleset_version);
                self.pairs.insert(
                    r.transaction.transaction_id.as_str().to_owned(),
                    Pair {
                        shadow_version,
                        live_version,
                        live: Verdict {
                            decision: r.decision,
                            // The `AlertRaised` that follows gives the
                            // priority; whether there is one is what counts.
                            priority: r.alert_id.map(|_| Priority::P3),
                        },
                        shadow: Verdict {
                            decision: shadow.decision,
                            priority: shadow.priority,
                        },
                    },
                );
            }
            DomainEvent::AlertRaised(a) => {
                if let Some(pair) = self.pairs.get_mut(a.transaction_id.as_str()) {
                    pair.live.priority = Some(a.priority);
                }
            }
            DomainEvent::TransactionLabeled(l) => {
                self.labels
                    .insert(l.transaction_id.as_str().to_owned(), l.is_fraud);
            }
            other => self.book.apply(other, at),
        }
    }

    fn name(&mut self, version: &str) -> usize {
        match self.names.iter().position(|n| n == version) {
            Some(i) => i,
            None => {
                self.names.push(version.to_owned());
                self.names.len() - 1
            }
        }
    }

    /// The version compared (see the module's header).
    pub fn chosen_version(&self) -> Option<String> {
        self.selection
            .shadow
            .clone()
            .or_else(|| self.book.shadow().map(|r| r.version().to_owned()))
            .or_else(|| self.latest_seen.clone())
    }

    /// The comparison, labels joined; `events_read`/`unreadable_events`
    /// are the scan's.
    pub fn finish(self, events_read: u64, unreadable_events: u64) -> CompareReport {
        let version = self.chosen_version();
        let wanted = version
            .as_ref()
            .and_then(|v| self.names.iter().position(|n| n == v));
        let mut comparison = Comparison::default();
        let mut live_versions = BTreeMap::new();
        // In a fixed order, so equal logs give equal reports.
        let mut ids: Vec<&String> = self
            .pairs
            .iter()
            .filter(|(_, p)| wanted == Some(p.shadow_version))
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let pair = &self.pairs[id];
            let live = &self.names[pair.live_version];
            *live_versions.entry(live.clone()).or_default() += 1;
            comparison.add(pair.live, pair.shadow, self.labels.get(id).copied());
        }
        CompareReport {
            shadow_version: version,
            live_versions,
            from: self.selection.from,
            to: self.selection.to,
            events_read,
            unreadable_events,
            outside: self.outside,
            live_rates: Rates::of(&comparison.live),
            shadow_rates: Rates::of(&comparison.shadow),
            comparison,
        }
    }
}

/// Folds the log in `pool` (which the caller opened read-only).
pub async fn compare_on(
    pool: &sqlx::PgPool,
    selection: Selection,
) -> anyhow::Result<CompareReport> {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar = ProgressBar::new(crate::logscan::head(pool).await?).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")?,
    );
    let mut fold = CompareFold::new(selection);
    let (read, skipped) = crate::logscan::scan(
        pool,
        &types(),
        |recorded, event| {
            fold.apply(&event, recorded.event_time);
            Ok(())
        },
        |n| bar.set_position(n),
    )
    .await?;
    bar.finish_and_clear();
    Ok(fold.finish(read, skipped))
}
