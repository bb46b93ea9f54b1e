//! The query API on port 0 over the test's database and log, a GraphQL
//! client over HTTP and a graphql-transport-ws client over a real WebSocket.

use event_store::postgres::PgEventStore;
use futures_util::{SinkExt, StreamExt};
use query_api::configuration::Settings;
use query_api::startup::Application;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The query API with its default settings; it runs until the test ends.
pub async fn spawn_query(pool: PgPool, store: Arc<PgEventStore>) -> Query {
    spawn_query_with(pool, store, Settings::default()).await
}

/// The query API with `settings` (its address is always port 0).
pub async fn spawn_query_with(pool: PgPool, store: Arc<PgEventStore>, settings: Settings) -> Query {
    let settings = Settings {
        listen: crate::any_port(),
        ..settings
    };
    let app = Application::build(settings, pool, store)
        .await
        .expect("query API");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    Query::at(&addr.to_string())
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
    /// A client of the query API listening on `addr` (`host:port`).
    pub fn at(addr: &str) -> Query {
        Query {
            base: format!("http://{addr}"),
            ws: format!("ws://{addr}/graphql/ws"),
            http: reqwest::Client::new(),
        }
    }

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
        crate::http::get_text(&self.http, &format!("{}{path}", self.base)).await
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
