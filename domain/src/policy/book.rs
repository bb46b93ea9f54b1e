//! The policy stream folded: every version with who published and promoted
//! it and when, the live version, the shadow, and the versions that were
//! live before (what a rollback returns to). The lifecycle's decisions are
//! here too, as pure functions from the book and a request to the events to
//! append or the reason to refuse: publish (a version is recorded once),
//! promote (four eyes: optionally not by its publisher), roll back, set or
//! clear the shadow.
//!
//! Rulesets published before policies (`RulesetPublished`, the `ruleset`
//! stream) read as their version published and promoted at once by
//! `configuration`: the log is never rewritten, the fold upcasts.

use crate::events::{
    DomainEvent, EventPayload, PolicyPromoted, PolicyPublished, PolicyRolledBack, RulesetPublished,
    ShadowPolicySet,
};
use crate::ruleset::Ruleset;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The event types the book folds (the legacy ruleset's and the policy
/// stream's), for readers that scan the log by type.
pub const EVENT_TYPES: &[&str] = &[
    RulesetPublished::EVENT_TYPE,
    PolicyPublished::EVENT_TYPE,
    PolicyPromoted::EVENT_TYPE,
    PolicyRolledBack::EVENT_TYPE,
    ShadowPolicySet::EVENT_TYPE,
];

/// Who acts when the service itself publishes (a policy file or the
/// built-in default at start).
pub const CONFIGURATION: &str = "configuration";

/// A promotion (or a rollback that made the version live again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub by: String,
    pub at: DateTime<Utc>,
    /// True when a rollback made it live again.
    pub rollback: bool,
}

/// One version as the stream tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub policy: Arc<Ruleset>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    pub promotions: Vec<Promotion>,
}

impl VersionRecord {
    pub fn version(&self) -> &str {
        &self.policy.version
    }
}

/// The folded stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyBook {
    /// In publishing order.
    versions: Vec<VersionRecord>,
    live: Option<usize>,
    shadow: Option<usize>,
    /// Versions live before the current one, oldest first.
    earlier: Vec<usize>,
    /// Events of the `policy` stream folded (the legacy ruleset events are
    /// not counted): a reader that folds from the log and also from its own
    /// appends skips what it has.
    policy_events: u64,
}

/// Why a lifecycle request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("policy version {0:?} already exists: give the new policy a new version")]
    VersionExists(String),
    #[error("there is no policy version {0:?}")]
    UnknownVersion(String),
    #[error("policy version {0:?} is already live")]
    AlreadyLive(String),
    #[error("four eyes: {by} published {version:?}, so another admin must promote it")]
    FourEyes { version: String, by: String },
    #[error("there is no earlier live policy to roll back to")]
    NothingToRollBackTo,
    #[error("policy version {0:?} is live: it cannot also be the shadow")]
    ShadowIsLive(String),
}

impl PolicyBook {
    /// Folds one event of the policy (or legacy ruleset) stream, recorded at
    /// `at`; other events change nothing.
    pub fn apply(&mut self, event: &DomainEvent, at: DateTime<Utc>) {
        if matches!(
            event,
            DomainEvent::PolicyPublished(_)
                | DomainEvent::PolicyPromoted(_)
                | DomainEvent::PolicyRolledBack(_)
                | DomainEvent::ShadowPolicySet(_)
        ) {
            self.policy_events += 1;
        }
        match event {
            DomainEvent::RulesetPublished(e) => {
                let index = match self.index_of(&e.version) {
                    Some(i) => i,
                    None => self.record(e.ruleset.clone(), CONFIGURATION, at),
                };
                self.make_live(index, CONFIGURATION, at);
            }
            DomainEvent::PolicyPublished(e) if self.index_of(&e.version).is_none() => {
                self.record(e.policy.clone(), &e.published_by, at);
            }
            DomainEvent::PolicyPromoted(e) => {
                if let Some(index) = self.index_of(&e.version) {
                    self.make_live(index, &e.promoted_by, at);
                }
            }
            DomainEvent::PolicyRolledBack(e) => {
                if let Some(index) = self.index_of(&e.to) {
                    // Back past the rolled-back version: it is not an
                    // "earlier live" version for the next rollback.
                    if let Some(pos) = self.earlier.iter().rposition(|&i| i == index) {
                        self.earlier.truncate(pos);
                    }
                    self.live = Some(index);
                    if self.shadow == Some(index) {
                        self.shadow = None;
                    }
                    self.versions[index].promotions.push(Promotion {
                        by: e.rolled_back_by.clone(),
                        at,
                        rollback: true,
                    });
                }
            }
            DomainEvent::ShadowPolicySet(e) => {
                self.shadow = e.version.as_deref().and_then(|v| self.index_of(v));
            }
            _ => {}
        }
    }

