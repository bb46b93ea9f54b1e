//! The event-store contract on the PostgreSQL backend: every case runs in a
//! fresh database (`#[sqlx::test]`).

mod contract;

use contract::Backend;
use event_store::postgres::{PgEventStore, PgStoreOptions};
use event_store::{EventStore, Upcasters};
use sqlx::PgPool;
use std::sync::Arc;

struct Pg(PgPool);

impl Backend for Pg {
    async fn store(&self, upcasters: Upcasters) -> Arc<dyn EventStore> {
        Arc::new(PgEventStore::with_options(
            self.0.clone(),
            upcasters,
            PgStoreOptions::default(),
        ))
    }
}

macro_rules! pg_cases {
    ($($case:ident),* $(,)?) => {$(
        #[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
        async fn $case(pool: PgPool) {
            contract::$case(&Pg(pool)).await;
        }
    )*};
}

contract_cases!(pg_cases);
