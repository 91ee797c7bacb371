//! The framework against a real Kafka-compatible broker (`KAFKA_BROKERS`; CI starts Apache Kafka):
//! provisioning, publishing, listening, dead letters and restarts. The broker's topics and
//! groups are shared, so tests take turns and recognise their own events by a run-unique key.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, ListenerExt, ProvisionError, State, erp_listener};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Message, Offset, TopicPartitionList};
use support::services::external_kafka;
use support::{PATIENCE, Probe, committed, dead_letter_info, header, read_records_where, within};
use tokio::sync::Notify;

const TOPIC: &str = "erp.inventory.movements";
const DLT: &str = "erp.inventory.movements.DLT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_creates_the_catalogs_topics_once() {
    let Some((kafka, _turn)) =
        external_kafka("provisioning_creates_the_catalogs_topics_once").await
    else {
        return;
    };
    let catalog = erp_events::catalog!();
    // The suite's other tests may have provisioned already: a second run finds everything.
    kafka.provision(catalog, 1).await.unwrap();
    let again = kafka.provision(catalog, 1).await.unwrap();
    assert!(again.created.is_empty(), "{again:?}");
    assert_eq!(again.existing.len(), 2 * catalog.topics().len());
    for topic in catalog.topics() {
        assert_eq!(
            support::partition_count(&kafka, &topic.name),
            topic.partitions
        );
        assert_eq!(
            support::partition_count(&kafka, &topic.dead_letter_topic()),
            topic.partitions
        );
    }
}

/// A probe for this run's events only; the others (earlier tests' records that this group had
/// not read yet) are handled without a trace.
#[derive(Clone)]
struct RunProbe {
    run: String,
    probe: Probe,
}

impl RunProbe {
    fn new(probe: Probe) -> Self {
        RunProbe {
            run: uuid::Uuid::now_v7().simple().to_string(),
            probe,
        }
    }

    fn call(&self, event: &Envelope<InventoryMovement>) -> Result<(), HandlerError> {
        if event.payload.product_id.starts_with(&self.run) {
            self.probe.call(event)
        } else {
            Ok(())
        }
    }

    /// This run's movement number `i` of product `product`.
    fn movement(&self, product: usize, i: i64) -> InventoryMovement {
        let product = format!("{}-{product}", self.run);
        InventoryMovement::new(&product, "WH-1", MovementAction::Received, i)
    }
}

