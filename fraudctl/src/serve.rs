//! `fraudctl serve`: runs Sentinel's services, without traffic, until
//! Ctrl-C: the command side, the projectors, the query API, or all three in
//! one process. The log is where `SENTINEL_EVENT_STORE` says
//! (`event_store::open`): PostgreSQL by default, or KurrentDB in a build
//! with the `esdb` feature; the read models are in PostgreSQL either way.

use crate::database::{self, Database};
use event_store::{LogBackend, OpenOptions};
use std::path::Path;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The REST ingest (127.0.0.1:8080 unless SENTINEL_COMMAND_ADDR says otherwise).
    Command,
    /// The projectors (status and metrics on 127.0.0.1:8082 unless
    /// SENTINEL_PROJECTION_ADDR says otherwise).
    Projection,
    /// The GraphQL API (127.0.0.1:8081 unless SENTINEL_QUERY_ADDR says otherwise).
    Query,
    /// Every service in one process.
    All,
}

pub async fn serve(role: Role) -> anyhow::Result<()> {
    let backend = LogBackend::from_env()?;
    let db = Database::from_env_or_private(Path::new(".sentinel/pg"))?;
    println!("press Ctrl-C to stop");
    let result = run(&db.url, role, &backend, tokio::signal::ctrl_c()).await;
    db.shutdown()?;
    result
}

/// Runs `role` against the database at `url` and the log `backend` names,
/// until `stop` completes. A log that cannot be opened is an error at once.
pub async fn run(
    url: &str,
    role: Role,
    backend: &LogBackend,
    stop: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    let pool = database::connect(url).await?;
    database::migrate(&pool).await?;
    // The command side seals a PostgreSQL log with signed checkpoints
    // (docs/trust.md); all roles share one store.
    let signing = matches!(role, Role::Command | Role::All);
    let store = event_store::open(backend, &pool, &OpenOptions::from_env(signing)?).await?;
    println!("event log         : {backend}");
    let sampler = telemetry::pool::spawn_pool_metrics(
        pool.clone(),
        "fraudctl",
        telemetry::pool::SAMPLE_EVERY,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut services = tokio::task::JoinSet::new();
    // Run together, the query API forwards the console's actions to this
    // process's command service unless SENTINEL_COMMAND_URL says otherwise.
    let mut command_url = None;
    if matches!(role, Role::Command | Role::All) {
        let settings = command_service::configuration::Settings::from_env()?;
        let app = command_service::startup::Application::build(settings, store.clone()).await?;
        let addr = app.local_addr()?;
        command_url = Some(format!("http://{addr}"));
        println!(
            "command service   : http://{addr}  (POST /v1/transactions, /v1/transactions/batch; Swagger UI /swagger-ui; /metrics)"
        );
        let until = stopped(stop_rx.clone());
        services.spawn(async move { app.run_until(until).await.map_err(anyhow::Error::from) });
    }
    if matches!(role, Role::Projection | Role::All) {
        let settings = projection_service::configuration::Settings::from_env()?;
        let app =
            projection_service::startup::Application::build(settings, pool.clone(), store.clone())
                .await?;
        let addr = app.local_addr()?;
        println!("projection service: http://{addr}  (/status, /metrics)");
        let until = stopped(stop_rx.clone());
        services.spawn(app.run_until(until));
    }
    if matches!(role, Role::Query | Role::All) {
        let mut settings = query_api::configuration::Settings::from_env()?;
        settings.command_url = settings.command_url.or(command_url);
        let app =
            query_api::startup::Application::build(settings, pool.clone(), store.clone()).await?;
        let addr = app.local_addr()?;
        println!(
            "query API         : http://{addr}/  (console /console/; GraphiQL /; POST/GET /graphql, WebSocket subscriptions; /metrics)"
        );
        let until = stopped(stop_rx.clone());
        services.spawn(app.run_until(until));
    }
    let _ = stop.await;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    while let Some(done) = services.join_next().await {
        if let Ok(Err(e)) | Err(e) = done.map_err(anyhow::Error::from) {
            result = Err(e);
        }
    }
    sampler.abort();
    pool.close().await;
    result
}
