//! Spans of OpenTelemetry's messaging conventions: `send <topic>` per publish (dead letters
//! included) and `process <topic>` per handler attempt, with their attributes. They are plain
//! `tracing` spans, free when nothing listens. With the `otel` feature and
//! `tracing-opentelemetry`'s layer installed, a record's span continues its producer's trace
//! (`traceparent`, else the envelope's `traceId`), each attempt links to the producer's span, and
//! a publish writes its own `send` span into `traceparent`.

use tracing::Span;
use tracing::field::Empty;
use uuid::Uuid;

use crate::core::trace::TraceContext;

/// The span of one publish to `topic` (until its acknowledgement); a dead letter has no event
/// id of its own to name.
pub(crate) fn send(system: &'static str, topic: &str, event_id: Option<Uuid>) -> Span {
    tracing::info_span!(
        "send",
        otel.name = format!("send {topic}"),
        otel.kind = "producer",
        messaging.system = system,
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = topic,
        messaging.message.id = event_id.map(tracing::field::display),
        error.type = Empty,
        otel.status_code = Empty,
    )
}

/// Where a handled record came from, for its attempts' spans.
pub(crate) struct Delivered<'a> {
    pub(crate) system: &'static str,
    pub(crate) topic: &'static str,
    pub(crate) group: &'static str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) event_id: Option<Uuid>,
}

/// The span of one handler attempt.
pub(crate) fn process(delivered: &Delivered<'_>, attempt: u32) -> Span {
    tracing::info_span!(
        "process",
        otel.name = format!("process {}", delivered.topic),
        otel.kind = "consumer",
        messaging.system = delivered.system,
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = delivered.topic,
        messaging.consumer.group.name = delivered.group,
        messaging.destination.partition.id = delivered.partition.to_string(),
        messaging.kafka.offset = delivered.offset,
        messaging.kafka.message.key = delivered.key.and_then(|key| std::str::from_utf8(key).ok()),
        messaging.message.id = delivered.event_id.map(tracing::field::display),
        erp.attempt = attempt,
        error.type = Empty,
        otel.status_code = Empty,
    )
}

/// Marks `span` failed with `error_type`.
pub(crate) fn failed(span: &Span, error_type: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "error");
}

/// Makes `span` (not yet entered) continue `parent`'s trace.
#[cfg(feature = "otel")]
pub(crate) fn continue_trace(span: &Span, parent: Option<&TraceContext>) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if let Some(parent) = parent {
        let remote = opentelemetry::Context::new().with_remote_span_context(span_context(parent));
        // Not installed, or the span disabled: nothing to continue.
        let _ = span.set_parent(remote);
    }
}

/// Links `span` to the span that published the record (`parent`).
#[cfg(feature = "otel")]
pub(crate) fn link_to(span: &Span, parent: Option<&TraceContext>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if let Some(parent) = parent {
        span.add_link(span_context(parent));
    }
}

/// `span`'s own position in its trace, to write into the records published under it; `None`
/// when OpenTelemetry does not record it.
#[cfg(feature = "otel")]
pub(crate) fn trace_of(span: &Span) -> Option<TraceContext> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let ids = context.span().span_context().clone();
    ids.is_valid().then(|| {
        TraceContext::from_ids(
            ids.trace_id().to_bytes(),
            ids.span_id().to_bytes(),
            ids.trace_flags().to_u8(),
        )
    })
}

#[cfg(feature = "otel")]
fn span_context(trace: &TraceContext) -> opentelemetry::trace::SpanContext {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let (trace_id, span_id, flags) = trace.ids();
    SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::new(flags),
        true,
        TraceState::NONE,
    )
}

/// Without the `otel` feature: the spans are `tracing`'s alone.
#[cfg(not(feature = "otel"))]
pub(crate) fn continue_trace(_span: &Span, _parent: Option<&TraceContext>) {}

/// Without the `otel` feature: the spans are `tracing`'s alone.
#[cfg(not(feature = "otel"))]
pub(crate) fn link_to(_span: &Span, _parent: Option<&TraceContext>) {}

/// Without the `otel` feature, spans have no trace position of their own.
#[cfg(not(feature = "otel"))]
pub(crate) fn trace_of(_span: &Span) -> Option<TraceContext> {
    None
}
