//! Sentinel's domain: the pure heart of the fraud service.
//!
//! Nothing here does I/O, is async, reads a clock or knows about HTTP or SQL.
//! The command side calls, per transaction:
//!
//! 1. [`ingest::parse_transaction`]: JSON to a [`Transaction`], or every
//!    failing field ([`ingest::FieldError`]) for the problem answer and the
//!    `InputQuarantined` event;
//! 2. [`decide`] with the customer's [`CustomerState`], a
//!    [`RecordTransaction`] (carrying the ids to use) and the [`Ruleset`],
//!    which returns [`Decided`]: the `TransactionRecorded` event and maybe an
//!    `AlertRaised`;
//! 3. [`CustomerState::apply`] (or [`evolve`]) with each appended event.
//!
//! Reading the log back: [`events::DomainEvent::from_payload`], with the
//! [`upcast::UPCASTERS`] registered in the event store.

// Untrusted input must never crash the service: no panicking shortcuts
// outside tests (clippy checks it).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented,
        clippy::unreachable
    )
)]

pub mod aggregate;
pub mod alert;
pub mod commands;
pub mod devices;
pub mod events;
pub mod features;
pub mod geo;
pub mod ids;
pub mod ingest;
pub mod label;
pub mod memory;
pub mod model;
pub mod money;
pub mod outcome;
pub mod peers;
pub mod policy;
pub mod rules;
pub mod ruleset;
pub mod scoring;
pub mod stats;
pub mod streams;
pub mod text;
pub mod transaction;
pub mod upcast;
pub mod window;

pub use aggregate::{CustomerState, Decided, PendingEvent, decide, decide_with_shadow, evolve};
pub use commands::{DecisionIds, RecordTransaction};
pub use events::{DomainEvent, EventPayload};
pub use ruleset::Ruleset;
pub use scoring::{Decision, Priority};
pub use transaction::Transaction;
