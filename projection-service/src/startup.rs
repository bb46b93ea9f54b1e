//! Builds the projection service: the live runners (one per projector this
//! instance's partition runs, or `SENTINEL_LOCAL_PARTITIONS` per partitioned
//! one), the status reporter, the HTTP listener.

use crate::configuration::Settings;
use crate::http::{self, Ops};
use crate::live::LiveProjector;
use crate::models;
use crate::projector::Projector;
use crate::schema;
use crate::status::{self, StatusBoard};
use anyhow::Context;
use event_store::EventStore;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Application {
    listener: TcpListener,
    settings: Settings,
    pool: PgPool,
    store: Arc<dyn EventStore>,
    projectors: Vec<Arc<dyn Projector>>,
    board: StatusBoard,
}

impl Application {
    pub async fn build(
        settings: Settings,
        pool: PgPool,
        store: Arc<dyn EventStore>,
    ) -> anyhow::Result<Application> {
        telemetry::metrics_handle();
        let projectors = select(&settings)?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        Ok(Application {
            listener,
            settings,
            pool,
            store,
            projectors,
            board: StatusBoard::default(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The status board the runners report to (tests watch it).
    pub fn board(&self) -> StatusBoard {
        self.board.clone()
    }

    /// Runs the projectors and serves until `shutdown` completes; then stops
    /// the runners (each finishes or rolls back its batch) and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for projector in &self.projectors {
            let partitions = if projector.partitioned() {
                self.settings
                    .partition
                    .split(self.settings.local_partitions)
            } else {
                vec![crate::partition::Partition::ALL]
            };
            for (piece, partition) in partitions.into_iter().enumerate() {
                let runner = LiveProjector {
                    projector: projector.clone(),
                    pool: self.pool.clone(),
                    store: self.store.clone(),
                    partition,
                    policy: self.settings.policy_for(projector.name()),
                    batch_size: self.settings.batch_size,
                    board: self.board.clone(),
                    // One rebuild serves every piece: the others wait for
                    // its swap (`RebuildError::AlreadyRunning`).
                    rebuild_first: piece == 0 && self.settings.rebuild_on_start(projector.name()),
                };
                tasks.spawn(runner.run(stop_rx.clone()));
            }
        }
        let reporter = tokio::spawn(status::report_until(
            self.board.clone(),
            self.store.clone(),
            self.pool.clone(),
            self.settings.status_interval,
            stop_rx.clone(),
        ));
        // The whole table is readable from any instance: one reports.
        let quality = (self.settings.partition.index == 0).then(|| {
            tokio::spawn(crate::quality::report_until(
                self.pool.clone(),
                stop_rx.clone(),
            ))
        });
        let ops = Ops {
            pool: self.pool.clone(),
            store: self.store.clone(),
            board: self.board.clone(),
        };
        let served = axum::serve(self.listener, http::router(ops))
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        let _ = reporter.await;
        if let Some(quality) = quality {
            let _ = quality.await;
        }
        served.context("serving HTTP")
    }
}

/// The projectors this instance runs: all (or `SENTINEL_PROJECTIONS`), minus
/// the unpartitioned ones on instances other than partition 0.
fn select(settings: &Settings) -> anyhow::Result<Vec<Arc<dyn Projector>>> {
    let all = models::all();
    if let Some(only) = &settings.only {
        for name in only {
            anyhow::ensure!(
                all.iter().any(|p| p.name() == name),
                "SENTINEL_PROJECTIONS names {name:?}, which is not a projector (known: {})",
                all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    for p in &all {
        schema::check_name(p.name()).map_err(anyhow::Error::msg)?;
    }
    Ok(all
        .into_iter()
        .filter(|p| {
            settings
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|n| n == p.name()))
        })
        .filter(|p| p.partitioned() || settings.partition.index == 0)
        .collect())
}
