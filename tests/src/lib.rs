//! Shared helpers for Sentinel's end-to-end tests (`tests/tests/*.rs`): they
//! start the real services on port 0 against a fresh PostgreSQL database and
//! talk to them over real HTTP, GraphQL and WebSocket.
