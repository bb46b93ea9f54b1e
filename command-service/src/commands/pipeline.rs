//! The one command pipeline: make sure the stream is loaded (read and
//! folded), decide, append with the expected version (optimistic
//! concurrency), and when another writer got there first, forget what was
//! loaded and go again, at most [`MAX_ATTEMPTS`] times.
//!
//! What "loaded" means is the command's: the transaction ingest keeps its
//! customers hot in memory and loads them in batches (`crate::ingest`), so
//! it loads only on a miss; [`OnStream`] (alerts, labels) reads its
//! stream on every attempt, since those streams hold a handful of events.
//! The loop, the expected version and the conflict policy are the same for
//! all.

use super::error::{CommandError, StoreFailure};
use super::events::{new_event, read_from};
use chrono::{DateTime, SubsecRound, Utc};
use domain::outcome::{Aggregate, Decide, Outcome};
use event_store::{
    AppendError, AppendOutcome, EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamVersion,
};
use std::convert::Infallible;
use std::future::Future;

/// Attempts at one command when other writers keep winning its stream.
pub const MAX_ATTEMPTS: usize = 5;

/// What a command decided on its stream as loaded.
pub enum Step<D> {
    /// Append these events; once they are in, `then` is the result.
    Append { events: Vec<NewEvent>, then: D },
    /// Nothing to append: this is the result.
    Done(D),
}

/// One command on one stream, as [`run`] carries it out.
pub trait CommandStream: Send {
    type Done: Send;
    type Error: From<StoreFailure> + Send;

    /// The stream the command appends to.
    fn stream(&self) -> &str;

    /// The stream's version as loaded; `None` while it has no events.
    fn version(&self) -> Option<StreamVersion>;

    /// Makes sure the state (and version) are loaded from the stream.
    fn load(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Decides on the state as loaded.
    fn decide(&mut self) -> impl Future<Output = Result<Step<Self::Done>, Self::Error>> + Send;

    /// The decided events are in the log: their positions, and the
    /// stream version of the last.
    fn appended(&mut self, outcome: &AppendOutcome);

    /// What was loaded may be stale: load again before deciding again.
    fn forget(&mut self);
}

/// Carries out `command` against `store`.
pub async fn run<C: CommandStream>(
    store: &dyn EventStore,
    command: &mut C,
) -> Result<C::Done, C::Error> {
    for _ in 0..MAX_ATTEMPTS {
        command.load().await?;
        let (events, then) = match command.decide().await? {
            Step::Done(done) => return Ok(done),
            Step::Append { events, then } => (events, then),
        };
        let expected = command
            .version()
            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match store.append(command.stream(), expected, events).await {
            Ok(out) => {
                command.appended(&out);
                return Ok(then);
            }
            // Another writer (a second replica, a concurrent request) got
            // there first: look again.
            Err(AppendError::WrongExpectedVersion { .. }) => command.forget(),
            Err(e) => {
                // The append may or may not have committed: only the log
                // knows now. A client retry will find out by reloading.
                command.forget();
                return Err(StoreFailure(e.to_string()).into());
            }
        }
    }
    Err(StoreFailure(format!(
        "stream {} kept changing under {MAX_ATTEMPTS} attempts",
        command.stream()
    ))
    .into())
}

/// What came of a command on an [`OnStream`] aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed<D> {
    /// Its event was appended with this event time.
    Recorded(DateTime<Utc>),
    /// It was done before: what stands, nothing appended.
    Stood(D),
}

/// What an empty stream needs looked up before deciding (an alert's
/// existence is in the global log, not in its own stream).
pub trait Precheck<A>: Send + Sync {
    fn empty_stream(
        &self,
        state: A,
    ) -> impl Future<Output = Result<A, CommandError<Infallible>>> + Send;
}

/// Nothing to look up.
pub struct NoPrecheck;

impl<A: Send> Precheck<A> for NoPrecheck {
    async fn empty_stream(&self, state: A) -> Result<A, CommandError<Infallible>> {
        Ok(state)
    }
}

/// A command decided by a `domain` aggregate folded from its own stream,
/// read whole on every attempt.
pub struct OnStream<'a, A, C, P> {
    store: &'a dyn EventStore,
    stream: String,
    command: C,
    metadata: EventMetadata,
    precheck: P,
    state: A,
    version: Option<StreamVersion>,
}

impl<'a, A: Aggregate, C, P> OnStream<'a, A, C, P> {
    pub fn new(
        store: &'a dyn EventStore,
        stream: String,
        command: C,
        metadata: EventMetadata,
        precheck: P,
    ) -> Self {
        OnStream {
            store,
            stream,
            command,
            metadata,
            precheck,
            state: A::default(),
            version: None,
        }
    }
}

impl<A, C, P> CommandStream for OnStream<'_, A, C, P>
where
    A: Decide<C> + Send + Sync,
    A::Done: Send,
    A::Refusal: Send,
    C: Send + Sync,
    P: Precheck<A>,
{
    type Done = Executed<A::Done>;
    type Error = CommandError<A::Refusal>;

    fn stream(&self) -> &str {
        &self.stream
    }

    fn version(&self) -> Option<StreamVersion> {
        self.version
    }

    async fn load(&mut self) -> Result<(), Self::Error> {
        let (events, version) = read_from(self.store, &self.stream, 0)
            .await
            .map_err(|e| CommandError::Store(e.to_string()))?;
        let state = A::replay(events.iter().map(|(e, at)| (e, *at)));
        self.state = match version {
            Some(_) => state,
            None => self
                .precheck
                .empty_stream(state)
                .await
                .map_err(CommandError::widen)?,
        };
        self.version = version;
        Ok(())
    }

    async fn decide(&mut self) -> Result<Step<Self::Done>, Self::Error> {
        let event = match self.state.decide(&self.command) {
            Err(refusal) => return Err(CommandError::Refused(refusal)),
            Ok(Outcome::AlreadyDone(stored)) => return Ok(Step::Done(Executed::Stood(stored))),
            Ok(Outcome::Append(event)) => event,
        };
        // Microseconds: what the log keeps, so a repeat answers the same time.
        let at = Utc::now().trunc_subsecs(6);
        let new = new_event(&event, at, self.metadata.clone())
            .map_err(|e| CommandError::Store(e.to_string()))?;
        Ok(Step::Append {
            events: vec![new],
            then: Executed::Recorded(at),
        })
    }

    fn appended(&mut self, _outcome: &AppendOutcome) {}

    fn forget(&mut self) {
        self.state = A::default();
        self.version = None;
    }
}
