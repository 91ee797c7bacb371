//! The in-process transport's own promises: order per key, backpressure on a slow listener,
//! queued events handled at shutdown, and dead letters in Spring's headers.

mod support;

use std::time::Duration;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, ListenerExt, State, erp_listener};
use support::Probe;

fn movement(product: &str, quantity: i64) -> InventoryMovement {
    InventoryMovement::new(product, "WH-1", MovementAction::Received, quantity)
}

#[erp_listener(group = "search-sync", retries = 0, concurrency = 4)]
async fn slow(
    event: Envelope<InventoryMovement>,
    State(probe): State<Probe>,
) -> Result<(), HandlerError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    probe.call(&event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_at_shutdown_are_handled_in_order() {
    let app = App::in_process(erp_events::catalog!());
    let probe = Probe::succeeding();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app
        .listener(slow.with_state(probe.clone()))
        .start()
        .unwrap();
    // One product, one partition: at most 512 queued and 256 in the worker's batch, so
    // publishing 1 500 waits for the slow handler.
    let events: Vec<_> = (0..1_500).map(|i| movement("SKU-1", i)).collect();
    let deliveries = publisher.publish_all(&events).await.unwrap();
    let offsets: Vec<i64> = deliveries.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..1_500).collect::<Vec<_>>());
    let handled_before_shutdown = probe.calls().len();
    running.shutdown().await;
    let quantities: Vec<i64> = probe.calls().iter().map(|c| c.quantity).collect();
    assert_eq!(
        quantities,
        (0..1_500).collect::<Vec<_>>(),
        "every queued event handled before stopping, in order"
    );
    assert!(
        handled_before_shutdown >= 1_500 - 512 - 256,
        "publishing waited for the listener: only {handled_before_shutdown} handled"
    );
    assert!(
        handled_before_shutdown < 1_500,
        "events were still queued at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_event_is_dead_lettered_on_the_bus_with_springs_headers() {
    #[erp_listener(group = "analytics", retries = 2, backoff(initial_ms = 1))]
    async fn failing(
        event: Envelope<InventoryMovement>,
        State(probe): State<Probe>,
    ) -> Result<(), HandlerError> {
        probe.call(&event)
    }
    let app = App::in_process(erp_events::catalog!());
    let bus = app.in_process_bus().clone();
    let probe = Probe::always_failing();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app
        .listener(failing.with_state(probe.clone()))
        .start()
        .unwrap();
    let delivery = publisher.publish(&movement("SKU-9", 1)).await.unwrap();
    running
        .wait_until(|reports| reports[0].counts.dead_lettered == 1)
        .await;
    running.shutdown().await;
    let dead = bus.dead_letters("erp.inventory.movements");
    assert_eq!(dead.len(), 1);
    let info = erp_events::dlt::decode_dead_letter_headers(dead[0].headers()).unwrap();
    assert_eq!(
        (info.original_partition, info.original_offset, info.attempts),
        (delivery.partition, delivery.offset, Some(3))
    );
    assert_eq!(info.consumer_group, "analytics");
    assert_eq!(info.message, "simulated failure 3");
    assert_eq!(dead[0].key(), Some(&b"SKU-9"[..]));
    assert_eq!(probe.calls().len(), 3);
    let committed = bus.committed("analytics", "erp.inventory.movements");
    assert_eq!(committed[&delivery.partition], delivery.offset + 1);
}
