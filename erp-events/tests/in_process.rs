//! The in-process transport's promises, with no broker and no demo module: order per key,
//! backpressure on a slow listener, queued events handled at shutdown, dead letters in Spring's
//! headers, handlers that publish (to their own topic, or to each other) under full queues
//! without waiting on themselves, and publishing after shutdown as an error.

mod common;

use std::time::Duration;

use common::{AuditRecord, InventoryMovement, Seen, audit, movement, within_patience};
use erp_events::{
    App, AppError, Brokers, Config, Envelope, Event, HandlerError, InProcessError, InProcessTopics,
    ListenerExt, PublishError, Publisher, State, erp_listener,
};

#[erp_listener(group = "search-sync", retries = 0)]
async fn slow(
    event: Envelope<InventoryMovement>,
    State(seen): State<Seen>,
) -> Result<(), HandlerError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    seen.push(event.payload.quantity);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_at_shutdown_are_handled_in_order() {
    let app = App::in_process(erp_events::catalog!());
    let seen = Seen::default();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app.listener(slow.with_state(seen.clone())).start().unwrap();
    // One product, one partition: at most 512 queued and 64 in the worker's batch, so
    // publishing 1 500 waits for the slow handler.
    let events: Vec<_> = (0..1_500).map(movement).collect();
    let deliveries = publisher.publish_all(&events).await.unwrap();
    let offsets: Vec<i64> = deliveries.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..1_500).collect::<Vec<_>>());
    let handled_before_shutdown = seen.all().len();
    running.shutdown().await;
    assert_eq!(
        seen.all(),
        (0..1_500).collect::<Vec<_>>(),
        "every queued event handled before stopping, in order"
    );
    assert!(
        handled_before_shutdown >= 1_500 - 512 - 64,
        "publishing waited for the listener: only {handled_before_shutdown} handled"
    );
    assert!(
        handled_before_shutdown < 1_500,
        "events were still queued at shutdown"
    );
}