#[erp_listener(group = "search-sync", retries = 1, backoff(initial_ms = 10))]
async fn probed(
    event: Envelope<InventoryMovement>,
    State(probe): State<RunProbe>,
) -> Result<(), HandlerError> {
    probe.call(&event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_are_handled_once_each_in_order_per_key() {
    let Some((kafka, _turn)) =
        external_kafka("published_events_are_handled_once_each_in_order_per_key").await
    else {
        return;
    };
    let probe = RunProbe::new(Probe::succeeding());
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    let events: Vec<_> = (0..600).map(|i| probe.movement(i % 12, i as i64)).collect();
    let publisher = kafka.publisher("inventory-service").unwrap();
    publisher.publish_all(&events).await.unwrap();
    let calls = probe.probe.wait_for_calls(600).await;
    running.shutdown().await;
    let mut by_product: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for call in &calls {
        by_product
            .entry(&call.product)
            .or_default()
            .push(call.quantity);
    }
    assert_eq!(by_product.len(), 12);
    for (product, quantities) in by_product {
        let expected: Vec<i64> = events
            .iter()
            .filter(|event| event.product_id == product)
            .map(|event| event.quantity)
            .collect();
        assert_eq!(
            quantities, expected,
            "{product}: once each, in publish order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_dead_lettered_to_the_same_partition_with_springs_headers() {
    let Some((kafka, _turn)) = external_kafka("a_failing_handler_is_dead_lettered").await else {
        return;
    };
    let probe = RunProbe::new(Probe::always_failing());
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let event = probe.movement(0, 7);
    let delivery = publisher.publish(&event).await.unwrap();
    let key = event.product_id.clone();
    let dead = read_records_where(&kafka, DLT, 1, move |record| {
        record.key() == Some(key.as_bytes())
    })
    .await;
    running.shutdown().await;
    assert_eq!(probe.probe.calls().len(), 2, "retries = 1: two attempts");
    let dead = &dead[0];
    assert_eq!(dead.partition(), delivery.partition);
    let info = dead_letter_info(dead);
    assert_eq!(
        (
            info.original_topic.as_str(),
            info.original_partition,
            info.original_offset
        ),
        (TOPIC, delivery.partition, delivery.offset)
    );
    assert_eq!(info.consumer_group, "search-sync");
    assert_eq!(
        (info.message.as_str(), info.attempts),
        ("simulated failure 2", Some(2))
    );
    let value: serde_json::Value = serde_json::from_slice(dead.payload().unwrap()).unwrap();
    assert_eq!(
        value["eventId"],
        delivery.event_id.to_string(),
        "the value is kept"
    );
    // The envelope names the trace, so the listener left the headers at the broker; the dead
    // letter has them all the same, read back.
    let key = event.product_id.clone();
    let original = read_records_where(&kafka, TOPIC, 1, move |record| {
        record.key() == Some(key.as_bytes())
    })
    .await;
    assert_eq!(info.original_headers_lost, None);
    assert_eq!(
        header(dead, "traceparent"),
        Some(header(&original[0], "traceparent").expect("the publisher writes one"))
    );
    let offsets = committed(&kafka, "search-sync", TOPIC);
    assert!(
        offsets[&delivery.partition] > delivery.offset,
        "committed once dead-lettered"
    );
}

/// Holds this run's events in the handler until the test lets go, then refuses them.
#[derive(Clone)]
struct Held {
    run: String,
    started: Arc<Notify>,
    let_go: Arc<Notify>,
}

#[erp_listener(group = "search-sync", retries = 0)]
async fn held_then_refused(
    event: Envelope<InventoryMovement>,
    State(held): State<Held>,
) -> Result<(), HandlerError> {
    if !event.payload.product_id.starts_with(&held.run) {
        return Ok(());
    }
    held.started.notify_one();
    held.let_go.notified().await;
    Err(HandlerError::permanent("refused"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_whose_record_was_deleted_meanwhile_says_its_headers_are_lost() {
    let Some((kafka, _turn)) = external_kafka("a_dead_letter_whose_record_was_deleted").await
    else {
        return;
    };
    let held = Held {
        run: uuid::Uuid::now_v7().simple().to_string(),
        started: Arc::new(Notify::new()),
        let_go: Arc::new(Notify::new()),
    };
    let running = App::new(&kafka)
        .listener(held_then_refused.with_state(held.clone()))
        .start()
        .unwrap();
    let product = format!("{}-0", held.run);
    let event = InventoryMovement::new(&product, "WH-1", MovementAction::Received, 1);
    let publisher = kafka.publisher("inventory-service").unwrap();
    let delivery = publisher.publish(&event).await.unwrap();
    within(PATIENCE, "the handler to start", held.started.notified()).await;
    // As retention would: the partition now starts after the record being handled.
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
    let mut before = TopicPartitionList::new();
    let start = Offset::Offset(delivery.offset + 1);
    before
        .add_partition_offset(TOPIC, delivery.partition, start)
        .unwrap();
    admin
        .delete_records(&before, &AdminOptions::new())
        .await
        .unwrap();
    held.let_go.notify_one();
    let dead = read_records_where(&kafka, DLT, 1, move |record| {
        record.key() == Some(product.as_bytes())
    })
    .await;
    running.shutdown().await;
    let info = dead_letter_info(&dead[0]);
    assert_eq!(
        (info.original_offset, info.message.as_str()),
        (delivery.offset, "refused")
    );
    let lost = info
        .original_headers_lost
        .expect("says the headers are lost");
    assert!(lost.contains("is no longer on Kafka"), "{lost}");
    assert_eq!(header(&dead[0], "traceparent"), None);
    let value: serde_json::Value = serde_json::from_slice(dead[0].payload().unwrap()).unwrap();
    assert_eq!(
        value["eventId"],
        delivery.event_id.to_string(),
        "the value is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_listener_resumes_after_its_last_commit() {
    let Some((kafka, _turn)) = external_kafka("a_restarted_listener_resumes").await else {
        return;
    };
    let publisher = kafka.publisher("inventory-service").unwrap();
    let first = RunProbe::new(Probe::succeeding());
    let events: Vec<_> = (0..150).map(|i| first.movement(i % 7, i as i64)).collect();
    publisher.publish_all(&events[..100]).await.unwrap();
    let running = App::new(&kafka)
        .listener(probed.with_state(first.clone()))
        .start()
        .unwrap();
    first.probe.wait_for_calls(100).await;
    running.shutdown().await;

    publisher.publish_all(&events[100..]).await.unwrap();
    let restarted = RunProbe {
        probe: Probe::succeeding(),
        ..first.clone()
    };
    let running = App::new(&kafka)
        .listener(probed.with_state(restarted.clone()))
        .start()
        .unwrap();
    let calls = restarted.probe.wait_for_calls(50).await;
    running.shutdown().await;
    let mut quantities: Vec<i64> = calls.iter().map(|c| c.quantity).collect();
    quantities.sort_unstable();
    assert_eq!(
        quantities,
        (100..150).collect::<Vec<_>>(),
        "nothing committed is handled again, nothing skipped"
    );
    assert_eq!(first.probe.calls().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_reports_a_dead_letter_topic_with_too_few_partitions() {
    let Some((kafka, _turn)) = external_kafka("provisioning_reports_a_dead_letter_topic").await
    else {
        return;
    };
    // A topic of this run only, whose DLT someone created with one partition.
    let topic = format!("erp.provision.t{}", uuid::Uuid::now_v7().simple());
    let dlt = kafka.dead_letter_topic(&topic);
    let text = format!(
        "[[topic]]\nname = \"{topic}\"\nproducer = \"test\"\nconsumers = [\"test\"]\npartitions = 3\npurpose = \"test\"\n"
    );
    let catalog = erp_events::Catalog::parse(std::path::Path::new("."), &text).unwrap();
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(&dlt, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    let error = kafka.provision(&catalog, 1).await.unwrap_err();
    assert!(
        matches!(&error, ProvisionError::TooFewPartitions { topic, found: 1, wanted: 3 } if *topic == dlt),
        "{error}"
    );
    assert_eq!(
        support::partition_count(&kafka, &topic),
        3,
        "the topic was still created"
    );
    assert_eq!(
        support::partition_count(&kafka, &dlt),
        1,
        "partitions are not added silently"
    );
}
