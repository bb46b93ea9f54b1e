//! The query side's part of the test harness: the three services over one
//! fresh database (data goes in through the command service's REST API, the
//! read models are built by the real projectors) and a scenario of alerts
//! and labels to query. Spawning each service and the GraphQL/WebSocket
//! clients come from the shared harness (`test-support`), re-exported here.
#![allow(dead_code, unused_imports)] // each test file uses its own part of it

pub use test_support::projection::empty_read_models;
pub use test_support::query::{
    Answer, Connected, Frame, Query, Ws, spawn_query_with as spawn_query,
};
pub use test_support::{reference_ruleset, tx};

use command_service::configuration::Settings as CommandSettings;
use event_store::EventStore;
use event_store::postgres::PgEventStore;
use query_api::configuration::Settings;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use test_support::command::{Command, spawn_command_with};
use test_support::projection::{Projection, spawn_projection, wait_all_caught_up};

/// The three services over one database.
pub struct Stack {
    pub pool: PgPool,
    pub store: Arc<PgEventStore>,
    /// The command service's base URL.
    pub command: String,
    pub query: Query,
    ingest: Command,
    /// Stops the projection service when the stack is dropped.
    _projection: Projection,
}

/// Starts the command, projection and query services.
pub async fn stack(pool: PgPool) -> Stack {
    stack_with(pool, query_settings()).await
}

pub async fn stack_with(pool: PgPool, settings: Settings) -> Stack {
    let ingest = spawn_command_with(
        pool.clone(),
        CommandSettings {
            // The reference ruleset (ADR 0008): these tests are about
            // queries, so their alerts must not move when the default
            // ruleset is retuned for detection. With it a sixth
            // transaction in ten minutes raises one velocity alert.
            ruleset_path: Some(reference_ruleset()),
            ..CommandSettings::default()
        },
    )
    .await;
    let store = ingest.store.clone();
    let projection = spawn_projection(pool.clone(), store.clone()).await;
    // The console's actions go to this stack's command service.
    let settings = Settings {
        command_url: settings.command_url.or_else(|| Some(ingest.base.clone())),
        ..settings
    };
    let query = spawn_query(pool.clone(), store.clone(), settings).await;
    Stack {
        pool,
        store,
        command: ingest.base.clone(),
        query,
        ingest,
        _projection: projection,
    }
}

/// Settings for tests: any port, statement counts in the responses, a
/// small pool, a quick alert poller.
pub fn query_settings() -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        pool_size: 4,
        expose_query_stats: true,
        alert_poll_interval: Duration::from_millis(100),
        ..Settings::default()
    }
}

impl Stack {
    /// POSTs to the command side.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.ingest.post(path, body).await
    }

    /// POSTs one transaction, which must be accepted; returns the answer.
    pub async fn transaction(&self, body: &Value) -> Value {
        let (status, answer) = self.post("/v1/transactions", body).await;
        assert_eq!(status, 201, "{answer}");
        answer
    }

    /// A burst of six transactions within ten minutes: the last raises a
    /// velocity alert, whose id is returned.
    pub async fn raise_alert(&self, customer: &str, tag: &str) -> String {
        let mut last = Value::Null;
        for i in 0..6 {
            last = self
                .transaction(&tx(&format!("{tag}-{i}"), customer, 20.0, 8 - i))
                .await;
        }
        last["alerts"][0]["alert_id"]
            .as_str()
            .unwrap_or_else(|| panic!("the burst raised no alert: {last}"))
            .to_owned()
    }

    /// Waits until every projector has applied the whole log.
    pub async fn caught_up(&self) {
        wait_all_caught_up(&self.pool, &*self.store).await;
    }

    pub async fn head(&self) -> i64 {
        self.store.head_position().await.expect("head").0 as i64
    }
}

/// Customer c-1: six transactions in ten minutes (the last raises a
/// velocity alert, acknowledged then resolved as fraud, and its transaction
/// labelled by a chargeback); one refused input.
pub async fn scenario(s: &Stack) -> String {
    let alert = s.raise_alert("c-1", "c1").await;
    let (status, body) = s
        .post(
            &format!("/v1/alerts/{alert}/acknowledgement"),
            &json!({"analyst": "ana", "note": "calling the customer"}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let (status, body) = s
        .post(
            &format!("/v1/alerts/{alert}/resolution"),
            &json!({"verdict": "confirmed_fraud", "analyst": "bob", "note": "card stolen"}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let (status, body) = s
        .post(
            "/v1/labels",
            &json!({"transaction_id": "c1-5", "is_fraud": true, "source": "chargeback"}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let (status, _) = s
        .post(
            "/v1/transactions",
            &json!({"transaction_id": "bad-1", "user_id": "c-9", "amount": -5}),
        )
        .await;
    assert_eq!(status, 422);
    s.transaction(&tx("c2-0", "c-2", 12.5, 30)).await;
    s.caught_up().await;
    alert
}
