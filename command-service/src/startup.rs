//! Builds the command service: folds the model stream, then the policy
//! streams (so the live policy gets its model), and makes sure a
//! policy is live (`crate::policy::commands::bootstrap`), folds the
//! merchant and category counts and the transaction directory from the
//! whole log (`crate::peers`) and starts the follower that keeps them
//! current and the task publishing the live model's drift, wires the ingest to the event store, binds the listener.

use crate::commands::alerts::AlertCommands;
use crate::commands::labels::Labels;
use crate::configuration::Settings;
use crate::http::{self, App};
use crate::ingest::Ingest;
use crate::ingest::quarantine::Quarantine;
use crate::peers::{Follower, LivePeers};
use crate::policy::LivePolicy;
use crate::policy::commands::bootstrap;
use crate::policy::publisher::DriftPublisher;
use anyhow::Context;
use domain::Ruleset;
use domain::money::Currency;
use event_store::EventStore;
use event_store::postgres::keys::KeyRing;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: Arc<App>,
}

impl Application {
    /// The service over `store`, with the data keys of personal fields
    /// from the store itself (the PostgreSQL log keeps them beside it).
    pub async fn build(
        settings: Settings,
        store: Arc<dyn EventStore>,
    ) -> anyhow::Result<Application> {
        // Crypto-shredding's data keys (docs/trust.md): beside the log in
        // PostgreSQL, wrapped by the master key. A backend without them
        // refuses here rather than store personal fields in the clear.
        let keys = store
            .key_ring()
            .context("setting up the data keys of personal fields")?;
        Self::build_with_keys(settings, store, keys).await
    }

    /// The service with a key ring given apart from the store (tests; a
    /// store not opened with `event_store::open`, which gives every backend
    /// its key ring in PostgreSQL).
    pub async fn build_with_keys(
        settings: Settings,
        store: Arc<dyn EventStore>,
        keys: Arc<KeyRing>,
    ) -> anyhow::Result<Application> {
        crate::metrics::handle();
        anyhow::ensure!(
            !settings.four_eyes || !settings.tokens.is_empty(),
            "SENTINEL_POLICY_FOUR_EYES needs SENTINEL_TOKENS: with an open API nobody can be told apart"
        );
        let configured = load_ruleset(&settings)?;
        let policy = Arc::new(
            LivePolicy::load(&*store, configured.clone().unwrap_or_default())
                .await
                .context("folding the model and policy streams")?,
        );
        bootstrap(&*store, &policy, configured).await?;
        let default_currency = Currency::parse(&settings.default_currency)
            .map_err(|e| anyhow::anyhow!("SENTINEL_DEFAULT_CURRENCY: {e}"))?;
        // Before anything is answered: decisions read these counts, and
        // labels find their transactions through the directory.
        let peers = Arc::new(
            LivePeers::load(&*store, settings.max_merchants, settings.label_directory)
                .await
                .context("folding the merchant counts from the log")?,
        );
        let follower = Follower::start(peers.clone(), policy.clone(), store.clone());
        let drift = DriftPublisher::start(policy.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let labels = Labels::new(store.clone(), peers.clone());
        let app = Arc::new(App {
            ingest: Ingest::new(
                store.clone(),
                keys.clone(),
                policy,
                peers.clone(),
                settings.ingest.clone(),
            ),
            quarantine: Quarantine::new(store.clone(), keys),
            alerts: AlertCommands::new(store, labels.clone()),
            labels,
            peers,
            follower,
            drift,
            default_currency,
            settings,
        });
        Ok(Application {
            listener,
            router: http::router(app.clone()),
            state: app,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the handlers share; tests and benchmarks read the ingest's
    /// customer cache from it (`state().ingest.cached_customers()`).
    pub fn state(&self) -> Arc<App> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then finishes requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // With the peer's address, which the rate limit keys callers
        // without a known token by.
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// The policy file the service is configured with, if any.
fn load_ruleset(settings: &Settings) -> anyhow::Result<Option<Ruleset>> {
    let Some(path) = &settings.ruleset_path else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    domain::policy::from_toml(&text)
        .map(Some)
        .with_context(|| format!("{} is not a valid policy", path.display()))
}
