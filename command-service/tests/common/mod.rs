//! The test harness of the command side: the service on port 0 with its
//! own fresh database, and a reqwest client to talk to it.
#![allow(dead_code)] // each test file uses its own part of it

use command_service::configuration::Settings;
use command_service::startup::Application;
use event_store::postgres::PgEventStore;
use event_store::{EventStore, RecordedEvent};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<PgEventStore>,
}

pub async fn spawn(pool: PgPool) -> TestApp {
    spawn_with(pool, Settings::default()).await
}

pub async fn spawn_with(pool: PgPool, settings: Settings) -> TestApp {
    let store = Arc::new(PgEventStore::new(pool));
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..settings
    };
    let app = Application::build(settings, store.clone())
        .await
        .expect("build");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        store,
    }
}

impl TestApp {
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, body: Vec<u8>, content_type: &str) -> (u16, String, Value) {
        let r = self
            .http
            .post(format!("{}/v1/transactions", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, r.json().await.unwrap_or(Value::Null))
    }

    /// The status of a GET.
    pub async fn get_status(&self, path: &str) -> u16 {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("send");
        r.status().as_u16()
    }

    pub async fn stream(&self, id: &str) -> Vec<RecordedEvent> {
        self.store.read_stream(id, 0, 10_000).await.expect("read")
    }
}

/// A valid v2 transaction `minutes_ago` minutes before now.
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

/// The `field` of every entry of a problem's `errors`, sorted.
pub fn error_fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect();
    fields.sort_unstable();
    fields
}
