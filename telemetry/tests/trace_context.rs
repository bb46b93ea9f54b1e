//! The trace-context helpers against the SDK's in-memory exporter: a request
//! span continues its caller's trace and hands out its own context, and a
//! projector's span is the child of one trace or linked to many.

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Runs `f` under a subscriber that exports to memory; the finished spans.
fn traced(f: impl FnOnce()) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(telemetry::trace::layer(&provider));
    tracing::subscriber::with_default(subscriber, f);
    provider.force_flush().expect("flush");
    exporter.get_finished_spans().expect("spans")
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
}

#[test]
fn a_request_span_continues_its_callers_trace_and_hands_out_its_own_context() {
    let mut stored = String::new();
    let spans = traced(|| {
        let span = tracing::info_span!("ingest");
        assert!(telemetry::trace::set_remote_parent(&span, CALLER));
        stored = telemetry::trace::traceparent_of(&span, Some(CALLER));
        span.in_scope(|| tracing::info!("inside"));
    });
    let ingest = named(&spans, "ingest");
    assert_eq!(
        ingest.span_context.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex")
    );
    assert_eq!(
        ingest.parent_span_id,
        SpanId::from_hex("00f067aa0ba902b7").expect("hex")
    );
    assert_eq!(
        stored,
        telemetry::trace::format_traceparent(&ingest.span_context)
    );
}

#[test]
fn a_request_without_a_caller_starts_a_trace_of_its_own() {
    let mut stored = String::new();
    let spans = traced(|| {
        let span = tracing::info_span!("ingest");
        stored = telemetry::trace::traceparent_of(&span, None);
    });
    let ingest = named(&spans, "ingest");
    assert_eq!(ingest.parent_span_id, SpanId::INVALID);
    assert_eq!(
        telemetry::trace::trace_id_of(&stored),
        Some(ingest.span_context.trace_id().to_string())
    );
}

#[test]
fn a_batch_of_one_trace_is_its_child_and_a_mixed_batch_links_each() {
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let spans = traced(|| {
        let one = tracing::info_span!("one");
        assert_eq!(telemetry::trace::continue_from(&one, [CALLER, CALLER]), 1);
        one.in_scope(|| {});
        let mixed = tracing::info_span!("mixed");
        assert_eq!(
            telemetry::trace::continue_from(&mixed, [CALLER, "garbage", other]),
            2
        );
        mixed.in_scope(|| {});
    });
    let one = named(&spans, "one");
    assert_eq!(
        one.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(one.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(one.links.is_empty());

    let mixed = named(&spans, "mixed");
    assert_eq!(mixed.parent_span_id, SpanId::INVALID);
    let mut linked: Vec<String> = mixed
        .links
        .iter()
        .map(|l| l.span_context.trace_id().to_string())
        .collect();
    linked.sort();
    assert_eq!(
        linked,
        [
            "0af7651916cd43dd8448eb211c80319c",
            "4bf92f3577b34da6a3ce929d0e0e4736"
        ]
    );
}
