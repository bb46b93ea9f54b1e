//! A service process's logs and traces, set up once by [`init`] at the top
//! of `main`: JSON lines on standard error when it is not a terminal (what a
//! container runtime collects), human-readable lines when it is, both
//! filtered by `RUST_LOG`; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! every span exported over OTLP/gRPC to that endpoint.

use crate::trace;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What [`init`] set up. Keep it alive for the life of `main`: dropping it
/// flushes the spans still buffered and shuts the exporter down.
#[must_use = "dropping the guard at once shuts the trace exporter down"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// Whether spans are exported (OTLP endpoint set and exporter built).
    pub fn exporting_traces(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            // The subscriber may already be gone: say it where it is seen.
            eprintln!("telemetry: flushing traces failed: {error}");
        }
    }
}

/// `RUST_LOG`, or by default: info, with sqlx's per-statement lines quiet.
pub(crate) fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
}

/// Sets up logs and (if `OTEL_EXPORTER_OTLP_ENDPOINT` is set) traces for the
/// service `service` (its OpenTelemetry `service.name`). Call it inside the
/// tokio runtime (the gRPC exporter needs one). If a subscriber is already
/// installed (a test, `fraudctl`), it leaves it alone.
pub fn init(service: &'static str) -> Guard {
    let (provider, trace_error) = match otlp_endpoint() {
        None => (None, None),
        Some(_) => match otlp_provider(service) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    let human = std::io::stderr().is_terminal();
    let json_lines = (!human).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let human_lines = human.then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    // The exporter's own transport (tonic, h2, hyper) is never traced: its
    // spans would be exported by itself, forever.
    let spans = provider.as_ref().map(|p| {
        trace::layer(p).with_filter(filter_fn(|meta| !is_exporter_transport(meta.target())))
    });
    let installed = tracing_subscriber::registry()
        .with(env_filter())
        .with(json_lines)
        .with(human_lines)
        .with(spans)
        .try_init()
        .is_ok();
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    if let Some(error) = trace_error {
        tracing::error!(%error, "traces will not be exported: the OTLP exporter could not be built");
    } else if provider.is_some() && installed {
        tracing::info!(service, "exporting traces over OTLP");
    }
    Guard { provider }
}

fn otlp_endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// Spans batched and sent over OTLP/gRPC; the endpoint, headers, timeout and
/// sampler come from the standard `OTEL_*` variables.
fn otlp_provider(
    service: &'static str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let resource = Resource::builder().with_service_name(service).build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

fn is_exporter_transport(target: &str) -> bool {
    ["h2", "hyper", "tonic", "tower", "opentelemetry"]
        .iter()
        .any(|t| target == *t || target.strip_prefix(t).is_some_and(|r| r.starts_with("::")))
}
