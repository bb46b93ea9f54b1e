//! The event-store contract on the KurrentDB backend (feature `esdb`): the
//! same suite as PostgreSQL, against the server at `ESDB_URL`, e.g.
//!
//! ```text
//! ESDB_URL='esdb://localhost:2113?tls=false' \
//!     cargo test -p event-store --features esdb --test esdb_contract
//! ```
//!
//! Without `ESDB_URL` every case says it was skipped, and why, and passes.
//! Cases use fresh stream ids and positions relative to the head they find,
//! so a shared, non-empty server is fine.
#![cfg(feature = "esdb")]

mod contract;

use contract::Backend;
use event_store::esdb::EsdbEventStore;
use event_store::{EventStore, Upcasters};
use std::sync::Arc;

struct Esdb {
    url: String,
}

impl Esdb {
    /// The server to test against, or `None` (after saying so) when there is none.
    fn from_env(case: &str) -> Option<Self> {
        match std::env::var("ESDB_URL") {
            Ok(url) if !url.trim().is_empty() => Some(Esdb { url }),
            _ => {
                eprintln!("skipped {case}: ESDB_URL not set: no KurrentDB server on this machine");
                None
            }
        }
    }
}

impl Backend for Esdb {
    async fn store(&self, upcasters: Upcasters) -> Arc<dyn EventStore> {
        Arc::new(
            EsdbEventStore::connect(&self.url, upcasters)
                .await
                .expect("connect to the KurrentDB server at ESDB_URL"),
        )
    }
}

macro_rules! esdb_cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let Some(backend) = Esdb::from_env(stringify!($case)) else {
                return;
            };
            contract::$case(&backend).await;
        }
    )*};
}

contract_cases!(esdb_cases);
