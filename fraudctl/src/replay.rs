//! `fraudctl replay`: rebuilds read models from the log without downtime
//! (fresh tables, then an atomic swap; see projection-service `rebuild`),
//! with a progress bar per projection. `--verify` snapshots the serving
//! tables first and compares them with the rebuilt ones, row for row.
//! The log is read where `SENTINEL_EVENT_STORE` says (`event_store::open`).

use crate::database;
use anyhow::Context;
use event_store::{EventStore, LogBackend, OpenOptions};
use indicatif::{ProgressBar, ProgressStyle};
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
    /// Rebuild every projection (from one pass over the log).
    #[arg(long)]
    all: bool,
    /// Only list the projections.
    #[arg(long)]
    list: bool,
    /// Compare the rebuilt tables with the ones they replace, row for row
    /// (meaningful when no ingest runs meanwhile).
    #[arg(long)]
    verify: bool,
    /// Events read per page.
    #[arg(long, default_value_t = 5000)]
    page_size: usize,
    /// Most rows a projection holds in memory while rebuilding before it
    /// writes them out (and reads back what it needs): bounds memory.
    #[arg(long, default_value_t = Options::default().hold_rows)]
    hold_rows: usize,
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
    let backend = LogBackend::from_env()?;
    let pool = database::connect(&args.database_url).await?;
    database::migrate(&pool).await?;
    let store: Arc<dyn EventStore> =
        event_store::open(&backend, &pool, &OpenOptions::from_env(false)?).await?;
    let policies = Settings::from_env()?;
    if args.verify {
        for projector in &chosen {
            snapshot(&pool, &**projector).await?;
        }
    }
    let names: Vec<&str> = chosen.iter().map(|p| p.name()).collect();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} position  {msg}  eta {eta}")?
            .progress_chars("=> "),
    );
    bar.set_prefix(names.join(", "));
    let progress = |p: &Progress| {
        bar.set_length(p.head);
        bar.set_position(p.position);
        bar.set_message(format!(
            "{:.0} events/s",
            p.events as f64 / p.elapsed.as_secs_f64().max(1e-9)
        ));
    };
    let jobs = chosen
        .iter()
        .map(|p| rebuild::Job {
            projector: p.clone(),
            policy: policies.policy_for(p.name()),
        })
        .collect();
    let options = Options {
        page_size: args.page_size,
        hold_rows: args.hold_rows,
    };
    // One pass over the log feeds every projection being rebuilt.
    let results = rebuild::rebuild_many(&pool, &*store, jobs, options, &progress).await;
    bar.finish();
    let mut failed = 0;
    let mut differing = 0;
    for (name, done) in results {
        match done {
            Ok(r) => println!(
                "{name}: swapped in at position {}: {} events in {:.1}s ({:.0}/s), {} dead letters",
                r.position,
                r.events,
                r.elapsed.as_secs_f64(),
                r.events as f64 / r.elapsed.as_secs_f64().max(1e-9),
                r.dead_letters
            ),
            Err(e) => {
                println!("{name}: FAILED: {e}");
                failed += 1;
                continue;
            }
        }
        if args.verify
            && let Some(projector) = models::by_name(name)
        {
            let differences = compare_with_snapshot(&pool, &*projector).await?;
            if differences.is_empty() {
                println!(
                    "{name}: identical to the tables it replaced ({} tables compared row for row)",
                    projector.tables().len()
                );
            } else {
                differing += 1;
                for d in differences {
                    println!("{name}: DIFFERS: {d}");
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
