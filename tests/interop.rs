//! Side by side with the seed's Kotlin service (`interop/`: Spring Boot 4, Spring for Apache
//! Kafka, Jackson) on Apache Kafka: envelopes both ways, one partition per key from both
//! producers, dead letters both ways, and both of Spring's dead-letter suffixes.
//!
//! Needs `KAFKA_BROKERS` and `ERP_SPRING_PEER` (the jar `scripts/interop build` prints); each
//! test says it was skipped without them, and fails under `ERP_REQUIRE_SERVICES=1`.

mod support;

use std::sync::{Arc, Mutex};

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::dlt::DeadLetter;
use erp_events::{
    App, Brokers, Catalog, Envelope, Event, HandlerError, Kafka, ListenerExt, State, erp_listener,
};
use rdkafka::Message;
use serde_json::{Value, json};
use support::peer::SpringPeer;
use support::services::external_kafka;
use support::{read_dead_letters_where, read_records_where};
use tokio::sync::MutexGuard;

const TOPIC: &str = "erp.inventory.movements";

/// The broker (provisioned, this test's turn) and the peer, or `None` after saying why.
async fn services(test: &str) -> Option<(Kafka, MutexGuard<'static, ()>, SpringPeer)> {
    let (kafka, turn) = external_kafka(test).await?;
    let peer = SpringPeer::find(test, kafka.bootstrap_servers())?;
    Some((kafka, turn, peer))
}

/// A run-unique product prefix: the broker's topics are shared with other tests and runs.
fn run_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// What our listener received of one run's products.
#[derive(Clone)]
struct Received {
    run: String,
    envelopes: Arc<Mutex<Vec<Envelope<InventoryMovement>>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Received {
    fn new(run: &str) -> Self {
        Received {
            run: run.to_owned(),
            envelopes: Arc::default(),
            changed: Arc::default(),
        }
    }

    async fn wait_for(&self, count: usize) -> Vec<Envelope<InventoryMovement>> {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let envelopes = self.envelopes.lock().unwrap().clone();
                if envelopes.len() >= count {
                    return envelopes;
                }
                changed.await;
            }
        };
        tokio::time::timeout(support::PATIENCE, wait)
            .await
            .expect("our listener received the peer's envelopes in time")
    }
}

/// Search-sync as a Rust service: keeps this run's envelopes; rejects products ending in
/// `-fail` for good (straight to the dead-letter topic).
#[erp_listener(group = "search-sync", retries = 0)]
async fn search_sync(
    event: Envelope<InventoryMovement>,
    State(received): State<Received>,
) -> Result<(), HandlerError> {
    let product = &event.payload.product_id;
    if !product.starts_with(&received.run) {
        return Ok(());
    }
    if product.ends_with("-fail") {
        return Err(HandlerError::permanent(format!(
            "search index rejected {product}"
        )));
    }
    received.envelopes.lock().unwrap().push(event);
    received.changed.notify_waiters();
    Ok(())
}

