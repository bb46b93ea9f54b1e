//! The policy stream folded, and the active policies every decision reads.
//!
//! `LivePolicy` holds the `PolicyBook` (folded from the `ruleset` stream,
//! then the `policy` stream), the `ModelBook` (folded from the `model`
//! stream) and an `Arc<ActivePolicy>`: the live policy and the shadow, if
//! any, each with the model it names attached (`ModelBook::attach`).
//! Decisions take the `Arc` once per request (`current`); a change builds a
//! new `ActivePolicy` and swaps the pointer, so a request in flight finishes
//! with what it took.
//!
//! Never half a policy: a policy naming a model this replica does not have
//! (not yet folded, or not loadable by this build) is not made live. The
//! log orders a model's `ModelTrained` before any policy naming it, so the
//! follower folds the model first and this does not happen in practice; if
//! it does, the replica keeps deciding with the previous live policy (whole,
//! with its own model), logs an error and counts
//! `sentinel_policy_model_missing_total{policy,model}`, and switches as
//! soon as the model is folded. A shadow without its model is dropped the
//! same way (a shadow acts on nothing). At start, the previous policy is
//! the most recently promoted other version that can be used whole (what
//! the running replicas kept); only when there is none does `load` fail,
//! naming the model.

use super::drift::{DriftWindow, WINDOW};
use crate::commands::events::{decode, read_from};
use domain::Ruleset;
use domain::model::book::AttachError;
use domain::model::{LoadedModel, ModelBook};
use domain::policy::book::PolicyBook;
use event_store::{EventStore, RecordedEvent, StoreError};
use std::sync::{Arc, PoisonError, RwLock};

/// What decides now: the live policy, and the shadow that decides beside it.
#[derive(Clone)]
pub struct ActivePolicy {
    pub live: Arc<Ruleset>,
    pub shadow: Option<Arc<Ruleset>>,
    /// The live model's drift counts (`super::drift`), when it has one.
    pub drift: Option<Arc<DriftWindow>>,
}

impl std::fmt::Debug for ActivePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivePolicy")
            .field("live", &self.live.version)
            .field("shadow", &self.shadow.as_ref().map(|s| &s.version))
            .finish_non_exhaustive()
    }
}

/// A policy with its model attached, or why it cannot have it.
fn attached(models: &ModelBook, policy: &Ruleset) -> Result<Arc<Ruleset>, AttachError> {
    let mut policy = policy.clone();
    models.attach(&mut policy)?;
    Ok(Arc::new(policy))
}

fn missing(policy: &Ruleset, error: &AttachError, role: &str) {
    let model = policy.model.clone().unwrap_or_default();
    tracing::error!(policy = %policy.version, %model, %error, role, "a policy names a model this replica cannot use; not switching to it");
    metrics::counter!("sentinel_policy_model_missing_total", "policy" => policy.version.clone(), "model" => model)
        .increment(1);
}

impl ActivePolicy {
    /// The book's live and shadow policies with their models; a live
    /// policy without its model leaves `previous` live (`None` when there
    /// is none); a shadow without its model is left out.
    fn of(
        book: &PolicyBook,
        models: &ModelBook,
        previous: Option<&ActivePolicy>,
    ) -> Result<Option<ActivePolicy>, AttachError> {
        let Some(record) = book.live() else {
            return Ok(None);
        };
        let live = match previous {
            // Already live with its model: keep it (no reload, same drift).
            Some(p)
                if p.live.version == record.policy.version
                    && p.live.model == record.policy.model =>
            {
                p.live.clone()
            }
            _ => match attached(models, &record.policy) {
                Ok(live) => live,
                Err(error) => {
                    missing(&record.policy, &error, "live");
                    match previous {
                        Some(p) => p.live.clone(),
                        // At start: the last policy live before it that can
                        // be used whole, as the running replicas kept.
                        None => previously_live(book, models).ok_or(error)?,
                    }
                }
            },
        };
        let shadow = book
            .shadow()
            .and_then(|s| match attached(models, &s.policy) {
                Ok(shadow) => Some(shadow),
                Err(error) => {
                    missing(&s.policy, &error, "shadow");
                    None
                }
            });
        let drift = scorer_model(&live).map(|m| match previous.and_then(|p| p.drift.as_ref()) {
            // The same model (another policy version naming it): the window
            // goes on.
            Some(d) if d.version() == m.version() => d.clone(),
            _ => Arc::new(DriftWindow::new(m, WINDOW)),
        });
        Ok(Some(ActivePolicy {
            live,
            shadow,
            drift,
        }))
    }

    fn same_as(&self, other: &ActivePolicy) -> bool {
        self.live.version == other.live.version
            && self.shadow.as_ref().map(|s| &s.version) == other.shadow.as_ref().map(|s| &s.version)
    }
}

/// The most recently promoted version other than the live one whose model
/// (if any) can be attached.
fn previously_live(book: &PolicyBook, models: &ModelBook) -> Option<Arc<Ruleset>> {
    let live = book.live().map(|l| l.version().to_owned());
    let mut promoted: Vec<_> = book
        .versions()
        .iter()
        .enumerate()
        .filter(|(_, r)| Some(r.version()) != live.as_deref())
        .filter_map(|(i, r)| r.promotions.last().map(|p| ((p.at, i), r)))
        .collect();
    promoted.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
    promoted
        .into_iter()
        .find_map(|(_, r)| attached(models, &r.policy).ok())
}

fn scorer_model(policy: &Ruleset) -> Option<Arc<LoadedModel>> {
    policy.scorer.0.clone()
}

pub struct LivePolicy {
    book: RwLock<PolicyBook>,
    models: RwLock<ModelBook>,
    active: RwLock<Arc<ActivePolicy>>,
}

