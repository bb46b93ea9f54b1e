//! Who caused a request and under which trace: the correlation id and W3C
//! trace context read from the headers (`request_meta`), and the span an
//! ingest request runs in (`ingest_span`), whose context is carried into
//! every event the request appends; and who the caller is (`actor`).

use super::app::AppState;
use crate::ingest::RequestMeta;
use axum::http::{HeaderMap, header};
use uuid::Uuid;

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
        policy: None,
        correlation_id: Some(correlation_id),
        traceparent,
    }
}

/// Who is calling: the holder of the bearer token, `anonymous` in open
/// mode (recorded in the events an admin's command appends).
pub fn actor(app: &AppState, headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| access::bearer_of(v.as_bytes()))
        .and_then(|token| app.settings.tokens.holder(token))
        .unwrap_or_else(|| "anonymous".to_owned())
}
