//! W3C trace context in and out of `tracing` spans, so that one trace runs
//! from a POST, through the event log (each event's metadata keeps the
//! `traceparent` of the request that caused it), into the projector that
//! applied it.
//!
//! With the OpenTelemetry layer installed ([`layer`]: by `init` when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or by a test), spans are real
//! OpenTelemetry spans: [`set_remote_parent`] makes a request span the child
//! of its caller's span, [`traceparent_of`] gives the span's own context to
//! store, and [`continue_from`] makes a projector's span the child of (or
//! linked to) the requests whose events it applies. Without the layer these
//! cost next to nothing, and [`traceparent_of`] still hands out a trace id
//! per request (the caller's, or a new one), so the log stays joinable.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

/// Most links one span carries (the SDK's default limit).
pub const MAX_LINKS: usize = 128;

/// Set once an OpenTelemetry layer was built in this process.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The `tracing` layer that turns spans into OpenTelemetry spans of
/// `provider`'s tracer. From then on [`active`] is true.
pub fn layer<S>(provider: &SdkTracerProvider) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    ACTIVE.store(true, Ordering::Relaxed);
    tracing_opentelemetry::layer().with_tracer(provider.tracer("sentinel"))
}

/// Whether spans of this process may become OpenTelemetry spans.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// A W3C `traceparent` header value (`00-<trace id>-<span id>-<flags>`),
/// as a remote span context; `None` if malformed or all-zero.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    // Version 00 has exactly four parts; a later version may append more.
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()? & TraceFlags::SAMPLED.to_u8();
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// `context` as a W3C `traceparent` value.
pub fn format_traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// The trace id of a `traceparent` value, if it is well formed.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    parse_traceparent(traceparent).map(|c| c.trace_id().to_string())
}

/// Makes `span` (not yet entered) the child of the remote span `traceparent`
/// names. False if the value is malformed or spans are not traced here.
pub fn set_remote_parent(span: &Span, traceparent: &str) -> bool {
    if !active() {
        return false;
    }
    match parse_traceparent(traceparent) {
        Some(parent) => span
            .set_parent(Context::new().with_remote_span_context(parent))
            .is_ok(),
        None => false,
    }
}

/// The `traceparent` to store with the work done in `span`: the span's own
/// context when it is traced; otherwise a fresh span id in the caller's
/// trace (`incoming`), or in a new trace when there is no valid caller.
/// Call after [`set_remote_parent`]: this starts the span.
pub fn traceparent_of(span: &Span, incoming: Option<&str>) -> String {
    if active() && !span.is_disabled() {
        let context = span.context();
        let own = context.span().span_context().clone();
        if own.is_valid() {
            return format_traceparent(&own);
        }
    }
    let ids = RandomIdGenerator::default();
    match incoming.and_then(parse_traceparent) {
        Some(caller) => format!(
            "00-{}-{}-{:02x}",
            caller.trace_id(),
            ids.new_span_id(),
            caller.trace_flags().to_u8()
        ),
        // Not sampled: nothing of it was recorded here.
        None => format!("00-{}-{}-00", ids.new_trace_id(), ids.new_span_id()),
    }
}

/// Ties `span` (not yet entered) to the work it continues, given the stored
/// `traceparent`s of that work: the child of it when it all belongs to one
/// trace (links to its other spans), else a link to each distinct span (at
/// most [`MAX_LINKS`]). Returns how many distinct traces were seen (0 when
/// spans are not traced here: then nothing is parsed).
pub fn continue_from<'a>(span: &Span, traceparents: impl IntoIterator<Item = &'a str>) -> usize {
    if !active() || span.is_disabled() {
        return 0;
    }
    let mut traces: HashSet<TraceId> = HashSet::new();
    let mut seen: HashSet<(TraceId, SpanId)> = HashSet::new();
    let mut contexts: Vec<SpanContext> = Vec::new();
    for value in traceparents {
        let Some(context) = parse_traceparent(value) else {
            continue;
        };
        traces.insert(context.trace_id());
        if contexts.len() < MAX_LINKS + 1 && seen.insert((context.trace_id(), context.span_id())) {
            contexts.push(context);
        }
    }
    let mut contexts = contexts.into_iter();
    if traces.len() == 1
        && let Some(parent) = contexts.next()
    {
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
    }
    for context in contexts.take(MAX_LINKS) {
        span.add_link_with_attributes(context, vec![KeyValue::new("sentinel.link", "caused_by")]);
    }
    traces.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_round_trips() {
        let context = parse_traceparent(SAMPLE).expect("valid");
        assert!(context.is_remote());
        assert!(context.is_sampled());
        assert_eq!(format_traceparent(&context), SAMPLE);
        assert_eq!(
            trace_id_of(SAMPLE).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-ffff",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
        // A later version may carry more parts; the first four still count.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
    }

    #[test]
    fn without_tracing_a_request_still_gets_a_trace_id() {
        let span = Span::none();
        let child = traceparent_of(&span, Some(SAMPLE));
        let child = parse_traceparent(&child).expect("valid");
        assert_eq!(
            child.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(child.span_id().to_string(), "00f067aa0ba902b7");
        let fresh = traceparent_of(&span, Some("garbage"));
        let fresh = parse_traceparent(&fresh).expect("valid");
        assert_ne!(
            fresh.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(!fresh.is_sampled());
    }
}
