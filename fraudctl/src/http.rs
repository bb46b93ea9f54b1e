//! A small HTTP client for talking to a running command side: JSON POSTs
//! (and the GETs and PUTs of `fraudctl policy`) over a keep-alive pool,
//! with 503 + `Retry-After` honoured by waiting and sending again (the
//! ingest's overload answer means "not now", not "no").

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Longest one request may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often an overloaded answer is retried before giving up.
const MAX_RETRIES: u32 = 60;

/// A command side to POST to.
#[derive(Clone)]
pub struct Target {
    client: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
    authorization: Option<HeaderValue>,
}

/// An answer: status, how long the server asked us to wait, and the body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Target {
    /// `base` is like `http://127.0.0.1:8080`; `token` is sent as a bearer token.
    pub fn new(base: &str, token: Option<&str>, connections: usize) -> anyhow::Result<Target> {
        let base = base.trim_end_matches('/').to_owned();
        base.parse::<hyper::Uri>()
            .with_context(|| format!("{base:?} is not a URL"))?;
        anyhow::ensure!(
            base.starts_with("http://"),
            "only plain http:// targets are supported ({base})"
        );
        let authorization = match token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}"))
                    .context("the token is not a valid header value")?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections.max(1))
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Target {
            client,
            base,
            authorization,
        })
    }

    /// One POST of a JSON body.
    pub async fn post(&self, path: &str, body: Bytes) -> anyhow::Result<Reply> {
        self.send(hyper::Method::POST, path, Some(body)).await
    }

    /// One GET.
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(hyper::Method::GET, path, None).await
    }

    /// One PUT of a JSON body.
    pub async fn put(&self, path: &str, body: Bytes) -> anyhow::Result<Reply> {
        self.send(hyper::Method::PUT, path, Some(body)).await
    }

    /// One request; a body is sent as JSON.
    async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<Reply> {
        let uri = format!("{}{path}", self.base);
        let mut request = hyper::Request::builder().method(method.clone()).uri(&uri);
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(a) = &self.authorization {
            request = request.header(AUTHORIZATION, a.clone());
        }
        let request = request.body(Full::new(body.unwrap_or_default()))?;
        let send = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok(Reply {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(TIMEOUT, send)
            .await
            .map_err(|_| anyhow::anyhow!("no answer from {uri} within {TIMEOUT:?}"))?
            .with_context(|| format!("{method} {uri}"))
    }

    /// A POST that waits and sends again while the answer is 503, as long as
    /// `Retry-After` says (1 s if it says nothing). `retries` counts the waits.
    pub async fn post_patiently(
        &self,
        path: &str,
        body: Bytes,
        retries: &std::sync::atomic::AtomicU64,
    ) -> anyhow::Result<Reply> {
        let mut attempt = 0;
        loop {
            let reply = self.post(path, body.clone()).await?;
            if reply.status != 503 || attempt >= MAX_RETRIES {
                return Ok(reply);
            }
            attempt += 1;
            retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let wait = reply.retry_after.unwrap_or(Duration::from_secs(1));
            tokio::time::sleep(wait.min(Duration::from_secs(30))).await;
        }
    }
}

/// The batch endpoints' answer (`/v1/transactions/batch`,
/// `/v1/labels/batch`): one item per input, with its index in the request.
#[derive(serde::Deserialize)]
pub struct BatchAnswer {
    pub results: Vec<BatchItem>,
}

/// One input's answer in a batch: its status, and either the answer (a
/// transaction's or a label's, read by the caller) or a problem.
#[derive(serde::Deserialize)]
pub struct BatchItem {
    pub index: usize,
    pub status: u16,
    #[serde(default)]
    pub answer: Option<serde_json::Value>,
    #[serde(default)]
    pub problem: Option<serde_json::Value>,
}

/// What the callers read of a transaction's answer.
#[derive(serde::Deserialize)]
pub struct TxAnswer {
    pub decision: String,
    #[serde(default)]
    pub alerts: Vec<serde_json::Value>,
}

/// The real command side on a free local port over a test database.
#[cfg(test)]
pub mod testing {
    use super::Target;
    use std::sync::Arc;

    pub async fn command_side(pool: sqlx::PgPool) -> Target {
        let store = Arc::new(event_store::postgres::PgEventStore::new(pool));
        let settings = command_service::configuration::Settings {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..Default::default()
        };
        let app = command_service::startup::Application::build(settings, store)
            .await
            .expect("the command side starts");
        let addr = app.local_addr().expect("its address");
        tokio::spawn(app.run_until(std::future::pending()));
        Target::new(&format!("http://{addr}"), None, 8).expect("a target")
    }

    pub async fn event_count(pool: &sqlx::PgPool) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("counting events")
    }
}
