//! The policy lifecycle as commands on the `policy` stream, carried out by
//! the one command pipeline: read the streams, fold the book, let the book
//! decide (`domain::policy::book`), append with the expected version, and
//! on a conflict (another admin, another replica) read again. Once appended
//! the events are folded into this replica's `LivePolicy` at once; the
//! others fold them from the log through their followers.

use super::live::LivePolicy;
use crate::commands::CommandError;
use crate::commands::events::{new_event, read_from};
use crate::commands::pipeline::{self, CommandStream, Step};
use chrono::{SubsecRound, Utc};
use domain::policy::book::{CONFIGURATION, PolicyBook, PolicyRefusal};
use domain::{DomainEvent, Ruleset};
use event_store::{AppendOutcome, EventMetadata, EventStore, StreamVersion};

/// What an admin (or the service at start) asks of the policy.
#[derive(Debug, Clone)]
pub enum PolicyCommand {
    /// Record a new version; with `shadow`, also make it the shadow.
    Publish {
        policy: Box<Ruleset>,
        shadow: bool,
    },
    Promote {
        version: String,
    },
    Rollback,
    /// Set (`Some`) or clear (`None`) the shadow.
    SetShadow {
        version: Option<String>,
    },
}

pub type PolicyError = CommandError<PolicyRefusal>;

/// Carries out `command` as `by`; the book as it stands afterwards.
pub async fn execute(
    store: &dyn EventStore,
    live: &LivePolicy,
    command: PolicyCommand,
    by: &str,
    four_eyes: bool,
    metadata: EventMetadata,
) -> Result<PolicyBook, PolicyError> {
    let mut on = OnPolicy {
        store,
        command,
        by,
        four_eyes,
        metadata,
        book: PolicyBook::default(),
        version: None,
        decided: Vec::new(),
    };
    pipeline::run(store, &mut on).await?;
    live.replace(on.book.clone());
    Ok(on.book)
}

/// At start: make sure a policy is live. A policy file the service is
/// configured with is published and promoted when its version is new to the
/// log; a version the log already has is left as the log says (a restart
/// never undoes an admin's promote), unless its content differs, which is
/// an error. With no file, the built-in default is published and promoted
/// only when nothing is live yet.
pub async fn bootstrap(
    store: &dyn EventStore,
    live: &LivePolicy,
    configured: Option<Ruleset>,
) -> anyhow::Result<()> {
    let book = super::live::read_book(store).await?;
    let explicit = configured.is_some();
    let policy = configured.unwrap_or_default();
    if let Some(known) = book.version(&policy.version) {
        anyhow::ensure!(
            !explicit || *known.policy == policy,
            "the policy file's version {:?} is already in the log with different content: give the file a new version",
            policy.version
        );
        return Ok(());
    }
    if !explicit && book.live().is_some() {
        return Ok(());
    }
    // Never publish a policy whose model cannot score here.
    if let Some(model) = &policy.model {
        live.model(store, model)
            .await?
            .map_err(|e| anyhow::anyhow!("the policy file's version {:?}: {e}", policy.version))?;
    }
    let version = policy.version.clone();
    for command in [
        PolicyCommand::Publish {
            policy: Box::new(policy),
            shadow: false,
        },
        PolicyCommand::Promote { version },
    ] {
        match execute(
            store,
            live,
            command,
            CONFIGURATION,
            false,
            EventMetadata::default(),
        )
        .await
        {
            // Another replica starting at the same moment did it first.
            Ok(_)
            | Err(CommandError::Refused(
                PolicyRefusal::VersionExists(_) | PolicyRefusal::AlreadyLive(_),
            )) => {}
            Err(CommandError::Refused(refusal)) => anyhow::bail!("{refusal}"),
            Err(CommandError::Store(detail)) => anyhow::bail!("publishing the policy: {detail}"),
            Err(CommandError::CatchingUp) => anyhow::bail!("publishing the policy: catching up"),
        }
    }
    Ok(())
}

struct OnPolicy<'a> {
    store: &'a dyn EventStore,
    command: PolicyCommand,
    by: &'a str,
    four_eyes: bool,
    metadata: EventMetadata,
    book: PolicyBook,
    version: Option<StreamVersion>,
    /// Decided, with the time they are recorded at, folded once appended.
    decided: Vec<(DomainEvent, chrono::DateTime<Utc>)>,
}

impl CommandStream for OnPolicy<'_> {
    type Done = ();
    type Error = PolicyError;

    fn stream(&self) -> &str {
        domain::streams::POLICY
    }

    fn version(&self) -> Option<StreamVersion> {
        self.version
    }

    async fn load(&mut self) -> Result<(), PolicyError> {
        let store_error = |e: event_store::StoreError| CommandError::Store(e.to_string());
        let mut book = PolicyBook::default();
        let (legacy, _) = read_from(self.store, domain::streams::RULESET, 0)
            .await
            .map_err(store_error)?;
        let (events, version) = read_from(self.store, domain::streams::POLICY, 0)
            .await
            .map_err(store_error)?;
        for (event, at) in legacy.iter().chain(&events) {
            book.apply(event, *at);
        }
        self.book = book;
        self.version = version;
        Ok(())
    }

    async fn decide(&mut self) -> Result<Step<()>, PolicyError> {
        let book = &self.book;
        let events = match &self.command {
            PolicyCommand::Publish { policy, shadow } => {
                book.publish((**policy).clone(), self.by, *shadow)
            }
            PolicyCommand::Promote { version } => book
                .promote(version, self.by, self.four_eyes)
                .map(|e| vec![e]),
            PolicyCommand::Rollback => book.rollback(self.by).map(|e| vec![e]),
            PolicyCommand::SetShadow { version } => book
                .set_shadow(version.as_deref(), self.by)
                .map(|e| vec![e]),
        }
        .map_err(CommandError::Refused)?;
        // Microseconds: what the log keeps.
        let at = Utc::now().trunc_subsecs(6);
        let mut new = Vec::with_capacity(events.len());
        for event in &events {
            new.push(
                new_event(event, at, self.metadata.clone())
                    .map_err(|e| CommandError::Store(e.to_string()))?,
            );
        }
        self.decided = events.into_iter().map(|e| (e, at)).collect();
        Ok(Step::Append {
            events: new,
            then: (),
        })
    }

    fn appended(&mut self, _outcome: &AppendOutcome) {
        for (event, at) in self.decided.drain(..) {
            self.book.apply(&event, at);
        }
    }

    fn forget(&mut self) {
        self.decided.clear();
    }
}
