//! The projection runtime on port 0 over the test's database, and ways to
//! know where it is: waiting until projectors have applied the whole log,
//! or creating the read models empty for tests that run no projector.

use event_store::EventStore;
use projection_service::configuration::Settings;
use projection_service::startup::Application;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A running projection service; [`Projection::shutdown`] stops it and
/// waits, dropping the handle stops it without waiting.
pub struct Projection {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The projection service with every projector and its default settings.
pub async fn spawn_projection(pool: PgPool, store: Arc<dyn EventStore>) -> Projection {
    spawn_projection_with(pool, store, Settings::default()).await
}

/// The projection service with `settings`, on port 0 and publishing its
/// status every 200 ms (so `/readyz` and the lag follow quickly).
pub async fn spawn_projection_with(
    pool: PgPool,
    store: Arc<dyn EventStore>,
    settings: Settings,
) -> Projection {
    let settings = Settings {
        listen: crate::any_port(),
        status_interval: Duration::from_millis(200),
        ..settings
    };
    let app = Application::build(settings, pool, store)
        .await
        .expect("projection service");
    let addr = app.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Projection {
        base: format!("http://{addr}"),
        stop: Some(stop),
        done,
    }
}

impl Projection {
    /// Stops the service and waits (at most 20 s) for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut self.done).await;
    }
}

impl Drop for Projection {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The names of every projector the service runs by default.
pub fn all_projectors() -> Vec<String> {
    projection_service::models::all()
        .iter()
        .map(|p| p.name().to_owned())
        .collect()
}

/// Waits (at most 120 s) until every projector in `names` has applied the
/// whole log, judged by its serving schema's checkpoints.
pub async fn wait_caught_up(pool: &PgPool, store: &dyn EventStore, names: &[&str]) {
    let what = "not caught up with the log's head";
    crate::wait::until(
        what,
        Duration::from_secs(120),
        Duration::from_millis(50),
        || async {
            let head = store.head_position().await.expect("head").0 as i64;
            let mut behind = Vec::new();
            for name in names {
                let sql = format!(
                    "SELECT coalesce(min(position), 0) FROM {}.checkpoint",
                    projection_service::schema::serving(name)
                );
                let at: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await
                    .unwrap_or(-1);
                if at < head {
                    behind.push(format!("{name} at {at}"));
                }
            }
            if behind.is_empty() {
                Ok(())
            } else {
                Err(format!("head {head}: {behind:?}"))
            }
        },
    )
    .await;
}

/// Waits until every projector has applied the whole log.
pub async fn wait_all_caught_up(pool: &PgPool, store: &dyn EventStore) {
    let names = all_projectors();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_caught_up(pool, store, &names).await;
}

/// Creates every read model's serving schema, empty, as a projection
/// service starting on an empty log does (for tests of the query API that
/// need no data, hence no projector).
pub async fn empty_read_models(pool: &PgPool) {
    let mut tx = pool.begin().await.expect("begin");
    for p in projection_service::models::all() {
        let name = projection_service::schema::serving(p.name());
        projection_service::schema::create(&mut tx, &name, &*p)
            .await
            .expect("create read model");
    }
    tx.commit().await.expect("commit");
}
