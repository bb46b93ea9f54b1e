//! Prometheus metrics of the command side: the recorder (one per process)
//! and the middleware that counts and times every HTTP request.
//!
//! Names: `sentinel_http_requests_total{route,status}`,
//! `sentinel_http_request_duration_seconds{route}`,
//! `sentinel_decisions_total{decision}`, `sentinel_alerts_total{priority}`,
//! `sentinel_rules_fired_total{rule}`, `sentinel_quarantined_total{reason}`,
//! `sentinel_decide_duration_seconds`, `sentinel_ingest_in_flight`; and,
//! from `crate::peers`, `sentinel_peer_book_merchants`,
//! `sentinel_peer_follower_lag_positions` (head minus the position the
//! book was folded through) and `sentinel_label_directory_transactions`;
//! for models: `sentinel_model_score{model}` (histogram of the live model's
//! probability), `sentinel_model_feature_psi{model,feature}`,
//! `sentinel_model_score_psi{model}` and `sentinel_model_drift_window{model}`
//! (`crate::policy::drift`), `sentinel_policy_model_missing_total{policy,model}`
//! (`crate::policy::live`); for labels: `sentinel_label_delay_seconds`
//! (receipt minus the transaction's event time).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The process's recorder (shared with every service in the process).
pub fn handle() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    telemetry::metrics_handle()
}

/// The Prometheus text of every metric of this process.
pub async fn render() -> String {
    telemetry::render_metrics().await
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
