//! OpenTelemetry traces (the `otel` feature) as a tracing backend sees them, through
//! `tracing-opentelemetry` and the SDK's in-memory exporter: a publish, the record's two attempts
//! (the first fails and is retried, the second too and the record is dead-lettered), what the
//! handler publishes, and the dead letter, all in the producer's trace, with the names, kinds,
//! attributes, parents and links of OpenTelemetry's messaging conventions.

mod support;

use std::collections::HashMap;

use erp_demo::audit::AuditRecord;
use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, ListenerExt, Publisher, State, erp_listener};
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::{PATIENCE, kafka};
use tracing_subscriber::layer::SubscriberExt;

/// Publishes an audit record, then fails: retried once, then dead-lettered. Not idempotent: its
/// worker reads each record only as it comes to it, and the record's span still names it.
#[erp_listener(
    group = "search-sync",
    retries = 1,
    backoff(initial_ms = 1),
    idempotent = false
)]
async fn audits_then_fails(
    event: Envelope<InventoryMovement>,
    State(audit): State<Publisher>,
) -> Result<(), HandlerError> {
    let record = AuditRecord {
        module: "inventory".into(),
        entity_id: event.payload.product_id.clone(),
        action: "INDEX".into(),
        actor: "search-sync".into(),
        detail: None,
    };
    audit
        .publish(&record)
        .await
        .map_err(HandlerError::retryable)?;
    Err(HandlerError::retryable(std::io::Error::other(
        "the search index is down",
    )))
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| attribute.value.as_str().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_s_spans_follow_the_messaging_conventions_in_the_producer_s_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("erp-events-test"));
    // Global: the spans are made on the runtime's worker threads.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();

    let kafka = kafka();
    let app = App::new(&kafka);
    let publisher = app.publisher("inventory-service").unwrap();
    let audit = app.publisher("inventory-service").unwrap();
    let running = app
        .listener(audits_then_fails.with_state(audit))
        .start()
        .unwrap();
    let movement = InventoryMovement::new("SKU-T", "WH-1", MovementAction::Received, 1);
    let delivery = publisher.publish(&movement).await.unwrap();
    let dead_lettered = running.wait_until(|reports| reports[0].counts.dead_lettered == 1);
    tokio::time::timeout(PATIENCE, dead_lettered).await.unwrap();
    running.shutdown().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let named =
        |name: &str| -> Vec<&SpanData> { spans.iter().filter(|s| s.name == name).collect() };
    let by_id: HashMap<_, _> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();

    let sends = named("send erp.inventory.movements");
    assert_eq!(sends.len(), 1, "{names:?}");
    let send = sends[0];
    let trace = send.span_context.trace_id();
    assert_eq!(send.span_kind, SpanKind::Producer);
    let message_id = delivery.event_id.to_string();
    for (key, value) in [
        ("messaging.system", "kafka"),
        ("messaging.operation.type", "send"),
        ("messaging.operation.name", "send"),
        ("messaging.destination.name", "erp.inventory.movements"),
        ("messaging.message.id", message_id.as_str()),
    ] {
        assert_eq!(attribute(send, key).as_deref(), Some(value), "send: {key}");
    }

    let processes = named("process erp.inventory.movements");
    assert_eq!(processes.len(), 2, "two attempts: {names:?}");
    let partition = delivery.partition.to_string();
    let offset = delivery.offset.to_string();
    for process in &processes {
        assert_eq!(process.span_kind, SpanKind::Consumer);
        assert_eq!(
            process.span_context.trace_id(),
            trace,
            "the producer's trace"
        );
        for (key, value) in [
            ("messaging.system", "kafka"),
            ("messaging.operation.type", "process"),
            ("messaging.operation.name", "process"),
            ("messaging.destination.name", "erp.inventory.movements"),
            ("messaging.consumer.group.name", "search-sync"),
            ("messaging.destination.partition.id", partition.as_str()),
            ("messaging.kafka.offset", offset.as_str()),
            ("messaging.kafka.message.key", "SKU-T"),
            ("messaging.message.id", message_id.as_str()),
            ("error.type", "std::io::error::Error"),
        ] {
            assert_eq!(
                attribute(process, key).as_deref(),
                Some(value),
                "process: {key}"
            );
        }
        let linked = process
            .links
            .links
            .iter()
            .map(|link| link.span_context.span_id());
        assert!(
            linked
                .collect::<Vec<_>>()
                .contains(&send.span_context.span_id()),
            "each attempt links to the producer's span"
        );
        // Its parent is the record's span, whose parent is the producer's.
        let record = by_id[&process.parent_span_id];
        assert_eq!(record.name, "erp.record");
        assert_eq!(record.parent_span_id, send.span_context.span_id());
        // Its fields name the event and its trace, for logs as well as traces.
        assert_eq!(
            attribute(record, "event_id").as_deref(),
            Some(message_id.as_str())
        );
        assert_eq!(
            attribute(record, "trace_id"),
            Some(trace.to_string()),
            "the envelope's traceId"
        );
    }
    let attempts: Vec<String> = processes
        .iter()
        .filter_map(|p| attribute(p, "erp.attempt"))
        .collect();
    assert_eq!(attempts.len(), 2);

    let audits = named("send erp.audit.events");
    assert_eq!(audits.len(), 2, "one per attempt: {names:?}");
    for audit in audits {
        assert_eq!(audit.span_context.trace_id(), trace);
        assert_eq!(
            by_id[&audit.parent_span_id].name,
            "process erp.inventory.movements"
        );
    }

    let dead = named("send erp.inventory.movements.DLT");
    assert_eq!(dead.len(), 1, "{names:?}");
    assert_eq!(dead[0].span_kind, SpanKind::Producer);
    assert_eq!(
        dead[0].span_context.trace_id(),
        trace,
        "the dead letter too"
    );
    assert_eq!(by_id[&dead[0].parent_span_id].name, "erp.record");
}
