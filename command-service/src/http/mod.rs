//! The HTTP API: one module per resource, one error type (`Problem`), the
//! body handling every POST shares (`input`), who may call what (`auth`),
//! how often (`rate_limit`), and the API's own description (`openapi`).

pub mod alerts;
pub mod auth;
pub mod health;
pub mod input;
pub mod labels;
pub mod openapi;
pub mod problem;
pub mod rate_limit;
pub mod transactions;

use crate::configuration::Settings;
use crate::ingest::quarantine::Quarantine;
use crate::ingest::{Ingest, RequestMeta};
use auth::{Guard, Role};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use chrono::Duration;
use domain::ingest::ParseContext;
use domain::money::Currency;
use problem::Problem;
use std::sync::Arc;
use utoipa_swagger_ui::SwaggerUi;
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

/// The routes, each behind the role it needs: transactions need `ingest`;
/// acknowledgements, resolutions and labels need `analyst`; health checks,
/// metrics and the API description are open. With a rate limit configured,
/// the `/v1` routes are limited per caller, before authentication (so
/// refused requests are limited too).
pub fn router(app: AppState) -> Router {
    let tokens = Arc::new(app.settings.tokens.clone());
    auth::warn_if_open(&tokens);
    let needs = |role| from_fn_with_state(Guard::new(tokens.clone(), role), auth::require);

    let ingest = Router::new()
        .route("/v1/transactions", post(transactions::post_one))
        .route("/v1/transactions/batch", post(transactions::post_batch))
        .route_layer(needs(Role::Ingest));
    let labels = Router::new()
        .route("/v1/labels", post(labels::post_label))
        .route_layer(needs(Role::Analyst));
    let alerts = Router::new()
        .route(
            "/v1/alerts/{id}/acknowledgement",
            post(alerts::post_acknowledgement),
        )
        .route("/v1/alerts/{id}/resolution", post(alerts::post_resolution))
        .route_layer(needs(Role::Analyst))
        .with_state(alerts::AlertsState::new(app.clone()));
    let mut api = ingest.merge(labels).with_state(app.clone()).merge(alerts);
    if let Some(limit) = app.settings.rate_limit {
        tracing::info!(
            per_sec = limit.per_sec.get(),
            burst = limit.burst.get(),
            "rate limit per caller on /v1"
        );
        let limiter = rate_limit::Limiter::new(limit, tokens.clone());
        api = api.route_layer(from_fn_with_state(limiter, rate_limit::limit));
    }
    let doc = openapi::document(&app.settings);
    let open = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .with_state(app);

    api.merge(open)
        .merge(SwaggerUi::new("/swagger-ui").external_url_unchecked("/openapi.json", doc))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        // The handlers read bodies with their own limits, so that an
        // oversized body gets a problem answer and is quarantined.
        .layer(DefaultBodyLimit::disable())
}

/// The answer when the event store fails: 503, worth a retry.
pub fn store_unavailable(detail: &dyn std::fmt::Display) -> Problem {
    tracing::error!(%detail, "event store unavailable");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store-unavailable",
        "The event store is unavailable",
    )
    .retry_after(2)
}

/// The service every request-path span and log line names.
pub const SERVICE: &str = "command-service";

/// The span of one ingest request: every log line on its path carries the
/// service, the correlation id and the trace id (the handler records the
/// transaction and customer ids once they are parsed). Its parent is the
/// caller's `traceparent`, if any; `meta.traceparent` becomes the span's own
/// context (a new trace's when no caller sent one), so the events the request
/// appends carry this span's trace into the log and the projectors.
pub fn ingest_span(route: &'static str, meta: &mut RequestMeta) -> tracing::Span {
    let span = tracing::info_span!(
        "ingest",
        "otel.kind" = "server",
        service = SERVICE,
        route,
        correlation_id = meta.correlation_id.map(tracing::field::display),
        trace_id = tracing::field::Empty,
        transaction_id = tracing::field::Empty,
        customer_id = tracing::field::Empty,
    );
    let caller = meta.traceparent.take();
    if let Some(caller) = caller.as_deref() {
        telemetry::trace::set_remote_parent(&span, caller);
    }
    let own = telemetry::trace::traceparent_of(&span, caller.as_deref());
    if let Some(trace_id) = own.get(3..35) {
        span.record("trace_id", trace_id);
    }
    meta.traceparent = Some(own);
    span
}

/// Records on `span` which transaction and customer it is about.
pub fn record_ids(span: &tracing::Span, tx: &domain::Transaction) {
    span.record("transaction_id", tx.transaction_id.as_str());
    span.record("customer_id", tx.customer_id.as_str());
}

/// Correlation id (`x-correlation-id`, else `x-request-id`, else a new one)
/// and the caller's W3C trace context; the ingest handlers then put their
/// own span's context in its place ([`ingest_span`]), and it is carried into
/// every event the request appends.
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
