//! `telemetry::init` with `OTEL_EXPORTER_OTLP_ENDPOINT` set: spans become
//! OpenTelemetry spans with real trace ids, and dropping the guard flushes and
//! returns promptly even when no collector listens (a service must still
//! exit). Its own test binary: `init` installs the process's subscriber.

use std::time::{Duration, Instant};

#[test]
fn with_an_endpoint_spans_are_traced_and_the_guard_returns_on_drop() {
    // SAFETY: the first thing this process does, before any other thread exists.
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9") };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let took = runtime.block_on(async {
        let guard = telemetry::init("telemetry-test");
        assert!(guard.exporting_traces());
        assert!(telemetry::trace::active());
        let span = tracing::info_span!("work");
        let stored = telemetry::trace::traceparent_of(&span, None);
        let context = telemetry::trace::parse_traceparent(&stored).expect("valid");
        assert!(context.is_sampled(), "a traced span is sampled: {stored}");
        span.in_scope(|| tracing::info!("inside a traced span"));
        drop(span);
        let started = Instant::now();
        drop(guard);
        started.elapsed()
    });
    assert!(took < Duration::from_secs(30), "flushing took {took:?}");
}
