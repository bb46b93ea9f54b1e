//! What training, calibration and the pipeline read from and write to the
//! log besides the transactions: the policy book (the `ruleset` and
//! `policy` streams folded by `domain::policy::book::PolicyBook`), the model
//! book (the `model` stream, `domain::model::ModelBook`), and the appends,
//! each with the stream's expected version (optimistic concurrency, as the
//! command side's policy commands do): on a conflict, read again and let
//! the book decide again.

use anyhow::Context;
use domain::DomainEvent;
use domain::events::ModelTrained;
use domain::model::{Model, ModelBook};
use domain::policy::book::PolicyBook;
use domain::ruleset::Ruleset;
use event_store::postgres::PgEventStore;
use event_store::{AppendError, EventStore, ExpectedVersion, NewEvent, Payload, StreamVersion};

/// Attempts when other writers keep winning a stream.
const ATTEMPTS: usize = 5;
const PAGE: usize = 1_000;

/// A stream's events with their record times, and its version.
async fn read(
    store: &PgEventStore,
    stream: &str,
) -> anyhow::Result<(
    Vec<(DomainEvent, chrono::DateTime<chrono::Utc>)>,
    Option<StreamVersion>,
)> {
    let mut out = Vec::new();
    let (mut from, mut version) = (0, None);
    loop {
        let page = store
            .read_stream(stream, from, PAGE)
            .await
            .with_context(|| format!("reading the {stream} stream"))?;
        for e in &page {
            let event = DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str())
                .with_context(|| format!("reading {} at {}", e.event_type, e.position.0))?;
            out.push((event, e.event_time));
            version = Some(e.stream_version);
            from = e.stream_version + 1;
        }
        if page.len() < PAGE {
            return Ok((out, version));
        }
    }
}

/// The policy book and the `policy` stream's version.
pub async fn policy_book(
    store: &PgEventStore,
) -> anyhow::Result<(PolicyBook, Option<StreamVersion>)> {
    let mut book = PolicyBook::default();
    let (legacy, _) = read(store, domain::streams::RULESET).await?;
    let (events, version) = read(store, domain::streams::POLICY).await?;
    for (event, at) in legacy.iter().chain(&events) {
        book.apply(event, *at);
    }
    Ok((book, version))
}

/// The model book and the `model` stream's version.
pub async fn model_book(
    store: &PgEventStore,
) -> anyhow::Result<(ModelBook, Option<StreamVersion>)> {
    let mut book = ModelBook::default();
    let (events, version) = read(store, domain::streams::MODEL).await?;
    for (event, _) in &events {
        book.apply(event);
    }
    Ok((book, version))
}

/// The live policy with its model attached (when it names one the model
/// stream has and this build can load); `None` when nothing is live.
pub async fn live_policy(store: &PgEventStore) -> anyhow::Result<Option<Ruleset>> {
    let (policies, _) = policy_book(store).await?;
    let Some(live) = policies.live() else {
        return Ok(None);
    };
    let mut policy = (*live.policy).clone();
    let (models, _) = model_book(store).await?;
    if let Err(e) = models.attach(&mut policy) {
        tracing::warn!(policy = %policy.version, error = %e, "the live policy's model cannot be used");
    }
    Ok(Some(policy))
}

pub(crate) fn new_events(events: &[DomainEvent]) -> anyhow::Result<Vec<NewEvent>> {
    let at = chrono::Utc::now();
    events
        .iter()
        .map(|e| {
            Ok(NewEvent::with_payload(
                e.event_type(),
                e.schema_version(),
                at,
                Payload::from_json(e.to_json()?)?,
            ))
        })
        .collect()
}

fn expected(version: Option<StreamVersion>) -> ExpectedVersion {
    version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
}

/// A version name `base` made unique against `taken` (`-2`, `-3`, ...).
pub fn unique(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|v| !taken(v))
        .unwrap_or_else(|| base.to_owned())
}

/// Appends `ModelTrained` to the `model` stream; the version is made
/// unique against the stream first. Returns the version recorded.
pub async fn record_model(store: &PgEventStore, model: &Model, by: &str) -> anyhow::Result<String> {
    for _ in 0..ATTEMPTS {
        let (book, version) = model_book(store).await?;
        let mut model = model.clone();
        model.version = unique(&model.version, |v| book.contains(v));
        let recorded = model.version.clone();
        let event = DomainEvent::from(ModelTrained {
            model: Box::new(model),
            trained_by: by.to_owned(),
        });
        match store
            .append(
                domain::streams::MODEL,
                expected(version),
                new_events(&[event])?,
            )
            .await
        {
            Ok(_) => return Ok(recorded),
            Err(AppendError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(e).context("recording the model"),
        }
    }
    anyhow::bail!("recording the model: other writers kept changing the model stream")
}

/// What to do with a newly published policy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Promote,
    Shadow,
    Nothing,
}

/// Publishes `policy` (its version made unique against the book) by `by`,
/// then promotes it or makes it the shadow, in one append to the `policy`
/// stream. Returns the version published.
pub async fn publish(
    store: &PgEventStore,
    policy: &Ruleset,
    by: &str,
    then: Then,
) -> anyhow::Result<String> {
    for _ in 0..ATTEMPTS {
        let (book, version) = policy_book(store).await?;
        let mut policy = policy.clone();
        policy.version = unique(&policy.version, |v| book.version(v).is_some());
        let published = policy.version.clone();
        let policy = policy
            .checked()
            .map_err(|e| anyhow::anyhow!("the new policy {published} is not valid: {e}"))?;
        let mut events = book.publish(policy, by, then == Then::Shadow)?;
        if then == Then::Promote {
            // The book decides the promotion as it will stand once the
            // publication is folded.
            let mut after = book.clone();
            let now = chrono::Utc::now();
            for e in &events {
                after.apply(e, now);
            }
            events.push(after.promote(&published, by, false)?);
        }
        match store
            .append(
                domain::streams::POLICY,
                expected(version),
                new_events(&events)?,
            )
            .await
        {
            Ok(_) => return Ok(published),
            Err(AppendError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(e).context("publishing the policy"),
        }
    }
    anyhow::bail!("publishing the policy: other writers kept changing the policy stream")
}
