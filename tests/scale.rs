//! A consumer's memory budget: a partition whose handler is stuck is paused, past its share,
//! once the consumer's budget is spent; the others go on, and once it moves again its records come in order,
//! each once.

mod support;

use std::sync::{Arc, Mutex};

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, ListenerExt, State, erp_listener};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::{PATIENCE, committed, envelope_json, kafka, partition_count, within};
use tokio::sync::{Notify, watch};

const TOPIC: &str = "erp.inventory.movements";
/// The product whose handler waits for the gate.
const STUCK: &str = "STUCK";

/// What the handler saw, and the gate that holds [`STUCK`]'s events.
#[derive(Clone)]
struct Seen {
    handled: Arc<Mutex<Vec<(String, i64)>>>,
    changed: Arc<Notify>,
    gate: Arc<watch::Sender<bool>>,
}

impl Seen {
    fn new() -> Self {
        Seen {
            handled: Arc::default(),
            changed: Arc::default(),
            gate: Arc::new(watch::Sender::new(false)),
        }
    }

    fn count(&self, product: &str) -> usize {
        let handled = self.handled.lock().unwrap();
        handled.iter().filter(|(p, _)| p == product).count()
    }

    async fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        within(PATIENCE, what, async {
            loop {
                let changed = self.changed.notified();
                if done(self) {
                    return;
                }
                changed.await;
            }
        })
        .await;
    }
}

#[erp_listener(group = "search-sync", idempotent = false)]
async fn gated(
    event: Envelope<InventoryMovement>,
    State(seen): State<Seen>,
) -> Result<(), HandlerError> {
    let movement = &event.payload;
    if movement.product_id == STUCK {
        let mut gate = seen.gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
    }
    let entry = (movement.product_id.clone(), movement.quantity);
    seen.handled.lock().unwrap().push(entry);
    seen.changed.notify_waiters();
    Ok(())
}

/// The value of `name` for the group in `/metrics`' text.
fn gauge(metrics: &str, name: &str) -> f64 {
    let line = metrics
        .lines()
        .find(|line| line.starts_with(&format!("{name}{{")) && line.contains("search-sync"))
        .unwrap_or_else(|| panic!("no {name} in {metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_partition_is_paused_at_its_share_and_the_others_go_on() {
    let kafka = kafka();
    let partitions = partition_count(&kafka, TOPIC);
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    let send = |partition: i32, product: &str, quantity: i64| {
        let movement = InventoryMovement::new(product, "WH-1", MovementAction::Received, quantity);
        let value = envelope_json(&uuid::Uuid::now_v7().to_string(), &movement);
        let record = FutureRecord::to(TOPIC)
            .partition(partition)
            .key(product)
            .payload(&value);
        producer.send_result(record).map_err(|(e, _)| e).unwrap()
    };
    // 600 envelopes (~180 KB) for the stuck partition, well past the 64 KiB budget, then 10
    // for each other partition.
    const STUCK_EVENTS: i64 = 600;
    let others: Vec<(i32, String)> = (1..partitions).map(|p| (p, format!("P-{p}"))).collect();
    let mut deliveries: Vec<_> = (1..=STUCK_EVENTS).map(|i| send(0, STUCK, i)).collect();
    for (partition, product) in &others {
        deliveries.extend((1..=10).map(|i| send(*partition, product, i)));
    }
    for delivery in deliveries {
        delivery.await.unwrap().unwrap();
    }

    let seen = Seen::new();
    let running = App::new(&kafka)
        .consumer_config("queued.max.messages.kbytes", "64")
        .health_endpoint("127.0.0.1:0")
        .listener(gated.with_state(seen.clone()))
        .start()
        .unwrap();
    seen.wait_until("every other partition's events, with one stuck", |seen| {
        others.iter().all(|(_, product)| seen.count(product) == 10)
    })
    .await;
    assert_eq!(seen.count(STUCK), 0, "the stuck handler has not returned");
    // The stuck partition's records keep coming until the consumer's budget is spent, then it
    // (past its share) is paused.
    let address = running.health_address().unwrap();
    let (held, paused) = within(PATIENCE, "the stuck partition paused", async {
        loop {
            let metrics = tokio::task::spawn_blocking(move || {
                erp_demo::erp::http_get(address, "/metrics").unwrap().1
            })
            .await
            .unwrap();
            let held = gauge(&metrics, "erp_events_consumer_buffered_bytes");
            let paused = gauge(&metrics, "erp_events_paused_partitions");
            if paused > 0.0 {
                return (held, paused);
            }
            // A gauge changes with no event the test could await.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    // Paused by the run of records that spent the budget: at most one run (64 envelopes of
    // about 300 bytes and their headers) past it, far from the stuck partition's 180 KB.
    assert!(
        held <= (64.0 + 24.0) * 1024.0,
        "the consumer holds {held} bytes, more than a run of records past its 64 KiB budget"
    );
    assert_eq!(paused, 1.0, "only the stuck partition is paused");

    seen.gate.send_replace(true);
    seen.wait_until("the stuck partition's events", |seen| {
        seen.count(STUCK) >= STUCK_EVENTS as usize
    })
    .await;
    let stuck: Vec<i64> = seen
        .handled
        .lock()
        .unwrap()
        .iter()
        .filter(|(product, _)| product == STUCK)
        .map(|(_, quantity)| *quantity)
        .collect();
    let expected: Vec<i64> = (1..=STUCK_EVENTS).collect();
    assert_eq!(stuck, expected, "in order, each once, after the pause");
    running.shutdown().await;
    assert_eq!(
        committed(&kafka, "search-sync", TOPIC).get(&0),
        Some(&STUCK_EVENTS),
        "everything handled is committed"
    );
}
