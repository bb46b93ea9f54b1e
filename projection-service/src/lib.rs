//! Sentinel's projection side.
//!
//! What lives here (filled by the projection issue): projectors with a name, a
//! version and a checkpoint that consume the event log in order and build the
//! read models in PostgreSQL (velocity windows, geo state, customer profiles,
//! merchant risk, alerts, transactions, data quality), each batch and its
//! checkpoint in one transaction; and the blue-green replay that rebuilds a
//! projection into fresh tables and swaps it in without downtime.
