//! Sentinel's domain: the pure heart of the fraud service.
//!
//! What lives here (filled by the command-side issue): the events and their
//! schema versions and upcasters, the commands, the customer aggregate
//! (`decide(state, command) -> events`, `evolve(state, event) -> state`), the
//! fraud rules and the event-time window maths. Nothing here does I/O, is
//! async, or knows about HTTP or SQL; it is tested given/when/then.
