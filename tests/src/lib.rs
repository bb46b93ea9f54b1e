//! Shared helpers for Sentinel's end-to-end tests (`tests/tests/*.rs`): they
//! start the real services on port 0 against a fresh PostgreSQL database and
//! talk to them over real HTTP, GraphQL and WebSocket. `private_pg` runs a
//! PostgreSQL cluster of a test's own, for tests that stop the database.

pub mod private_pg;

use command_service::configuration::Settings as CommandSettings;
use command_service::startup::Application as CommandApp;
use event_store::postgres::PgEventStore;
use projection_service::configuration::Settings as ProjectionSettings;
use projection_service::startup::Application as ProjectionApp;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The repository's root (where `monitoring/` and `docs/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The command service on port 0, over its own store on `pool`.
pub struct Command {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<PgEventStore>,
}

pub async fn spawn_command(pool: PgPool) -> Command {
    let store = Arc::new(PgEventStore::new(pool));
    let settings = CommandSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..CommandSettings::default()
    };
    let app = CommandApp::build(settings, store.clone())
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
    /// POSTs JSON with extra headers; the status and the JSON answer.
    pub async fn post_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, body, &[]).await
    }
}

/// The projection service on port 0 (every projector), publishing its
/// status every 200 ms; it runs until the test ends.
pub async fn spawn_projection(pool: PgPool, store: Arc<PgEventStore>) -> String {
    let settings = ProjectionSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        status_interval: Duration::from_millis(200),
        ..ProjectionSettings::default()
    };
    let app = ProjectionApp::build(settings, pool, store)
        .await
        .expect("projection service");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    format!("http://{addr}")
}

/// The query API on port 0 over `pool`'s database and `store`'s log; it
/// runs until the test ends.
pub async fn spawn_query(pool: PgPool, store: Arc<PgEventStore>) -> String {
    let settings = query_api::configuration::Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..query_api::configuration::Settings::default()
    };
    let app = query_api::startup::Application::build(settings, pool, store)
        .await
        .expect("query API");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    format!("http://{addr}")
}

/// The text of `{base}/metrics`.
pub async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status().as_u16(), 200, "{base}/metrics");
    r.text().await.expect("metrics text")
}

/// The metric names in Prometheus text (`name{labels} value` or `name value`
/// lines; `# HELP`/`# TYPE` lines ignored).
pub fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
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
