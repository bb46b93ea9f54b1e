//! `fraudctl pipeline retrain`: the batch job an orchestrator (cron,
//! Airflow) runs. Train (`model::train_and_record`), compare with the live
//! policy on the newest labelled slice, promote when better by `--margin`
//! recall at the target false-positive rate (or when no model is live),
//! otherwise optionally publish the candidate as the shadow
//! (`--shadow`) or recalibrate the live policy's thresholds on the newest
//! window as the shadow (`--calibrate`). The same functions as `model
//! train --promote` and `policy calibrate`, nothing re-implemented.
//!
//! Idempotent: when no label arrived after the newest model's
//! `labels_as_of`, it trains nothing and exits 0. The exit codes
//! (docs/models.md) are what an orchestrator branches on.

#[cfg(test)]
mod tests;

use crate::model::record;
use crate::model::train::NotEnoughLabels;
use crate::model::{self, CommonArgs};
use crate::policy::calibrate::{self, Aim};
use event_store::postgres::PgEventStore;

/// Promoted, or nothing new to train on.
pub const OK: i32 = 0;
/// An error (the database, the log, a refused write): retry later.
pub const ERROR: i32 = 1;
/// Trained and recorded, but not better than live by the margin.
pub const NOT_BETTER: i32 = 3;
/// Too few fraud labels to train or validate.
pub const NOT_ENOUGH_LABELS: i32 = 4;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum PipelineCommand {
    /// Train, compare with live, promote when better by --margin,
    /// otherwise optionally shadow or recalibrate. Exit codes: 0 promoted
    /// or nothing new, 1 error, 3 trained but not better, 4 not enough
    /// labels.
    Retrain(RetrainArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct RetrainArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Promote only when the candidate's recall at --target-fpr beats
    /// live's by more than this (absolute, on the validation slice).
    #[arg(long, default_value_t = 0.02)]
    pub margin: f64,
    /// When not promoted, publish the candidate as the shadow policy.
    #[arg(long, conflicts_with = "calibrate")]
    pub shadow: bool,
    /// When not promoted, recalibrate the live policy's thresholds for
    /// --target-fpr on the newest --validation-days of labelled traffic and
    /// publish them as the shadow.
    #[arg(long)]
    pub calibrate: bool,
    /// Train even when no label arrived since the newest model.
    #[arg(long)]
    pub force: bool,
}

const BY: &str = "fraudctl pipeline retrain";

/// Runs the command; the process exit code.
pub async fn run(command: PipelineCommand) -> anyhow::Result<i32> {
    let PipelineCommand::Retrain(args) = command;
    let pool = crate::database::connect(&args.common.database_url).await?;
    let store = PgEventStore::new(pool.clone());
    let outcome = retrain(&pool, &store, &args).await;
    pool.close().await;
    let (code, message) = outcome?;
    println!("{message}");
    Ok(code)
}

/// The newest recorded model and the log position its labels ran to.
async fn newest_model(store: &PgEventStore) -> anyhow::Result<Option<(String, u64)>> {
    let (models, _) = record::model_book(store).await?;
    Ok(models
        .versions()
        .filter_map(|v| models.get(v).ok())
        .map(|m| (m.version().to_owned(), m.model.training.labels_as_of))
        .max_by_key(|(v, at)| (*at, v.clone())))
}

/// Labels recorded after log position `after`.
async fn labels_after(pool: &sqlx::PgPool, after: u64) -> anyhow::Result<i64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'TransactionLabeled' AND position > $1",
    )
    .bind(i64::try_from(after)?)
    .fetch_one(pool)
    .await?;
    Ok(n)
}

/// The pipeline; `(exit code, what to print)`.
pub async fn retrain(
    pool: &sqlx::PgPool,
    store: &PgEventStore,
    args: &RetrainArgs,
) -> anyhow::Result<(i32, String)> {
    if !args.force
        && let Some((version, as_of)) = newest_model(store).await?
        && labels_after(pool, as_of).await? == 0
    {
        return Ok((
            OK,
            format!(
                "nothing to do: no label arrived since model {version} was trained (labels as of log position {as_of})"
            ),
        ));
    }
    let candidate = match model::train_and_record(pool, store, &args.common, BY).await {
        Ok(c) => c,
        Err(e) => {
            return match e.downcast_ref::<NotEnoughLabels>() {
                Some(refusal) => Ok((NOT_ENOUGH_LABELS, refusal.to_string())),
                None => Err(e),
            };
        }
    };
    let promotion =
        model::decide(store, &candidate, &args.common, args.margin, args.shadow).await?;
    if promotion.promoted {
        return Ok((OK, promotion.message()));
    }
    let mut message = promotion.message();
    if args.calibrate {
        let done = calibrate::calibrate(
            pool,
            store,
            Aim::Fpr(args.common.target_fpr),
            args.common.validation_days,
            args.common.unlabelled,
            false,
            BY,
        )
        .await?;
        message.push('\n');
        message.push_str(&format!("recalibrated the live policy: {}", done.message()));
    }
    Ok((NOT_BETTER, message))
}
