//! Publishing end to end: what our publisher writes is what a plain rdkafka consumer reads.

mod support;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{Envelope, EventContext, TraceContext};
use rdkafka::Message;
use support::{header, kafka, read_records};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_event_is_the_record_a_plain_consumer_reads() {
    let kafka = kafka();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let trace = TraceContext::new_root();
    let movement = InventoryMovement::new("SKU-42", "WH-1", MovementAction::Shipped, 7);
    let delivery = EventContext::new()
        .with_user("user-9")
        .with_trace(trace)
        .scope(publisher.publish(&movement))
        .await
        .unwrap();

    let records = read_records(&kafka, "erp.inventory.movements", 1).await;
    let record = &records[0];
    assert_eq!(
        (record.partition(), record.offset()),
        (delivery.partition, delivery.offset)
    );
    assert_eq!(record.key(), Some(&b"SKU-42"[..]));
    let traceparent = header(record, "traceparent").expect("a traceparent header");
    let record_trace = TraceContext::parse(&traceparent).expect("a valid traceparent");
    assert_eq!(record_trace.trace_id_hex(), trace.trace_id_hex());
    assert_ne!(record_trace.span_id_hex(), trace.span_id_hex());

    let envelope = Envelope::<InventoryMovement>::decode(record.payload().unwrap()).unwrap();
    assert_eq!(envelope.event_id, delivery.event_id);
    assert_eq!(envelope.event_type, "SHIPPED");
    assert_eq!(envelope.source, "inventory-service");
    assert_eq!(envelope.user_id.as_deref(), Some("user-9"));
    assert_eq!(envelope.trace_id, Some(trace.trace_id_hex()));
    assert_eq!(envelope.version, 1);
    assert_eq!(envelope.payload, movement);
    let json: serde_json::Value = serde_json::from_slice(record.payload().unwrap()).unwrap();
    assert_eq!(json["payload"]["productId"], "SKU-42");
    assert_eq!(json["payload"]["action"], "SHIPPED");
    assert_eq!(json["payload"]["toWarehouse"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_pipelined_and_each_product_keeps_its_order() {
    let kafka = kafka();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let movements: Vec<InventoryMovement> = (0..300)
        .map(|i| {
            InventoryMovement::new(
                &format!("SKU-{}", i % 5),
                "WH-1",
                MovementAction::Received,
                i,
            )
        })
        .collect();
    let deliveries = publisher.publish_all(&movements).await.unwrap();
    assert_eq!(deliveries.len(), 300);

    let records = read_records(&kafka, "erp.inventory.movements", 300).await;
    for product in 0..5 {
        let key = format!("SKU-{product}");
        let mut in_partition: Vec<(i32, i64, i64)> = records
            .iter()
            .filter(|r| r.key() == Some(key.as_bytes()))
            .map(|r| {
                let envelope = Envelope::<InventoryMovement>::decode(r.payload().unwrap()).unwrap();
                (r.partition(), r.offset(), envelope.payload.quantity)
            })
            .collect();
        assert_eq!(in_partition.len(), 60, "{key}");
        assert!(
            in_partition.iter().all(|(p, ..)| *p == in_partition[0].0),
            "{key} spans partitions"
        );
        in_partition.sort_by_key(|&(_, offset, _)| offset);
        let quantities: Vec<i64> = in_partition.iter().map(|&(.., q)| q).collect();
        let expected: Vec<i64> = (0..300).filter(|i| i % 5 == product).collect();
        assert_eq!(quantities, expected, "{key} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_context_each_event_starts_its_own_trace() {
    let kafka = kafka();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let movement = InventoryMovement::new("SKU-1", "WH-1", MovementAction::Received, 1);
    publisher.publish_all([&movement, &movement]).await.unwrap();
    let records = read_records(&kafka, "erp.inventory.movements", 2).await;
    let traces: Vec<String> = records
        .iter()
        .map(|r| {
            let envelope = Envelope::<InventoryMovement>::decode(r.payload().unwrap()).unwrap();
            assert_eq!(envelope.user_id, None);
            envelope.trace_id.unwrap()
        })
        .collect();
    assert_ne!(traces[0], traces[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_the_embedded_broker_creates_what_is_missing_once() {
    let kafka = kafka();
    let catalog = erp_events::catalog!();
    let first = kafka.provision(catalog, 1).await.unwrap();
    assert!(
        first.created.is_empty(),
        "started with the catalog's topics: {first:?}"
    );
    assert_eq!(first.existing.len(), 2 * catalog.topics().len());
    let text = "[[topic]]\nname = \"erp.provision.test\"\nproducer = \"test\"\nconsumers = []\npartitions = 4\npurpose = \"test\"\n";
    let extra = erp_events::Catalog::parse(std::path::Path::new("."), text).unwrap();
    let created = kafka.provision(&extra, 1).await.unwrap();
    assert_eq!(
        created.created,
        ["erp.provision.test", "erp.provision.test.DLT"]
    );
    assert_eq!(
        support::partition_count(&kafka, "erp.provision.test.DLT"),
        4
    );
    let again = kafka.provision(&extra, 1).await.unwrap();
    assert!(
        again.created.is_empty() && again.existing.len() == 2,
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_but_not_awaited_are_delivered_when_the_publisher_is_dropped() {
    let kafka = kafka();
    let publisher = kafka.publisher("inventory-service").unwrap();
    for i in 0..500 {
        let movement = InventoryMovement::new("SKU-D", "WH-1", MovementAction::Received, i);
        drop(publisher.send(&movement).await.unwrap());
    }
    drop(publisher);
    let records = read_records(&kafka, "erp.inventory.movements", 500).await;
    assert_eq!(records.len(), 500);
}
