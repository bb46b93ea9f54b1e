//! `fraudctl backtest --record`: the backtest's summary appended as
//! `BacktestRecorded` to the `backtest` stream (ADR 0020). What was
//! compared (candidate, baseline, window, flag), the counts and both
//! sides' label figures, and who ran it; never the transactions.
//!
//! The stream has no invariant to guard (a backtest decides nothing and
//! any number may be recorded), so the append expects any version: unlike
//! a policy or a model version, two backtests recorded at once are both
//! right.

use super::{BacktestArgs, Report};
use crate::eval::figures::{Flag, Row};
use anyhow::Context;
use domain::DomainEvent;
use domain::events::{BacktestFigures, BacktestRecorded};
use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion};

/// The flag's name, as the CLI spells it.
fn flag_name(flag: Flag) -> &'static str {
    match flag {
        Flag::Alert => "alert",
        Flag::Review => "review",
        Flag::Decline => "decline",
    }
}

fn figures(row: &Row) -> BacktestFigures {
    BacktestFigures {
        flagged: row.flagged,
        true_positives: row.true_positives,
        false_positives: row.false_positives,
        recall: row.recall,
        false_positive_rate: row.false_positive_rate,
        precision: row.precision,
        alert_rate: row.alert_rate,
    }
}

/// The event a report is recorded as.
pub fn event(report: &Report, args: &BacktestArgs) -> BacktestRecorded {
    let o = &report.outcome;
    BacktestRecorded {
        candidate_version: report.candidate_version.clone(),
        baseline_version: report.baseline_version.clone(),
        from: args.from,
        to: args.to,
        flag: flag_name(args.flag).to_owned(),
        events_read: report.events_read,
        as_of_position: report.as_of_position,
        compared: o.compared,
        mismatches: o.mismatches,
        differing: o.differing,
        decisions: o.decisions.clone(),
        alerts_old: o.alerts_old,
        alerts_new: o.alerts_new,
        labelled: report.labelled,
        old_figures: report.old_figures.as_ref().map(figures),
        new_figures: report.new_figures.as_ref().map(figures),
        recorded_by: args.by.clone(),
    }
}

/// Appends the report's summary; returns its log position.
pub async fn record(
    store: &PgEventStore,
    report: &Report,
    args: &BacktestArgs,
) -> anyhow::Result<u64> {
    let event = DomainEvent::from(event(report, args));
    let appended = store
        .append(
            domain::streams::BACKTEST,
            ExpectedVersion::Any,
            crate::model::record::new_events(&[event])?,
        )
        .await
        .context("recording the backtest")?;
    appended
        .positions
        .last()
        .map(|p| p.0)
        .context("the append gave no position")
}
