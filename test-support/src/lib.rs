//! The one harness for the tests of every Sentinel service (command-service,
//! projection-service, query-api) and the end-to-end tests (`tests/`): the
//! real services on port 0 over the test's own database, clients to talk to
//! them, ways to wait for them, and throw-away PostgreSQL clusters for tests
//! that stop the database.
//!
//! - [`command`]: the REST ingest ([`spawn_command`]) and a client for it.
//! - [`projection`]: the projection runtime ([`spawn_projection`]), waiting
//!   for it to catch up, empty read models.
//! - [`query`]: the query API ([`spawn_query`]), a GraphQL client over HTTP
//!   and a graphql-transport-ws client over a real WebSocket.
//! - [`model`]: a small hand-made model, put live the way `fraudctl model
//!   train --promote` does it (events appended straight to the log).
//! - [`http`]: the plain HTTP helpers the clients share; [`metrics`]:
//!   scraping `/metrics`; [`wait`]: polling until something holds;
//!   [`process`]: for tests that run a service's binary (to kill it);
//!   [`imports`]: a crate's file-level import graph and its cycles.
//! - [`pg`]: a PostgreSQL cluster of the test's own (the `local-pg` crate
//!   that `fraudctl pg up` uses).
//!
//! Only ever a dev-dependency: it depends on the services, never the other
//! way round. What only one crate's tests need (the projection tests'
//! workload, the query tests' scenario) stays in that crate's `tests/`.

pub mod command;
pub mod http;
pub mod imports;
pub mod metrics;
pub mod model;
pub mod process;
pub mod projection;
pub mod query;
pub mod wait;

pub use command::{Command, error_fields, spawn_command, spawn_command_with};
pub use metrics::{metric_names, scrape};
pub use process::{database_url, free_port};
pub use projection::{Projection, spawn_projection, spawn_projection_with};
pub use query::{Query, spawn_query, spawn_query_with};

use serde_json::{Value, json};
use std::path::PathBuf;

/// Throw-away PostgreSQL clusters, for tests that stop and restart the
/// database (never the shared server every other test uses).
pub mod pg {
    pub use local_pg::StopMode;
    pub use local_pg::scratch::PrivatePg;
}

/// The repository's root (where `monitoring/`, `docs/` and `domain/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `domain/rulesets/reference.toml`: the ruleset tests pin (ADR 0008) when
/// their alerts must not move as the default ruleset is retuned.
pub fn reference_ruleset() -> PathBuf {
    repo_root().join("domain/rulesets/reference.toml")
}

/// A valid v2 transaction `minutes_ago` minutes before now, in San Francisco.
pub fn tx(id: &str, customer: &str, amount: f64, minutes_ago: i64) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    json!({
        "transaction_id": id, "timestamp": at.to_rfc3339(), "user_id": customer, "merchant_id": "m-1",
        "amount": amount, "currency": "USD", "transaction_type": "purchase", "payment_method": "credit_card",
        "merchant_category": "grocery",
        "location": {"city": "San Francisco", "state": "CA", "country": "US", "coordinates": [37.7749, -122.4194]},
        "device_info": {"device_type": "mobile", "ip_address": "192.168.1.100", "user_agent": "Mozilla/5.0"}
    })
}

/// Port 0 on the loopback: every service under test takes any free port.
pub(crate) fn any_port() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}