#[erp_listener(group = "analytics", retries = 2, backoff(initial_ms = 1))]
async fn failing(
    event: Envelope<InventoryMovement>,
    State(seen): State<Seen>,
) -> Result<(), HandlerError> {
    seen.push(event.payload.quantity);
    Err(HandlerError::retryable(format!(
        "simulated failure {}",
        seen.all().len()
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_event_is_dead_lettered_on_the_bus_with_springs_headers() {
    let app = App::in_process(erp_events::catalog!());
    let bus = app.in_process_bus().clone();
    let seen = Seen::default();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app
        .listener(failing.with_state(seen.clone()))
        .start()
        .unwrap();
    let delivery = publisher.publish(&movement(9)).await.unwrap();
    running
        .wait_until(|reports| reports[0].counts.dead_lettered == 1)
        .await;
    running.shutdown().await;
    let dead = bus.dead_letters(InventoryMovement::TOPIC);
    assert_eq!(dead.len(), 1);
    let info = erp_events::dlt::decode_dead_letter_headers(dead[0].headers()).unwrap();
    assert_eq!(
        (info.original_partition, info.original_offset, info.attempts),
        (delivery.partition, delivery.offset, Some(3))
    );
    assert_eq!(info.consumer_group, "analytics");
    assert_eq!(info.message, "simulated failure 3");
    assert_eq!(dead[0].key(), Some(&b"SKU-1"[..]));
    assert_eq!(seen.all(), [9, 9, 9]);
    let committed = bus.committed("analytics", InventoryMovement::TOPIC);
    assert_eq!(committed[&delivery.partition], delivery.offset + 1);
}

/// Events published from outside, per test: enough to fill a 512-record queue several times.
const FLOOD: i64 = 2_000;

/// The offset a follow-up published by a handler gets added to its cause's number.
const FOLLOW_UP: i64 = 1_000_000;

#[erp_listener(group = "search-sync", retries = 0, concurrency = 1)]
async fn republishing(
    event: Envelope<InventoryMovement>,
    State((publisher, seen)): State<(Publisher, Seen)>,
) -> Result<(), HandlerError> {
    let quantity = event.payload.quantity;
    seen.push(quantity);
    if quantity < FOLLOW_UP {
        publisher.publish(&movement(quantity + FOLLOW_UP)).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_publishing_to_its_own_full_topic_does_not_wait_on_itself() {
    let app = App::in_process(erp_events::catalog!());
    let publisher = app.publisher("inventory-service").unwrap();
    let seen = Seen::default();
    let running = app
        .listener(republishing.with_state((publisher.clone(), seen.clone())))
        .start()
        .unwrap();
    let events: Vec<_> = (0..FLOOD).map(movement).collect();
    within_patience("publishing", publisher.publish_all(&events))
        .await
        .unwrap();
    within_patience(
        "handling",
        running.wait_until(|reports| reports[0].counts.handled == 2 * FLOOD as u64),
    )
    .await;
    running.shutdown().await;
    let seen = seen.all();
    let originals: Vec<i64> = seen.iter().copied().filter(|q| *q < FOLLOW_UP).collect();
    assert_eq!(originals, (0..FLOOD).collect::<Vec<_>>(), "in order");
    assert_eq!(seen.len(), 2 * FLOOD as usize);
}

#[erp_listener(group = "search-sync", retries = 0, concurrency = 1)]
async fn movement_to_audit(
    event: Envelope<InventoryMovement>,
    State(publisher): State<Publisher>,
) -> Result<(), HandlerError> {
    if event.payload.quantity < FOLLOW_UP {
        publisher
            .publish(&audit(event.payload.quantity, true))
            .await?;
    }
    Ok(())
}

#[erp_listener(group = "audit", retries = 0, concurrency = 1)]
async fn audit_to_movement(
    event: Envelope<AuditRecord>,
    State(publisher): State<Publisher>,
) -> Result<(), HandlerError> {
    if event.payload.detail.is_none() {
        let sequence: i64 = event
            .payload
            .action
            .parse()
            .map_err(HandlerError::permanent)?;
        publisher.publish(&movement(sequence + FOLLOW_UP)).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_listeners_publishing_to_each_other_under_full_queues_do_not_deadlock() {
    let app = App::in_process(erp_events::catalog!());
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app
        .listener(movement_to_audit.with_state(publisher.clone()))
        .listener(audit_to_movement.with_state(publisher.clone()))
        .start()
        .unwrap();
    let movements: Vec<_> = (0..FLOOD).map(movement).collect();
    let audits: Vec<_> = (0..FLOOD).map(|i| audit(i, false)).collect();
    let (to_movements, to_audits) = within_patience(
        "publishing",
        futures_join(
            publisher.publish_all(&movements),
            publisher.publish_all(&audits),
        ),
    )
    .await;
    to_movements.unwrap();
    to_audits.unwrap();
    within_patience(
        "handling",
        running.wait_until(|reports| {
            reports
                .iter()
                .all(|report| report.counts.handled == 2 * FLOOD as u64)
        }),
    )
    .await;
    running.shutdown().await;
}

async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

#[tokio::test]
async fn publishing_with_no_listener_reaches_nobody_and_is_counted() {
    let app = App::in_process(erp_events::catalog!());
    let bus = app.in_process_bus().clone();
    let publisher = app.publisher("inventory-service").unwrap();
    publisher.publish(&movement(1)).await.unwrap();
    publisher.publish(&movement(2)).await.unwrap();
    assert_eq!(bus.unreceived(InventoryMovement::TOPIC), 2);
    assert_eq!(bus.unreceived(AuditRecord::TOPIC), 0);
}

/// `published` was refused because the bus has stopped.
fn assert_stopped<T: std::fmt::Debug>(published: Result<T, PublishError>) {
    let error = published.unwrap_err();
    assert!(
        matches!(
            error,
            PublishError::InProcess {
                source: InProcessError::Stopped,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn publishing_after_shutdown_is_an_error() {
    let app = App::in_process(erp_events::catalog!());
    let publisher = app.publisher("inventory-service").unwrap();
    let seen = Seen::default();
    let running = app.listener(slow.with_state(seen.clone())).start().unwrap();
    publisher.publish(&movement(1)).await.unwrap();
    running.shutdown().await;
    assert_stopped(publisher.publish(&movement(2)).await);
    assert_eq!(seen.all(), [1]);
}

#[tokio::test]
async fn a_failed_start_stops_the_groups_it_had_started() {
    // `analytics` (in process) starts first; `audit` (on Kafka) then fails on a bad property.
    let config = Config {
        brokers: Brokers::External("127.0.0.1:9".into()),
        in_process: InProcessTopics::Only([InventoryMovement::TOPIC.to_owned()].into()),
        ..Config::embedded()
    };
    let app = App::from_config(&config, erp_events::catalog!()).unwrap();
    let publisher = app.publisher("inventory-service").unwrap();
    let seen = Seen::default();
    let started = app
        .consumer_config("session.timeout.ms", "not a number")
        .listener(failing.with_state(seen.clone()))
        .listener(audit_to_movement.with_state(publisher.clone()))
        .start();
    assert!(
        matches!(started, Err(AppError::Kafka(_))),
        "{:?}",
        started.err()
    );
    assert_stopped(publisher.publish(&movement(1)).await);
    assert!(seen.all().is_empty(), "nothing runs after a failed start");
}

#[tokio::test]
async fn only_the_topics_producer_publishes_to_it() {
    let app = App::in_process(erp_events::catalog!());
    let publisher = app.publisher("sales-service").unwrap();
    let error = publisher.publish(&movement(1)).await.unwrap_err();
    assert!(
        matches!(
            &error,
            PublishError::NotTheProducer {
                topic: "erp.inventory.movements",
                producer: "inventory-service",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("app.publisher(\"inventory-service\")"),
        "{error}"
    );
    // `*` in the catalog: any service.
    publisher.publish(&audit(1, false)).await.unwrap();
}

/// The product whose handler waits for the gate (unless its quantity is negative).
const STUCK: &str = "SKU-STUCK";

/// Opened by the test; the stuck handler says when it is in.
#[derive(Clone, Default)]
struct Gate {
    entered: std::sync::Arc<tokio::sync::Notify>,
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

#[erp_listener(group = "search-sync", retries = 0, concurrency = 1)]
async fn one_at_a_time(
    event: Envelope<InventoryMovement>,
    State(gate): State<Gate>,
) -> Result<(), HandlerError> {
    if event.payload.product_id == STUCK && event.payload.quantity >= 0 {
        gate.entered.notify_one();
        let _ = gate.open.subscribe().wait_for(|open| *open).await;
    }
    Ok(())
}

fn of_product(product: &str, quantity: i64) -> InventoryMovement {
    InventoryMovement {
        product_id: product.into(),
        ..movement(quantity)
    }
}

/// A worker waiting for a concurrency permit has taken one record from its partition's queue,
/// not a batch: what a worker takes no longer counts against the queue's bound (the Kafka
/// consumer's budget), so a batch taken before the permit would hold up to 64 records per
/// waiting partition outside it.
#[tokio::test(flavor = "current_thread")]
async fn a_worker_waiting_for_its_turn_holds_one_record_outside_its_queue() {
    let app = App::in_process(erp_events::catalog!());
    let publisher = app.publisher("inventory-service").unwrap();
    let gate = Gate::default();
    let running = app
        .listener(one_at_a_time.with_state(gate.clone()))
        .start()
        .unwrap();
    // Probes (negative quantities, not held) find a product in another partition than STUCK's.
    let stuck_partition = publisher.publish(&of_product(STUCK, -1)).await.unwrap();
    let mut probes = 1;
    let mut other = None;
    for candidate in (0..100).map(|i| format!("SKU-{i}")) {
        let delivery = publisher
            .publish(&of_product(&candidate, -1))
            .await
            .unwrap();
        probes += 1;
        if delivery.partition != stuck_partition.partition {
            other = Some(candidate);
            break;
        }
    }
    let other = other.expect("a product in another partition");
    within_patience(
        "the probes",
        running.wait_until(|reports| reports[0].counts.handled == probes),
    )
    .await;
    // The stuck handler holds the listener's only permit.
    publisher.publish(&of_product(STUCK, 0)).await.unwrap();
    within_patience("the stuck handler", gate.entered.notified()).await;

    // The other partition's queue (512) fills, plus the one record its waiting worker took.
    within_patience("filling the queue", async {
        for quantity in 0..513 {
            let movement = of_product(&other, quantity);
            publisher.publish(&movement).await.unwrap();
        }
    })
    .await;
    let next = of_product(&other, 513);
    // Unconstrained: tokio's cooperative budget would make even a free queue look full.
    let next = tokio::task::unconstrained(publisher.send(&next));
    assert!(
        futures_util::FutureExt::now_or_never(next).is_none(),
        "the waiting worker took more than one record from its queue"
    );

    gate.open.send_replace(true);
    within_patience(
        "the rest",
        running.wait_until(|reports| reports[0].counts.handled == probes + 1 + 513),
    )
    .await;
    running.shutdown().await;
}
