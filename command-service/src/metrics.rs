//! Prometheus metrics of the command side: the recorder (one per process)
//! and the middleware that counts and times every HTTP request.
//!
//! Names: `sentinel_http_requests_total{route,status}`,
//! `sentinel_http_request_duration_seconds{route}`,
//! `sentinel_decisions_total{decision}`, `sentinel_alerts_total{priority}`,
//! `sentinel_rules_fired_total{rule}`, `sentinel_quarantined_total{reason}`,
//! `sentinel_decide_duration_seconds`, `sentinel_ingest_in_flight`.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Seconds; from a fast decision to a slow commit.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. `None` if another
/// recorder was installed first (then this service's metrics go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every metric of this process.
pub async fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Counts and times each request by its route template (not its URL, so
/// alert ids do not explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("sentinel_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("sentinel_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
