//! Test harness of the query side: the real command service (data goes in
//! through its REST API), the real projection service (the read models are
//! built by the real projectors), and the query API, all on port 0 over one
//! fresh database; a GraphQL client over HTTP and a graphql-transport-ws
//! client over a real WebSocket.
#![allow(dead_code)] // each test file uses its own part of it

use command_service::configuration::Settings as CommandSettings;
use command_service::startup::Application as CommandApp;
use event_store::EventStore;
use event_store::postgres::PgEventStore;
use futures_util::{SinkExt, StreamExt};
use projection_service::configuration::Settings as ProjectionSettings;
use projection_service::startup::Application as ProjectionApp;
use query_api::configuration::Settings;
use query_api::startup::Application;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The three services over one database.
pub struct Stack {
    pub pool: PgPool,
    pub store: Arc<PgEventStore>,
    pub command: String,
    pub query: Query,
    projection_stop: Option<oneshot::Sender<()>>,
}

/// Starts the command, projection and query services.
pub async fn stack(pool: PgPool) -> Stack {
    stack_with(pool, query_settings()).await
}

pub async fn stack_with(pool: PgPool, settings: Settings) -> Stack {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let command = CommandApp::build(
        CommandSettings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            // The reference ruleset (ADR 0008): these tests are about
            // queries, so their alerts must not move when the default
            // ruleset is retuned for detection. With it a sixth
            // transaction in ten minutes raises one velocity alert.
            ruleset_path: Some(reference_ruleset()),
            ..CommandSettings::default()
        },
        store.clone(),
    )
    .await
    .expect("command side");
    let command_addr = command.local_addr().expect("addr");
    tokio::spawn(command.run_until(std::future::pending()));

    let projection = ProjectionApp::build(
        ProjectionSettings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            status_interval: Duration::from_millis(200),
            ..ProjectionSettings::default()
        },
        pool.clone(),
        store.clone(),
    )
    .await
    .expect("projection side");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(projection.run_until(async {
        let _ = stopped.await;
    }));

    let query = spawn_query(pool.clone(), store.clone(), settings).await;
    Stack {
        pool,
        store,
        command: format!("http://{command_addr}"),
        query,
        projection_stop: Some(stop),
    }
}

/// `domain/rulesets/reference.toml`.
pub fn reference_ruleset() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../domain/rulesets/reference.toml")
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

/// Creates every read model's serving schema, empty, as a projection
/// service starting on an empty log does.
pub async fn empty_read_models(pool: &PgPool) {
    let mut tx = pool.begin().await.expect("begin");
    for p in projection_service::models::all() {
        let name = projection_service::schema::serving(p.name());
        projection_service::schema::create(&mut tx, &name, &*p)
            .await
            .expect("create read model");
    }
    tx.commit().await.expect("commit");
}

/// The query API alone (tests that need no data).
pub async fn spawn_query(pool: PgPool, store: Arc<PgEventStore>, settings: Settings) -> Query {
    let app = Application::build(settings, pool, store)
        .await
        .expect("query API");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    Query {
        base: format!("http://{addr}"),
        ws: format!("ws://{addr}/graphql/ws"),
        http: reqwest::Client::new(),
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(stop) = self.projection_stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Stack {
    /// POSTs to the command side.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.command))
            .json(body)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
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
        wait_caught_up(&self.pool, &*self.store).await;
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

/// A v2 transaction `minutes_ago` in the past, in San Francisco.
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

/// Waits until every projector has applied the whole log.
pub async fn wait_caught_up(pool: &PgPool, store: &dyn EventStore) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = store.head_position().await.expect("head").0 as i64;
        let mut behind = Vec::new();
        for p in projection_service::models::all() {
            let sql = format!(
                "SELECT coalesce(min(position), 0) FROM {}.checkpoint",
                projection_service::schema::serving(p.name())
            );
            let at: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap_or(-1);
            if at < head {
                behind.push(format!("{} at {at}", p.name()));
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up with head {head}: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client of the query API.
pub struct Query {
    pub base: String,
    pub ws: String,
    pub http: reqwest::Client,
}

/// A GraphQL answer: HTTP status and body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// `data`, after checking there is no error.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The codes of the errors, in order.
    pub fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                e["extensions"]["code"]
                    .as_str()
                    .unwrap_or("<none>")
                    .to_owned()
            })
            .collect()
    }

    /// SQL statements the request ran (`extensions.sqlStatements`).
    pub fn statements(&self) -> u64 {
        self.body["extensions"]["sqlStatements"]
            .as_u64()
            .expect("sqlStatements in the extensions")
    }
}

impl Query {
    pub async fn gql(&self, query: &str, variables: Value) -> Answer {
        self.gql_as(None, query, variables).await
    }

    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Answer {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.expect("send");
        Answer {
            status: r.status().as_u16(),
            body: r.json().await.unwrap_or(Value::Null),
        }
    }

    /// A GET of a path (health, metrics, GraphiQL): status and text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("send");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }
}

/// A graphql-transport-ws connection.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How a connection attempt ended.
pub enum Connected {
    Ready(Box<Ws>),
    /// The server closed the connection (code, reason).
    Closed(u16, String),
    /// The upgrade was refused with this HTTP status.
    Refused(u16),
}

impl Query {
    /// Opens a WebSocket, sends `connection_init` with `payload` and waits
    /// for the acknowledgement.
    pub async fn ws_connect(&self, header_token: Option<&str>, payload: Value) -> Connected {
        let mut request = self.ws.as_str().into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        if let Some(token) = header_token {
            request.headers_mut().insert(
                "Authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        let mut stream = match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => stream,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                return Connected::Refused(response.status().as_u16());
            }
            Err(e) => panic!("connect: {e}"),
        };
        stream
            .send(Message::text(
                json!({"type": "connection_init", "payload": payload}).to_string(),
            ))
            .await
            .expect("send init");
        let mut ws = Ws { stream };
        match ws.next_message(Duration::from_secs(5)).await {
            Frame::Json(m) if m["type"] == "connection_ack" => Connected::Ready(Box::new(ws)),
            Frame::Closed(code, reason) => Connected::Closed(code, reason),
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }
}

#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(u16, String),
    Timeout,
}

impl Ws {
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.stream
            .send(Message::text(
                json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
                    .to_string(),
            ))
            .await
            .expect("send subscribe");
    }

    /// The next JSON message (pings are answered and skipped).
    pub async fn next_message(&mut self, timeout: Duration) -> Frame {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await;
            match next {
                Err(_) => return Frame::Timeout,
                Ok(None) => return Frame::Closed(0, "ended".into()),
                Ok(Some(Err(e))) => return Frame::Closed(0, e.to_string()),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    if value["type"] == "ping" {
                        let _ = self
                            .stream
                            .send(Message::text(json!({"type": "pong"}).to_string()))
                            .await;
                        continue;
                    }
                    return Frame::Json(value);
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return match frame {
                        Some(f) => Frame::Closed(f.code.into(), f.reason.to_string()),
                        None => Frame::Closed(0, String::new()),
                    };
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}
