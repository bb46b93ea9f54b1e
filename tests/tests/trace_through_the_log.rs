//! One trace runs from the POST, through the append (the trace context kept
//! in each event's metadata), to the projection: the real command service on
//! port 0 under the SDK's in-memory exporter, its events read back from the
//! store and handed to the projector's `project` span.

use event_store::{EventStore, RecordedEvent};
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sqlx::PgPool;
use std::sync::OnceLock;
use telemetry::trace::{format_traceparent, parse_traceparent, trace_id_of};
use test_support::{spawn_command, tx};
use tracing_subscriber::layer::SubscriberExt;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// This process's spans, kept in memory (one subscriber for every test).
fn spans_in_memory() -> &'static (InMemorySpanExporter, SdkTracerProvider) {
    static TRACING: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    TRACING.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
            .with(telemetry::trace::layer(&provider));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        (exporter, provider)
    })
}

/// The finished spans called `name` in trace `trace_id`, waiting a little
/// for the first one (a request span ends as its handler's future is dropped).
async fn finished(name: &str, trace_id: &str) -> Vec<SpanData> {
    let (exporter, provider) = spans_in_memory();
    for _ in 0..50 {
        provider.force_flush().expect("flush");
        let found: Vec<SpanData> = exporter
            .get_finished_spans()
            .expect("spans")
            .into_iter()
            .filter(|s| s.name == name && s.span_context.trace_id().to_string() == trace_id)
            .collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Vec::new()
}

async fn stream(store: &dyn EventStore, id: &str) -> Vec<RecordedEvent> {
    store.read_stream(id, 0, 100).await.expect("read")
}

fn stored_traceparent(event: &RecordedEvent) -> &str {
    event
        .metadata
        .traceparent
        .as_deref()
        .expect("every event of a request keeps its trace context")
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn one_trace_covers_ingest_append_and_projection(pool: PgPool) {
    spans_in_memory();
    let command = spawn_command(pool).await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    // A large purchase: recorded with an alert, so the request appends two events.
    let (status, answer) = command
        .post_with(
            "/v1/transactions",
            &tx("t-traced", "c-traced", 5000.0, 1),
            &[("traceparent", caller.as_str())],
        )
        .await;
    assert_eq!(status, 201, "{answer}");

    // Ingest: the request span is the caller's child.
    let ingest = finished("ingest", CALLER_TRACE).await;
    assert_eq!(ingest.len(), 1, "{ingest:?}");
    let ingest = &ingest[0];
    assert_eq!(ingest.parent_span_id.to_string(), CALLER_SPAN);

    // Append: every event the request appended keeps the request span's context.
    let events = stream(&*command.store, "customer-c-traced").await;
    assert!(events.len() >= 2, "{events:?}");
    for event in &events {
        assert_eq!(
            stored_traceparent(event),
            format_traceparent(&ingest.span_context),
            "{}",
            event.event_type
        );
    }

    // Projection: the batch's span continues the same trace, under the request.
    projection_service::tracing_context::project("transactions", &events, async {}).await;
    let project = finished("project", CALLER_TRACE).await;
    assert_eq!(project.len(), 1, "{project:?}");
    assert_eq!(project[0].parent_span_id, ingest.span_context.span_id());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_request_without_traceparent_starts_a_trace_and_a_mixed_batch_links_each(pool: PgPool) {
    spans_in_memory();
    let command = spawn_command(pool).await;
    for (id, customer) in [("t-new-1", "c-new-1"), ("t-new-2", "c-new-2")] {
        let (status, answer) = command
            .post("/v1/transactions", &tx(id, customer, 12.5, 1))
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let mut events = stream(&*command.store, "customer-c-new-1").await;
    events.extend(stream(&*command.store, "customer-c-new-2").await);
    let mut traces = Vec::new();
    for event in &events {
        let trace = trace_id_of(stored_traceparent(event)).expect("well formed");
        // A new trace per request, and it is the request span's.
        let ingest = finished("ingest", &trace).await;
        assert_eq!(ingest.len(), 1, "ingest span of trace {trace}");
        assert_eq!(ingest[0].parent_span_id, SpanId::INVALID);
        traces.push(trace);
    }
    traces.dedup();
    assert_eq!(traces.len(), 2, "{traces:?}");

    // One batch, two requests: a span of its own, linked to both.
    let (exporter, provider) = spans_in_memory();
    let before = exporter.get_finished_spans().expect("spans").len();
    projection_service::tracing_context::project("transactions", &events, async {}).await;
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let project = spans[before..]
        .iter()
        .find(|s| {
            s.name == "project"
                && s.links
                    .iter()
                    .any(|l| l.span_context.trace_id().to_string() == traces[0])
        })
        .expect("a project span linked to the first request");
    let mut linked: Vec<String> = project
        .links
        .iter()
        .map(|l| l.span_context.trace_id().to_string())
        .collect();
    linked.sort();
    let mut expected = traces.clone();
    expected.sort();
    assert_eq!(linked, expected);
    assert!(!traces.contains(&project.span_context.trace_id().to_string()));
    assert!(
        events
            .iter()
            .all(|e| parse_traceparent(stored_traceparent(e)).is_some())
    );
}
