//! `fraudctl replay`: rebuilds read models from the log without downtime
//! (fresh tables, then an atomic swap; see projection-service `rebuild`),
//! with a progress bar per projection. `--verify` snapshots the serving
//! tables first and compares them with the rebuilt ones, row for row.

use crate::database;
use anyhow::Context;
use event_store::EventStore;
use event_store::postgres::PgEventStore;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use projection_service::configuration::Settings;
use projection_service::projector::Projector;
use projection_service::rebuild::{self, Options, Progress};
use projection_service::{models, schema};
use sqlx::{AssertSqlSafe, PgPool};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The projection to rebuild (see --list).
    #[arg(long, conflicts_with = "all", required_unless_present_any = ["all", "list"])]
    projection: Option<String>,
    /// Rebuild every projection (concurrently).
    #[arg(long)]
    all: bool,
    /// Only list the projections.
    #[arg(long)]
    list: bool,
    /// Compare the rebuilt tables with the ones they replace, row for row
    /// (meaningful when no ingest runs meanwhile).
    #[arg(long)]
    verify: bool,
    /// Events per transaction.
    #[arg(long, default_value_t = 5000)]
    page_size: usize,
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    if args.list {
        for p in models::all() {
            println!("{:<16} version {}", p.name(), p.version());
        }
        return Ok(());
    }
    let chosen: Vec<Arc<dyn Projector>> = match &args.projection {
        Some(name) => vec![models::by_name(name).with_context(|| {
            format!("no projection {name:?} (fraudctl replay --list shows them)")
        })?],
        None => models::all(),
    };
    let pool = database::connect(&args.database_url).await?;
    database::migrate(&pool).await?;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(pool.clone()));
    let policies = Settings::from_env()?;
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:>14} [{bar:30}] {pos}/{len} position  {per_sec}  eta {eta}  {msg}",
    )?
    .progress_chars("=> ");
    let mut tasks = tokio::task::JoinSet::new();
    for projector in chosen {
        if args.verify {
            snapshot(&pool, &*projector).await?;
        }
        let bar = bars.add(ProgressBar::new(0).with_style(style.clone()));
        bar.set_prefix(projector.name());
        let (pool, store) = (pool.clone(), store.clone());
        let policy = policies.policy_for(projector.name());
        let options = Options {
            page_size: args.page_size,
        };
        tasks.spawn(async move {
            let progress = |p: &Progress| {
                bar.set_length(p.head);
                bar.set_position(p.position);
            };
            let done =
                rebuild::rebuild(&pool, &*store, &*projector, policy, options, &progress).await;
            match &done {
                Ok(r) => bar.finish_with_message(format!(
                    "swapped in at {}: {} events in {:.1}s ({:.0}/s), {} dead letters",
                    r.position,
                    r.events,
                    r.elapsed.as_secs_f64(),
                    r.events as f64 / r.elapsed.as_secs_f64().max(1e-9),
                    r.dead_letters
                )),
                Err(e) => bar.abandon_with_message(format!("failed: {e}")),
            }
            (projector, done)
        });
    }
    let mut failed = 0;
    let mut differing = 0;
    while let Some(joined) = tasks.join_next().await {
        let (projector, done) = joined?;
        if done.is_err() {
            failed += 1;
            continue;
        }
        if args.verify {
            let differences = compare_with_snapshot(&pool, &*projector).await?;
            if differences.is_empty() {
                println!(
                    "{}: identical to the tables it replaced ({} tables compared row for row)",
                    projector.name(),
                    projector.tables().len()
                );
            } else {
                differing += 1;
                for d in differences {
                    println!("{}: DIFFERS: {d}", projector.name());
                }
            }
        }
    }
    pool.close().await;
    anyhow::ensure!(failed == 0, "{failed} projection(s) failed to rebuild");
    anyhow::ensure!(
        differing == 0,
        "{differing} projection(s) differ from the tables they replaced"
    );
    Ok(())
}

fn snapshot_schema(projector: &dyn Projector) -> String {
    format!("verify_{}", projector.name())
}

/// Copies the serving tables aside for `--verify`.
async fn snapshot(pool: &PgPool, projector: &dyn Projector) -> anyhow::Result<()> {
    let (serving, copy) = (
        schema::serving(projector.name()),
        snapshot_schema(projector),
    );
    let mut tx = pool.begin().await?;
    schema::drop_if_exists(&mut tx, &copy).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {copy}")))
        .execute(&mut *tx)
        .await?;
    if schema::exists(&mut tx, &serving).await? {
        for table in projector.tables() {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE {copy}.{table} AS TABLE {serving}.{table}"
            )))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn compare_with_snapshot(
    pool: &PgPool,
    projector: &dyn Projector,
) -> anyhow::Result<Vec<String>> {
    let copy = snapshot_schema(projector);
    let mut conn = pool.acquire().await?;
    let differences = rebuild::differences(
        &mut conn,
        projector,
        &copy,
        &schema::serving(projector.name()),
    )
    .await;
    let mut tx = pool.begin().await?;
    schema::drop_if_exists(&mut tx, &copy).await?;
    tx.commit().await?;
    Ok(differences?)
}
