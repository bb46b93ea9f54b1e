//! The HTTP API: one module per resource, one error type (`Problem`).

pub mod health;
pub mod problem;
pub mod transactions;

use crate::configuration::Settings;
use crate::ingest::quarantine::Quarantine;
use crate::ingest::{Ingest, RequestMeta};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use chrono::Duration;
use domain::ingest::ParseContext;
use domain::money::Currency;
use std::sync::Arc;
use uuid::Uuid;

/// Everything a handler needs.
pub struct App {
    pub settings: Settings,
    pub ingest: Ingest,
    pub quarantine: Quarantine,
    pub default_currency: Currency,
}

pub type AppState = Arc<App>;

impl App {
    pub fn parse_context(&self) -> ParseContext {
        ParseContext {
            now: chrono::Utc::now(),
            max_future_skew: Duration::seconds(self.settings.max_future_skew_secs),
            default_currency: self.default_currency,
        }
    }
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/v1/transactions", post(transactions::post_one))
        .route("/v1/transactions/batch", post(transactions::post_batch))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        // The handlers read bodies with their own limits, so that an
        // oversized body gets a problem answer and is quarantined.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

/// Correlation id (`x-correlation-id`, else `x-request-id`, else a new one)
/// and W3C trace context, carried into every event the request appends.
pub fn request_meta(headers: &HeaderMap) -> RequestMeta {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let correlation_id = header("x-correlation-id")
        .or_else(|| header("x-request-id"))
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::now_v7);
    let traceparent = header("traceparent")
        .filter(|v| v.len() <= 128)
        .map(str::to_owned);
    RequestMeta {
        correlation_id: Some(correlation_id),
        traceparent,
    }
}
