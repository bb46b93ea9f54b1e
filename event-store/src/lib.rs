//! The Sentinel event log.
//!
//! One contract, [`EventStore`], and two backends behind it:
//! - [`postgres::PgEventStore`] (default): events in PostgreSQL, appended by a
//!   single group-commit writer per process under a cross-process writer lock,
//!   so the global position order is gap-safe (see `docs/adr/0001-gap-safe-global-order.md`).
//! - `esdb::EsdbEventStore` (cargo feature `esdb`): KurrentDB / EventStoreDB
//!   through the official `kurrentdb` client.
//!
//! The PostgreSQL log is tamper-evident: every event carries a hash chain
//! link and signed checkpoints seal it ([`trust`], docs/trust.md).
//!
//! Which backend a service runs on is chosen at start by
//! `SENTINEL_EVENT_STORE` ([`open()`], [`LogBackend`]).
//!
//! Both backends upcast old event schema versions on every read path
//! ([`Upcasters`]), so readers only ever see today's shapes.

mod error;
mod model;
pub mod open;
mod payload;
pub mod postgres;
mod store;
pub mod trust;
mod upcast;

#[cfg(feature = "esdb")]
pub mod esdb;

pub use error::{AppendError, StoreError};
pub use model::{
    AppendOutcome, AppendRequest, EventMetadata, ExpectedVersion, NewEvent, Position,
    RecordedEvent, StreamVersion,
};
pub use open::{LogBackend, OpenError, OpenOptions, open};
pub use payload::Payload;
/// The migrations of the event log and the read-model bookkeeping (run them
/// before using the PostgreSQL backend; `#[sqlx::test(migrator = ...)]`).
pub use postgres::MIGRATOR;
pub use store::{EventStore, EventSubscription};
pub use upcast::{UpcastFn, Upcasters};
