//! Builds the command service: loads and publishes the ruleset, folds the
//! merchant and category counts and the transaction directory from the
//! whole log (`crate::peers`) and starts the follower that keeps them
//! current, wires the ingest to the event store, binds the listener.

use crate::commands::alerts::AlertCommands;
use crate::commands::events::new_event;
use crate::commands::labels::Labels;
use crate::configuration::Settings;
use crate::http::{self, App};
use crate::ingest::Ingest;
use crate::ingest::quarantine::Quarantine;
use crate::peers::{Follower, LivePeers};
use anyhow::Context;
use domain::events::RulesetPublished;
use domain::money::Currency;
use domain::{DomainEvent, Ruleset};
use event_store::{EventMetadata, EventStore, ExpectedVersion};
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
    pub async fn build(
        settings: Settings,
        store: Arc<dyn EventStore>,
    ) -> anyhow::Result<Application> {
        crate::metrics::handle();
        let ruleset = load_ruleset(&settings)?;
        publish_ruleset(&*store, &ruleset).await?;
        let default_currency = Currency::parse(&settings.default_currency)
            .map_err(|e| anyhow::anyhow!("SENTINEL_DEFAULT_CURRENCY: {e}"))?;
        // Before anything is answered: decisions read these counts, and
        // labels find their transactions through the directory.
        let peers = Arc::new(
            LivePeers::load(&*store, settings.max_merchants, settings.label_directory)
                .await
                .context("folding the merchant counts from the log")?,
        );
        let follower = Follower::start(peers.clone(), store.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let labels = Labels::new(store.clone(), peers.clone());
        let app = Arc::new(App {
            ingest: Ingest::new(
                store.clone(),
                Arc::new(ruleset),
                peers.clone(),
                settings.ingest.clone(),
            ),
            quarantine: Quarantine::new(store.clone()),
            alerts: AlertCommands::new(store, labels.clone()),
            labels,
            peers,
            follower,
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

fn load_ruleset(settings: &Settings) -> anyhow::Result<Ruleset> {
    match &settings.ruleset_path {
        None => Ok(Ruleset::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("{} is not a valid ruleset", path.display()))
        }
    }
}

/// Appends `RulesetPublished` when the ruleset in force differs from the
/// last one published, so every decision's ruleset version can be looked up.
async fn publish_ruleset(store: &dyn EventStore, ruleset: &Ruleset) -> anyhow::Result<()> {
    let stream = domain::streams::RULESET;
    let mut last = None;
    let mut from = 0;
    loop {
        let page = store.read_stream(stream, from, 1000).await?;
        let Some(e) = page.last() else { break };
        from = e.stream_version + 1;
        last = Some(e.clone());
    }
    if let Some(e) = &last
        && let Ok(DomainEvent::RulesetPublished(p)) =
            DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str())
        && &p.ruleset == ruleset
    {
        return Ok(());
    }
    let event = DomainEvent::from(RulesetPublished {
        version: ruleset.version.clone(),
        ruleset: ruleset.clone(),
    });
    let new = new_event(&event, chrono::Utc::now(), EventMetadata::default())?;
    let expected = last.map_or(ExpectedVersion::NoStream, |e| {
        ExpectedVersion::Exact(e.stream_version)
    });
    match store.append(stream, expected, vec![new]).await {
        // Another replica published at the same moment: fine.
        Ok(_) | Err(event_store::AppendError::WrongExpectedVersion { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