impl LivePolicy {
    /// Folds the model stream, then the policy streams; `fallback` decides
    /// until a policy is live (the service publishes one at start,
    /// `commands::bootstrap`). Fails if the live policy names a model the
    /// log does not have or this build cannot load and no earlier live
    /// version can stand in for it.
    pub async fn load(store: &dyn EventStore, fallback: Ruleset) -> anyhow::Result<LivePolicy> {
        let models = read_models(store).await?;
        let book = read_book(store).await?;
        let active = match ActivePolicy::of(&book, &models, None) {
            Ok(Some(active)) => active,
            Ok(None) => {
                let live = attached(&models, &fallback).map_err(|e| {
                    anyhow::anyhow!("the configured policy {}: {e}", fallback.version)
                })?;
                ActivePolicy {
                    drift: scorer_model(&live).map(|m| Arc::new(DriftWindow::new(m, WINDOW))),
                    live,
                    shadow: None,
                }
            }
            Err(error) => anyhow::bail!(
                "the live policy {} cannot be used: {error}",
                book.live().map(|l| l.version()).unwrap_or_default()
            ),
        };
        Ok(LivePolicy {
            book: RwLock::new(book),
            models: RwLock::new(models),
            active: RwLock::new(Arc::new(active)),
        })
    }

    /// The policies to decide one request with.
    pub fn current(&self) -> Arc<ActivePolicy> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A copy of the folded stream (for the lifecycle's answers).
    pub fn book(&self) -> PolicyBook {
        self.book
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the book with one folded afresh (after this replica's own
    /// lifecycle command, so it switches at once, not when the follower
    /// comes by).
    pub fn replace(&self, book: PolicyBook) {
        let mut held = self.book.write().unwrap_or_else(PoisonError::into_inner);
        // The follower may have folded further already; never go back.
        if book.policy_events_folded() >= held.policy_events_folded() {
            *held = book;
        }
        self.activate(&held);
    }

    /// Folds the model and policy events among `events` (the follower's
    /// runs of the global log); the rest are ignored.
    pub fn apply(&self, events: &[RecordedEvent]) {
        let mut changed = false;
        for e in events {
            let model = e.stream_id == domain::streams::MODEL;
            if !model
                && e.stream_id != domain::streams::POLICY
                && e.stream_id != domain::streams::RULESET
            {
                continue;
            }
            let Some(event) = decode(e) else { continue };
            if model {
                // Folding a version again replaces it with the same model.
                self.models
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(&event);
                changed = true;
                continue;
            }
            let mut book = self.book.write().unwrap_or_else(PoisonError::into_inner);
            // A replica that folded this already (its own command) skips it.
            if e.stream_id == domain::streams::POLICY
                && book.policy_events_folded() > e.stream_version
            {
                continue;
            }
            book.apply(&event, e.event_time);
            changed = true;
        }
        if changed {
            let book = self.book.read().unwrap_or_else(PoisonError::into_inner);
            self.activate(&book);
        }
    }

    /// Replaces the models with ones folded afresh (the follower, when it
    /// starts: a model recorded while the service was starting is not
    /// missed), keeping any this replica has that `models` lacks.
    pub fn replace_models(&self, models: ModelBook) {
        {
            let mut held = self.models.write().unwrap_or_else(PoisonError::into_inner);
            if models.len() >= held.len() {
                *held = models;
            }
        }
        let book = self.book.read().unwrap_or_else(PoisonError::into_inner);
        self.activate(&book);
    }

    /// The loaded model of `version`, reading the `model` stream again
    /// when this replica does not have it yet (a model `fraudctl` has just
    /// recorded may not have reached the follower).
    pub async fn model(
        &self,
        store: &dyn EventStore,
        version: &str,
    ) -> Result<Result<Arc<LoadedModel>, AttachError>, StoreError> {
        let held = self
            .models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(version);
        match held {
            Err(AttachError::Unknown(_)) => {
                let models = read_models(store).await?;
                let found = models.get(version);
                self.replace_models(models);
                Ok(found)
            }
            other => Ok(other),
        }
    }

    /// Versions of the models folded, in order.
    pub fn model_versions(&self) -> Vec<String> {
        self.models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .versions()
            .map(str::to_owned)
            .collect()
    }

    fn activate(&self, book: &PolicyBook) {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        // An error here is a live policy without its model and nothing
        // before it: impossible once loaded (there is always a previous).
        let Ok(Some(next)) = ActivePolicy::of(book, &models, Some(&active)) else {
            return;
        };
        if !active.same_as(&next) {
            tracing::info!(
                live = %next.live.version,
                shadow = next.shadow.as_ref().map(|s| s.version.as_str()),
                model = next.live.model.as_deref(),
                "policy switched"
            );
            metrics::counter!("sentinel_policy_switches_total").increment(1);
            *active = Arc::new(next);
        }
    }
}

/// The `model` stream folded: every recorded model, loaded.
pub async fn read_models(store: &dyn EventStore) -> Result<ModelBook, StoreError> {
    let mut models = ModelBook::default();
    let (events, _) = read_from(store, domain::streams::MODEL, 0).await?;
    for (event, _) in &events {
        models.apply(event);
    }
    Ok(models)
}

/// The `ruleset` stream (rulesets from before policies), then the `policy`
/// stream, folded.
pub async fn read_book(store: &dyn EventStore) -> Result<PolicyBook, StoreError> {
    let mut book = PolicyBook::default();
    for stream in [domain::streams::RULESET, domain::streams::POLICY] {
        let (events, _) = read_from(store, stream, 0).await?;
        for (event, at) in &events {
            book.apply(event, *at);
        }
    }
    Ok(book)
}
