//! What every Sentinel service shares for being observed:
//! - [`init`]: logs (JSON lines off a terminal, human lines on one, `RUST_LOG`
//!   filtering) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, traces over
//!   OTLP; it returns a [`Guard`] that flushes the traces when dropped;
//! - [`trace`]: W3C trace context in and out of spans, so a trace runs from
//!   the POST, through the event log's metadata, into the projectors;
//! - one Prometheus recorder per process (so `fraudctl serve --role all` runs
//!   three services whose `/metrics` each show everything the process
//!   records), and [`pool::spawn_pool_metrics`] for database pool usage.

mod init;
pub mod pool;
pub mod trace;

pub use init::{Guard, init};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Seconds; from a fast decision to a slow commit or a long projection lag.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Events per batch, for the group-commit writer and the projectors.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// Probabilities (a model's score), finer near both ends.
const SCORE_BUCKETS: &[f64] = &[
    0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0,
];

/// Label delays run to weeks (chargebacks): seconds up to 120 days.
const DELAY_BUCKETS: &[f64] = &[
    1.0,
    60.0,
    3_600.0,
    21_600.0,
    86_400.0,
    259_200.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
    5_184_000.0,
    10_368_000.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. `None` if another
/// recorder was installed first (then metrics go there).
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Full names win over suffixes (the exporter sorts its matchers
            // so), so the label delay gets its own buckets.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("sentinel_label_delay_seconds".into()),
                    DELAY_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(Matcher::Full("sentinel_model_score".into()), SCORE_BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every metric of this process.
pub async fn render_metrics() -> String {
    metrics_handle()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// JSON log lines filtered by `RUST_LOG` (default: info, quiet sqlx), on
/// standard output, without traces. Kept for binaries not yet on [`init`].
pub fn init_json_logs() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(init::env_filter())
        .try_init();
}