fn movement(product: &str, action: MovementAction, quantity: i64) -> InventoryMovement {
    InventoryMovement::new(product, "WH-1", action, quantity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_from_the_kotlin_producer_reach_our_listener() {
    let Some((kafka, _turn, peer)) = services("envelopes_from_the_kotlin_producer").await else {
        return;
    };
    let run = run_id();
    let requests = [
        json!({"payload": {"productId": format!("{run}-A"), "warehouse": "WH-1", "action": "RECEIVED",
                 "quantity": 5, "toWarehouse": null},
               "timestamp": "2026-12-01T10:00:00.123456789Z", "userId": "user-7"}),
        json!({"payload": {"productId": format!("{run}-A"), "warehouse": "WH-1", "action": "SHIPPED",
                 "quantity": 2, "toWarehouse": null},
               "timestamp": "2026-12-01T10:00:01.123456Z"}),
        json!({"payload": {"productId": format!("{run}-B"), "warehouse": "WH-1", "action": "TRANSFERRED",
                 "quantity": 3, "toWarehouse": "WH-2"}}),
        json!({"payload": {"productId": format!("{run}-C"), "warehouse": "WH-3", "action": "RECEIVED",
                 "quantity": 9_007_199_254_740_993_i64, "toWarehouse": null}}),
    ];
    let received = Received::new(&run);
    let running = App::new(&kafka)
        .listener(search_sync.with_state(received.clone()))
        .start()
        .unwrap();
    let sent = peer.produce(&requests).await;
    let mut envelopes = received.wait_for(requests.len()).await;
    running.shutdown().await;

    envelopes.sort_by_key(|e| {
        sent.iter()
            .position(|s| s["eventId"] == e.event_id.to_string())
    });
    for ((envelope, request), sent) in envelopes.iter().zip(&requests).zip(&sent) {
        assert_eq!(
            envelope.event_id.to_string(),
            sent["eventId"],
            "eventId as sent"
        );
        assert_eq!(envelope.source, "inventory-service");
        assert_eq!(envelope.event_type, request["payload"]["action"]);
        assert_eq!(envelope.version, 1);
        assert_eq!(envelope.trace_id, None);
        assert_eq!(envelope.user_id.as_deref(), request["userId"].as_str());
        let payload = serde_json::to_value(&envelope.payload).unwrap();
        assert_eq!(payload, request["payload"], "the payload, field for field");
    }
    assert_eq!(envelopes[0].timestamp.nanosecond(), 123_456_789);
    assert_eq!(envelopes[1].timestamp.nanosecond(), 123_456_000);
    assert_eq!(envelopes[2].payload.to_warehouse.as_deref(), Some("WH-2"));
    assert_eq!(envelopes[3].payload.quantity, 9_007_199_254_740_993);

    // The records' keys are the products, as the seed's producer sends them.
    let prefix = run.clone();
    let records = read_records_where(&kafka, TOPIC, requests.len(), move |record| {
        record
            .key()
            .is_some_and(|key| key.starts_with(prefix.as_bytes()))
    })
    .await;
    for sent in &sent {
        let record = records
            .iter()
            .find(|r| {
                (r.partition(), r.offset()) == (as_i32(&sent["partition"]), as_i64(&sent["offset"]))
            })
            .expect("the acknowledged record");
        assert_eq!(record.key(), sent["key"].as_str().map(str::as_bytes));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_from_our_publisher_reach_the_kotlin_listener() {
    let Some((kafka, _turn, peer)) = services("envelopes_from_our_publisher").await else {
        return;
    };
    let run = run_id();
    let group = format!("spring-search-sync-{run}");
    let mut spring = peer
        .start(&[
            ("peer.consume", "true"),
            ("peer.group", &group),
            ("peer.products", &run),
            ("peer.start-at-end", "true"),
        ])
        .await;
    let mut transfer = movement(&format!("{run}-B"), MovementAction::Transferred, 3);
    transfer.to_warehouse = Some("WH-2".into());
    let events = [
        movement(&format!("{run}-A"), MovementAction::Received, 5),
        movement(&format!("{run}-A"), MovementAction::Shipped, 2),
        transfer,
    ];
    let publisher = kafka.publisher("inventory-service").unwrap();
    let deliveries = publisher.publish_all(&events).await.unwrap();
    let received = spring.wait_for("received", events.len()).await;
    for (event, delivery) in events.iter().zip(&deliveries) {
        let line = received
            .iter()
            .find(|line| line["envelope"]["eventId"] == delivery.event_id.to_string())
            .expect("Jackson read every envelope into the seed's EventEnvelope");
        let envelope = &line["envelope"];
        assert_eq!(line["key"], event.product_id.as_str());
        assert_eq!(line["partition"], delivery.partition);
        assert_eq!(envelope["eventType"], event.event_type());
        assert_eq!(envelope["source"], "inventory-service");
        assert_eq!(envelope["version"], 1);
        assert_eq!(envelope["payload"], serde_json::to_value(event).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_lands_on_one_partition_from_both_producers() {
    let Some((kafka, _turn, peer)) = services("one_key_lands_on_one_partition").await else {
        return;
    };
    let run = run_id();
    let products: Vec<String> = (0..24).map(|i| format!("{run}-SKU-{i}")).collect();
    let requests: Vec<Value> = products
        .iter()
        .map(|p| {
            json!({"payload": {"productId": p, "warehouse": "WH-1", "action": "RECEIVED",
                          "quantity": 1, "toWarehouse": null}})
        })
        .collect();
    let sent = peer.produce(&requests).await;
    let events: Vec<_> = products
        .iter()
        .map(|p| movement(p, MovementAction::Received, 1))
        .collect();
    let ours = kafka
        .publisher("inventory-service")
        .unwrap()
        .publish_all(&events)
        .await
        .unwrap();
    let kotlin: Vec<i32> = sent.iter().map(|s| as_i32(&s["partition"])).collect();
    let rust: Vec<i32> = ours.iter().map(|d| d.partition).collect();
    assert_eq!(
        rust, kotlin,
        "each product on the partition Java's client picks"
    );
    assert!(
        kotlin.iter().any(|&p| p != kotlin[0]),
        "the keys spread over partitions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_dead_letters_are_read_by_springs_header_accessors() {
    let Some((kafka, _turn, peer)) = services("our_dead_letters_are_read_by_spring").await else {
        return;
    };
    let dead = our_dead_letter_read_by_spring(&kafka, &peer, &run_id()).await;
    assert_eq!(dead["topic"], "erp.inventory.movements.DLT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn springs_dead_letters_are_read_by_us() {
    let Some((kafka, _turn, peer)) = services("springs_dead_letters_are_read_by_us").await else {
        return;
    };
    let run = run_id();
    let group = format!("spring-search-sync-{run}");
    let dead = spring_dead_letter(&kafka, &peer, &run, &group, ".DLT").await;
    assert_eq!(dead.topic, "erp.inventory.movements.DLT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dash_dlt_suffix_of_spring_3_3_works_both_ways() {
    let Some((kafka, _turn, peer)) = services("the_dash_dlt_suffix").await else {
        return;
    };
    let catalog = with_dead_letter_suffix(erp_events::catalog!(), "-dlt");
    let dlt = "erp.inventory.movements-dlt";
    assert_eq!(catalog.dead_letter_topic(TOPIC), dlt);
    let kafka = Kafka::connect(
        &Brokers::External(kafka.bootstrap_servers().into()),
        &catalog,
    )
    .unwrap();
    let provisioned = kafka.provision(&catalog, 1).await.unwrap();
    assert!(
        provisioned
            .created
            .iter()
            .chain(&provisioned.existing)
            .any(|t| t == dlt),
        "{provisioned:?}"
    );

    // Spring's recoverer with its own default destination writes `-dlt`; we read it.
    let run = run_id();
    let dead = spring_dead_letter(
        &kafka,
        &peer,
        &run,
        &format!("spring-{run}"),
        "spring-default",
    )
    .await;
    assert_eq!(dead.topic, dlt);

    // Ours go there too, and Spring reads them.
    let read = our_dead_letter_read_by_spring(&kafka, &peer, &run).await;
    assert_eq!(read["topic"], dlt);
}

#[test]
fn the_dead_letter_topic_is_a_compile_time_constant_from_the_catalog() {
    let catalog = erp_events::catalog!();
    assert_eq!(
        InventoryMovement::DEAD_LETTER_TOPIC,
        "erp.inventory.movements.DLT"
    );
    assert_eq!(
        InventoryMovement::DEAD_LETTER_TOPIC,
        catalog.dead_letter_topic(InventoryMovement::TOPIC)
    );
}

/// Lets our listener give up on one envelope and returns its dead letter as the Spring peer
/// read it with `KafkaHeaders.DLT_*` accessors, after checking what those say.
async fn our_dead_letter_read_by_spring(kafka: &Kafka, peer: &SpringPeer, run: &str) -> Value {
    let running = App::new(kafka)
        .listener(search_sync.with_state(Received::new(run)))
        .start()
        .unwrap();
    let product = format!("{run}-X-fail");
    let delivery = kafka
        .publisher("inventory-service")
        .unwrap()
        .publish(&movement(&product, MovementAction::Shipped, 4))
        .await
        .unwrap();
    let key = product.clone();
    let original = read_records_where(kafka, TOPIC, 1, move |r| r.key() == Some(key.as_bytes()))
        .await
        .remove(0);
    let dead_letter_topic = kafka.dead_letter_topic(TOPIC);
    let mut spring = peer
        .start(&[
            ("peer.read-dlt", "true"),
            ("peer.dlt-topic", &dead_letter_topic),
            ("peer.group", &format!("spring-dlt-{run}")),
            // This dead letter only: the run may have dead-lettered others there already.
            ("peer.products", &product),
        ])
        .await;
    let dead = spring.wait_for("dead-letter", 1).await.remove(0);
    running.shutdown().await;
    assert_eq!(dead["key"], product.as_str());
    assert_eq!(
        dead["partition"], delivery.partition,
        "the original partition"
    );
    assert_eq!(dead["originalTopic"], TOPIC);
    assert_eq!(dead["originalPartition"], delivery.partition);
    assert_eq!(dead["originalOffset"], delivery.offset);
    assert_eq!(
        dead["originalTimestamp"],
        original.timestamp().to_millis().unwrap()
    );
    assert_eq!(dead["originalTimestampType"], "CreateTime");
    assert_eq!(dead["originalConsumerGroup"], "search-sync");
    // The handler's error type (here a message: `HandlerError::permanent(String)`).
    assert_eq!(dead["exceptionFqcn"], "alloc::string::String");
    assert!(
        dead["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains(&format!("search index rejected {product}")),
        "{dead}"
    );
    assert_eq!(
        dead["value"].as_str().map(str::as_bytes),
        original.payload(),
        "the original value, byte for byte"
    );
    dead
}

/// Lets the Spring peer (dead-letter suffix `suffix`, or its recoverer's default) give up on
/// one of our envelopes and returns its dead letter as we read it, after checking what it says.
async fn spring_dead_letter(
    kafka: &Kafka,
    peer: &SpringPeer,
    run: &str,
    group: &str,
    suffix: &str,
) -> DeadLetter {
    let mut spring = peer
        .start(&[
            ("peer.consume", "true"),
            ("peer.group", group),
            ("peer.products", run),
            ("peer.backoff-ms", "20"),
            ("peer.dlt-suffix", suffix),
            ("peer.start-at-end", "true"),
        ])
        .await;
    let product = format!("{run}-Y-fail");
    let delivery = kafka
        .publisher("inventory-service")
        .unwrap()
        .publish(&movement(&product, MovementAction::Shipped, 4))
        .await
        .unwrap();
    let failed = spring.wait_for("failed", 4).await;
    assert_eq!(
        failed.len(),
        4,
        "FixedBackOff(_, 3): the first attempt and 3 retries"
    );
    let key = product.clone();
    let dead = read_dead_letters_where(kafka, &kafka.dead_letter_topic(TOPIC), 1, move |d| {
        d.key_str() == Some(key.as_str())
    })
    .await
    .remove(0);
    assert_eq!(dead.key_str(), Some(product.as_str()));
    assert_eq!(dead.partition, delivery.partition, "the original partition");
    let info = &dead.info;
    assert_eq!(
        (
            info.original_topic.as_str(),
            info.original_partition,
            info.original_offset
        ),
        (TOPIC, delivery.partition, delivery.offset)
    );
    assert_eq!(info.original_timestamp_type.as_deref(), Some("CreateTime"));
    assert_eq!(info.consumer_group, group);
    assert_eq!(
        info.error_type,
        "org.springframework.kafka.listener.ListenerExecutionFailedException"
    );
    assert_eq!(
        info.cause_type.as_deref(),
        Some("java.lang.IllegalStateException")
    );
    assert!(
        info.message
            .contains(&format!("search index rejected {product}"))
    );
    assert_eq!(info.attempts, None, "Spring's recoverer counts no attempts");
    let envelope =
        Envelope::<InventoryMovement>::decode_event(dead.value.as_deref().unwrap()).unwrap();
    assert_eq!(envelope.event_id, delivery.event_id, "the original value");
    dead
}

/// `catalog` with every topic's dead letters going to `<topic><suffix>`.
fn with_dead_letter_suffix(catalog: &Catalog, suffix: &str) -> Catalog {
    let path = catalog.dir().join("catalog.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    Catalog::parse(
        catalog.dir(),
        &format!("dead_letter_suffix = \"{suffix}\"\n{text}"),
    )
    .unwrap()
}

fn as_i32(value: &Value) -> i32 {
    value.as_i64().expect("a number") as i32
}

fn as_i64(value: &Value) -> i64 {
    value.as_i64().expect("a number")
}
