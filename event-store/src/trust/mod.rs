//! Trust in the log (PostgreSQL backend; docs/trust.md, ADR 0019): the hash
//! chain every event carries ([`chain`]), the signed checkpoints that seal
//! it ([`checkpoint`]), and the verifier (`postgres::verify`); and
//! crypto-shredding's cryptography ([`shred`]; its key ring is
//! `postgres::keys`).
//!
//! Backend-neutral code: hashing and signing know nothing of SQL. The
//! KurrentDB backend does not chain its events (KurrentDB owns its own
//! storage); the chain is a property of the PostgreSQL log.

pub mod chain;
pub mod checkpoint;
pub mod shred;

pub use chain::{GENESIS, Hash};
pub use checkpoint::{Checkpoint, CheckpointPolicy, SignatureProblem, Signer};
