//! Failure containment: what goes wrong inside a handler stays a failed attempt of one record;
//! the partition, its worker and the records after it go on. On the embedded broker and in
//! process alike.

mod support;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, ListenerReport, Running, erp_listener};
use support::{PATIENCE, dead_letter_info, kafka, read_records};

const TOPIC: &str = "erp.inventory.movements";

/// Panics on the movement of quantity 2, handles the others.
#[erp_listener(group = "search-sync", retries = 0)]
async fn panics_on_the_second(event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    if event.payload.quantity == 2 {
        panic!("index corrupted by {}", event.payload.product_id);
    }
    Ok(())
}

fn four_movements_of_one_product() -> Vec<InventoryMovement> {
    (1..=4)
        .map(|i| InventoryMovement::new("SKU-P", "WH-1", MovementAction::Received, i))
        .collect()
}

/// Waits until the listener handled 3 and dead-lettered 1, failing after [`PATIENCE`].
async fn three_handled_one_dead_lettered(running: &Running) -> Vec<ListenerReport> {
    let done = |reports: &[ListenerReport]| {
        let counts = &reports[0].counts;
        counts.handled == 3 && counts.dead_lettered == 1
    };
    let waited = tokio::time::timeout(PATIENCE, running.wait_until(done)).await;
    assert!(
        waited.is_ok(),
        "after a panic, the next records are handled: {:?}",
        running.reports()
    );
    running.reports()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failed_attempt_and_the_partition_goes_on() {
    let kafka = kafka();
    let running = App::new(&kafka)
        .listener(panics_on_the_second)
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let deliveries = publisher
        .publish_all(&four_movements_of_one_product())
        .await
        .unwrap();
    three_handled_one_dead_lettered(&running).await;
    running.shutdown().await;
    let dead = read_records(&kafka, &kafka.dead_letter_topic(TOPIC), 1).await;
    let info = dead_letter_info(&dead[0]);
    assert_eq!(info.original_offset, deliveries[1].offset);
    assert_eq!(info.error_type, "erp_events::Panicked");
    assert_eq!(
        info.message,
        "the handler panicked: index corrupted by SKU-P"
    );
    assert_eq!(info.attempts, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_in_process_is_a_failed_attempt_too() {
    let app = App::in_process(erp_events::catalog!());
    let bus = app.in_process_bus().clone();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app.listener(panics_on_the_second).start().unwrap();
    publisher
        .publish_all(&four_movements_of_one_product())
        .await
        .unwrap();
    three_handled_one_dead_lettered(&running).await;
    running.shutdown().await;
    let dead = bus.dead_letters(TOPIC);
    let info = erp_events::dlt::decode_dead_letter_headers(dead[0].headers()).unwrap();
    assert_eq!(info.error_type, "erp_events::Panicked");
    assert!(info.message.contains("index corrupted by SKU-P"));
}
