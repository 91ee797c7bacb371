//! What happens around a handler, on any transport (run here in process): an attempt past the
//! listener's `timeout_ms` is a failed attempt, retried and then dead-lettered with its reason,
//! and the records after it go on (a panic too: the root package's `tests/containment.rs`).

mod common;

use common::{InventoryMovement, Seen, movement, within_patience};
use erp_events::dlt::decode_dead_letter_headers;
use erp_events::{App, Envelope, Event, HandlerError, ListenerExt, State, erp_listener};

#[erp_listener(
    group = "search-sync",
    retries = 1,
    backoff(initial_ms = 1),
    timeout_ms = 100
)]
async fn hangs_on_the_second(
    event: Envelope<InventoryMovement>,
    State(seen): State<Seen>,
) -> Result<(), HandlerError> {
    seen.push(event.payload.quantity);
    if event.payload.quantity == 2 {
        std::future::pending::<()>().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_past_its_timeout_has_failed_and_the_partition_goes_on() {
    let app = App::in_process(erp_events::catalog!());
    let bus = app.in_process_bus().clone();
    let publisher = app.publisher("inventory-service").unwrap();
    let seen = Seen::default();
    let running = app
        .listener(hangs_on_the_second.with_state(seen.clone()))
        .start()
        .unwrap();
    let events: Vec<_> = (1..=3).map(movement).collect();
    let deliveries = publisher.publish_all(&events).await.unwrap();
    within_patience(
        "handling",
        running.wait_until(|reports| {
            let counts = &reports[0].counts;
            counts.handled == 2 && counts.dead_lettered == 1
        }),
    )
    .await;
    running.shutdown().await;
    assert_eq!(
        seen.all(),
        [1, 2, 2, 3],
        "two attempts of the 2nd, then the 3rd"
    );
    let dead = bus.dead_letters(InventoryMovement::TOPIC);
    let info = decode_dead_letter_headers(dead[0].headers()).unwrap();
    assert_eq!(info.original_offset, deliveries[1].offset);
    assert_eq!(info.error_type, "erp_events::TimedOut");
    assert_eq!(info.message, "the handler ran past its timeout of 100ms");
    assert_eq!(info.attempts, Some(2));
}

#[erp_listener(group = "search-sync", retries = 0)]
async fn fails_with_anyhow(_event: Envelope<InventoryMovement>) -> anyhow::Result<()> {
    anyhow::bail!("the index is read-only")
}

#[erp_listener(group = "analytics", retries = 0)]
async fn fails_with_a_boxed_error(
    _event: Envelope<InventoryMovement>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err("the warehouse is unknown".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyhow_and_boxed_errors_are_failed_attempts_with_their_message() {
    let app = App::in_process(erp_events::catalog!());
    let bus = app.in_process_bus().clone();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app
        .listener(fails_with_anyhow)
        .listener(fails_with_a_boxed_error)
        .start()
        .unwrap();
    publisher.publish(&movement(1)).await.unwrap();
    within_patience(
        "dead-lettering",
        running.wait_until(|reports| reports.iter().all(|r| r.counts.dead_lettered == 1)),
    )
    .await;
    running.shutdown().await;
    let mut reasons: Vec<(String, String)> = bus
        .dead_letters(InventoryMovement::TOPIC)
        .iter()
        .map(|dead| {
            let info = decode_dead_letter_headers(dead.headers()).unwrap();
            (info.consumer_group, info.message)
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            (
                "analytics".to_owned(),
                "the warehouse is unknown".to_owned()
            ),
            (
                "search-sync".to_owned(),
                "the index is read-only".to_owned()
            ),
        ]
    );
}
