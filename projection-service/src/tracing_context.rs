//! The projectors continue the traces the command side started: each event
//! keeps, in its metadata, the `traceparent` of the request that caused it,
//! and each applied batch runs in a `project` span that is the child of that
//! request's span when the whole batch comes from one trace (a single POST),
//! and otherwise carries a link to each request's span (at most
//! `telemetry::trace::MAX_LINKS`). So one trace runs from the POST through
//! the append to the projection. Without OpenTelemetry (no
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) the span is a plain `tracing` span and no
//! traceparent is parsed.

use event_store::RecordedEvent;
use std::future::Future;
use tracing::Instrument;
use tracing::instrument::Instrumented;

/// The service every projector span and log line names.
pub const SERVICE: &str = "projection-service";

/// The span of one batch of `projection`, tied to the traces of its events.
/// Create it before the batch starts (links and parent are fixed then).
pub fn project_span(projection: &'static str, events: &[RecordedEvent]) -> tracing::Span {
    let span = tracing::info_span!(
        "project",
        "otel.kind" = "consumer",
        service = SERVICE,
        projection,
        events = events.len(),
        first_position = events.first().map(|e| e.position.0),
        last_position = events.last().map(|e| e.position.0),
        traces = tracing::field::Empty,
    );
    let traces = telemetry::trace::continue_from(
        &span,
        events
            .iter()
            .filter_map(|e| e.metadata.traceparent.as_deref()),
    );
    if traces > 0 {
        span.record("traces", traces);
    }
    span
}

/// Runs `work` (applying `events` for `projection`) inside its
/// [`project_span`]. In the live runner:
/// `match crate::tracing_context::project(self.name(), &events, self.apply(&events, cursor)).await {`
pub fn project<F: Future>(
    projection: &'static str,
    events: &[RecordedEvent],
    work: F,
) -> Instrumented<F> {
    work.instrument(project_span(projection, events))
}
