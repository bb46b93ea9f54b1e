//! Builds the query API: the query pool, the schema, the live-alert feed,
//! the HTTP listener.

use crate::configuration::Settings;
use crate::db;
use crate::feed::AlertFeed;
use crate::http::{self, HttpState};
use crate::schema::{self, Shared};
use anyhow::Context;
use event_store::EventStore;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    feed: AlertFeed,
    pool: PgPool,
    store: Arc<dyn EventStore>,
    alert_poll_interval: Duration,
}

impl Application {
    /// `pool` names the database; the API opens its own query pool on it
    /// (see `db`), and reads the log through `store`.
    pub async fn build(
        settings: Settings,
        pool: PgPool,
        store: Arc<dyn EventStore>,
    ) -> anyhow::Result<Application> {
        telemetry::metrics_handle();
        let query_pool = db::query_pool(&pool, &settings)?;
        let feed = AlertFeed::new();
        // Sealed personal fields are shown opened with these (docs/trust.md).
        let keys = store
            .key_ring()
            .inspect_err(
                |error| tracing::warn!(%error, "no data keys: personal fields are shown sealed"),
            )
            .ok();
        let schema = schema::build(
            Shared {
                store: store.clone(),
                keys,
                limits: settings.limits,
                feed: feed.clone(),
                windows: Default::default(),
            },
            settings.limits,
            settings.expose_query_stats,
        );
        let router = http::router(HttpState {
            schema,
            pool: query_pool.clone(),
            store: store.clone(),
            tokens: Arc::new(settings.tokens.clone()),
            max_body_bytes: settings.limits.max_body_bytes,
            command: settings
                .command_url
                .as_deref()
                .map(crate::forward::CommandSide::new)
                .transpose()?,
        });
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        Ok(Application {
            listener,
            router,
            feed,
            pool: query_pool,
            store,
            alert_poll_interval: settings.alert_poll_interval,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes: then ends the subscriptions, stops
    /// the alert poller and finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let poller = tokio::spawn(self.feed.clone().run(
            self.pool.clone(),
            self.store.clone(),
            self.alert_poll_interval,
            stop_rx,
        ));
        let feed = self.feed.clone();
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Subscriptions never end by themselves: end them, so their
                // connections close and the server can drain.
                feed.close();
            })
            .await;
        let _ = stop_tx.send(true);
        let _ = poller.await;
        served.context("serving HTTP")
    }
}
