//! What deciding on a command comes to, for the aggregates whose state is
//! just their own stream read back: the alert lifecycle ([`crate::alert`])
//! and a transaction's labels ([`crate::label`]).
//!
//! Their stored answers carry the event time the log gave the event, so
//! unlike the customer's `evolve` theirs takes that time along. `decide` is
//! pure: what to append, the answer that already stands (a repeat, answered
//! 200 without appending), or a refusal (a conflict); the command side runs
//! it in its one pipeline (read, fold, decide, append, retry on conflict).

use crate::events::DomainEvent;
use chrono::{DateTime, Utc};

/// An event as the log keeps it: the payload and its event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped<E> {
    pub event: E,
    pub at: DateTime<Utc>,
}

/// What `decide` makes of a command it does not refuse.
// One per command, moved once: boxing the event would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<D> {
    /// Append this event.
    Append(DomainEvent),
    /// It was done before: this stands, nothing is appended.
    AlreadyDone(D),
}

/// A state folded from its stream, event by event.
pub trait Aggregate: Default {
    /// `evolve(state, event) -> state`; events it does not know are ignored.
    fn evolve(self, event: &DomainEvent, at: DateTime<Utc>) -> Self;

    /// The state of a stream read in order.
    fn replay<'a>(events: impl IntoIterator<Item = (&'a DomainEvent, DateTime<Utc>)>) -> Self {
        events
            .into_iter()
            .fold(Self::default(), |state, (event, at)| {
                state.evolve(event, at)
            })
    }
}

/// An aggregate's rule for command `C`.
pub trait Decide<C>: Aggregate {
    /// What stands when the command was already carried out.
    type Done;
    /// Why the command contradicts the stream.
    type Refusal;

    fn decide(&self, command: &C) -> Result<Outcome<Self::Done>, Self::Refusal>;
}

/// [`Decide::decide`] as a free function, like the customer's `decide`.
pub fn decide<A: Decide<C>, C>(state: &A, command: &C) -> Result<Outcome<A::Done>, A::Refusal> {
    state.decide(command)
}

/// [`Aggregate::evolve`] as a free function, like the customer's `evolve`.
pub fn evolve<A: Aggregate>(state: A, event: &DomainEvent, at: DateTime<Utc>) -> A {
    state.evolve(event, at)
}
