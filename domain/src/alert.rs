//! The alert lifecycle aggregate: what an alert's stream `alert-{id}` says
//! (known to exist? acknowledged? resolved, with which verdict?) and the
//! rules for acknowledging and resolving it.
//!
//! - Acknowledge: recorded once; a repeat, by whoever, gets the first
//!   acknowledgement back (the first analyst and note stand). Refused once
//!   the alert is resolved, even if it was acknowledged too: whoever asks
//!   believes it is open, and that mistake is worth telling.
//! - Resolve: recorded once, acknowledged or not; the same verdict again (a
//!   retry, or a second analyst agreeing) gets the first resolution back;
//!   the other verdict is refused: a disagreement is for people to settle,
//!   not for the last writer to win.
//! - Neither is recorded for an alert that was never raised. An alert's
//!   `AlertRaised` lives in its customer's stream (ADR 0003), so a non-empty
//!   `alert-{id}` proves it exists; for an empty one the command side looks
//!   in the log and says so with [`AlertLifecycle::raised`].

use crate::events::{AlertAcknowledged, AlertResolved, DomainEvent};
use crate::outcome::{Aggregate, Decide, Outcome, Stamped};
use chrono::{DateTime, Utc};

/// Take an alert up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcknowledgeAlert(pub AlertAcknowledged);

/// Close an alert with a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveAlert(pub AlertResolved);

/// What an alert's own stream says. The first acknowledgement and the first
/// resolution stand; a second, if one got in some other way, changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertLifecycle {
    raised: bool,
    acknowledged: Option<Stamped<AlertAcknowledged>>,
    resolved: Option<Stamped<AlertResolved>>,
}

/// Why an alert command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertRefusal {
    /// No alert with that id was raised (404).
    NotRaised,
    /// Acknowledging an alert that is already resolved (409).
    AlreadyResolved(Stamped<AlertResolved>),
    /// Resolving with the other verdict than the one recorded (409).
    ResolvedOtherwise(Stamped<AlertResolved>),
}

impl AlertLifecycle {
    /// The same state, known to have been raised (its `AlertRaised` was found
    /// in the log).
    pub fn raised(mut self) -> Self {
        self.raised = true;
        self
    }

    /// Whether the alert is known to exist.
    pub fn is_raised(&self) -> bool {
        self.raised
    }

    pub fn acknowledged(&self) -> Option<&Stamped<AlertAcknowledged>> {
        self.acknowledged.as_ref()
    }

    pub fn resolved(&self) -> Option<&Stamped<AlertResolved>> {
        self.resolved.as_ref()
    }
}

impl Aggregate for AlertLifecycle {
    fn evolve(mut self, event: &DomainEvent, at: DateTime<Utc>) -> Self {
        // Whatever is in the stream was written after the alert's existence
        // was checked.
        self.raised = true;
        match event {
            DomainEvent::AlertAcknowledged(a) if self.acknowledged.is_none() => {
                self.acknowledged = Some(Stamped {
                    event: a.clone(),
                    at,
                });
            }
            DomainEvent::AlertResolved(r) if self.resolved.is_none() => {
                self.resolved = Some(Stamped {
                    event: r.clone(),
                    at,
                });
            }
            _ => {}
        }
        self
    }
}

impl Decide<AcknowledgeAlert> for AlertLifecycle {
    type Done = Stamped<AlertAcknowledged>;
    type Refusal = AlertRefusal;

    /// The resolution is looked at first: once resolved, the alert is closed
    /// to acknowledgements, a repeated one included.
    fn decide(&self, command: &AcknowledgeAlert) -> Result<Outcome<Self::Done>, AlertRefusal> {
        if !self.raised {
            return Err(AlertRefusal::NotRaised);
        }
        match (&self.resolved, &self.acknowledged) {
            (Some(resolved), _) => Err(AlertRefusal::AlreadyResolved(resolved.clone())),
            (None, Some(stored)) => Ok(Outcome::AlreadyDone(stored.clone())),
            (None, None) => Ok(Outcome::Append(command.0.clone().into())),
        }
    }
}

impl Decide<ResolveAlert> for AlertLifecycle {
    type Done = Stamped<AlertResolved>;
    type Refusal = AlertRefusal;

    /// Only a resolution counts here; an acknowledgement does not stand in
    /// the way of one.
    fn decide(&self, command: &ResolveAlert) -> Result<Outcome<Self::Done>, AlertRefusal> {
        if !self.raised {
            return Err(AlertRefusal::NotRaised);
        }
        match &self.resolved {
            None => Ok(Outcome::Append(command.0.clone().into())),
            Some(stored) if stored.event.verdict == command.0.verdict => {
                Ok(Outcome::AlreadyDone(stored.clone()))
            }
            Some(stored) => Err(AlertRefusal::ResolvedOtherwise(stored.clone())),
        }
    }
}
