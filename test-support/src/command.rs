//! The command service (REST ingest) on port 0 over the test's database,
//! and a client for it.

use command_service::configuration::Settings;
use command_service::startup::Application;
use event_store::postgres::PgEventStore;
use event_store::{EventStore, RecordedEvent};
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;

/// A running command service; it runs until the test ends.
pub struct Command {
    pub base: String,
    pub http: reqwest::Client,
    /// The log it appends to (tests read streams back from it).
    pub store: Arc<PgEventStore>,
}

/// The command service with its default settings.
pub async fn spawn_command(pool: PgPool) -> Command {
    spawn_command_with(pool, Settings::default()).await
}

/// The command service with `settings` (its address is always port 0).
pub async fn spawn_command_with(pool: PgPool, settings: Settings) -> Command {
    let store = Arc::new(PgEventStore::new(pool));
    let settings = Settings {
        listen: crate::any_port(),
        ..settings
    };
    let app = Application::build(settings, store.clone())
        .await
        .expect("command service");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    Command {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        store,
    }
}

impl Command {
    /// POSTs JSON; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, body, &[]).await
    }

    /// POSTs JSON with extra headers; the status and the JSON answer.
    pub async fn post_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        crate::http::post_json(&self.http, &url, body, headers).await
    }

    /// POSTs raw bytes to `/v1/transactions`: the status, the answer's
    /// content type and its JSON.
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

    /// Every event of stream `id`, in order.
    pub async fn stream(&self, id: &str) -> Vec<RecordedEvent> {
        self.store.read_stream(id, 0, 10_000).await.expect("read")
    }
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
