//! Sentinel's command side.
//!
//! What lives here (filled by the command-side issue): the axum REST ingest
//! (`POST /v1/transactions`, `/v1/transactions/batch`, alert resolutions,
//! labels) that parses and validates input, quarantines what is bad, asks the
//! domain for a decision, and appends the resulting events through the event
//! store's group commit.