    fn record(&mut self, policy: Ruleset, by: &str, at: DateTime<Utc>) -> usize {
        self.versions.push(VersionRecord {
            policy: Arc::new(policy),
            published_by: by.to_owned(),
            published_at: at,
            promotions: Vec::new(),
        });
        self.versions.len() - 1
    }

    fn make_live(&mut self, index: usize, by: &str, at: DateTime<Utc>) {
        if self.live == Some(index) {
            return;
        }
        if let Some(previous) = self.live {
            self.earlier.push(previous);
        }
        self.live = Some(index);
        if self.shadow == Some(index) {
            self.shadow = None;
        }
        self.versions[index].promotions.push(Promotion {
            by: by.to_owned(),
            at,
            rollback: false,
        });
    }

    fn index_of(&self, version: &str) -> Option<usize> {
        self.versions.iter().position(|r| r.version() == version)
    }

    /// How many `policy` stream events are folded: the stream version the
    /// next one has.
    pub fn policy_events_folded(&self) -> u64 {
        self.policy_events
    }

    pub fn version(&self, version: &str) -> Option<&VersionRecord> {
        self.index_of(version).map(|i| &self.versions[i])
    }

    /// Every version, in publishing order.
    pub fn versions(&self) -> &[VersionRecord] {
        &self.versions
    }

    pub fn live(&self) -> Option<&VersionRecord> {
        self.live.map(|i| &self.versions[i])
    }

    pub fn shadow(&self) -> Option<&VersionRecord> {
        self.shadow.map(|i| &self.versions[i])
    }

    /// The version a rollback would make live.
    pub fn rollback_target(&self) -> Option<&VersionRecord> {
        self.earlier.last().map(|&i| &self.versions[i])
    }

    /// Records `policy`; with `shadow`, also makes it the shadow.
    pub fn publish(
        &self,
        policy: Ruleset,
        by: &str,
        shadow: bool,
    ) -> Result<Vec<DomainEvent>, PolicyRefusal> {
        if self.index_of(&policy.version).is_some() {
            return Err(PolicyRefusal::VersionExists(policy.version));
        }
        let version = policy.version.clone();
        let mut events = vec![DomainEvent::from(PolicyPublished {
            version: version.clone(),
            policy,
            published_by: by.to_owned(),
        })];
        if shadow {
            events.push(
                ShadowPolicySet {
                    version: Some(version),
                    set_by: by.to_owned(),
                }
                .into(),
            );
        }
        Ok(events)
    }

    /// Makes `version` live. With `four_eyes`, not by the admin who
    /// published it (a version the service published from its
    /// configuration may be promoted by anyone).
    pub fn promote(
        &self,
        version: &str,
        by: &str,
        four_eyes: bool,
    ) -> Result<DomainEvent, PolicyRefusal> {
        let record = self
            .version(version)
            .ok_or_else(|| PolicyRefusal::UnknownVersion(version.to_owned()))?;
        if self.live().is_some_and(|l| l.version() == version) {
            return Err(PolicyRefusal::AlreadyLive(version.to_owned()));
        }
        if four_eyes && record.published_by == by && by != CONFIGURATION {
            return Err(PolicyRefusal::FourEyes {
                version: version.to_owned(),
                by: by.to_owned(),
            });
        }
        Ok(PolicyPromoted {
            version: version.to_owned(),
            previous: self.live().map(|l| l.version().to_owned()),
            promoted_by: by.to_owned(),
        }
        .into())
    }

    /// Makes the previously live version live again. Not subject to four
    /// eyes: going back to what ran before is the on-call engineer's
    /// emergency exit.
    pub fn rollback(&self, by: &str) -> Result<DomainEvent, PolicyRefusal> {
        let (Some(live), Some(target)) = (self.live(), self.rollback_target()) else {
            return Err(PolicyRefusal::NothingToRollBackTo);
        };
        Ok(PolicyRolledBack {
            from: live.version().to_owned(),
            to: target.version().to_owned(),
            rolled_back_by: by.to_owned(),
        }
        .into())
    }

    /// Sets (`Some`) or clears (`None`) the shadow policy.
    pub fn set_shadow(
        &self,
        version: Option<&str>,
        by: &str,
    ) -> Result<DomainEvent, PolicyRefusal> {
        if let Some(v) = version {
            if self.version(v).is_none() {
                return Err(PolicyRefusal::UnknownVersion(v.to_owned()));
            }
            if self.live().is_some_and(|l| l.version() == v) {
                return Err(PolicyRefusal::ShadowIsLive(v.to_owned()));
            }
        }
        Ok(ShadowPolicySet {
            version: version.map(str::to_owned),
            set_by: by.to_owned(),
        }
        .into())
    }
}
