//! Sentinel's query side.
//!
//! What lives here (filled by the query issue): the async-graphql API over the
//! read models, the audit history and time travel straight from the event log,
//! and live alert subscriptions over WebSocket.
