//! Rebalances on Apache Kafka: a member joining takes partitions from one whose handlers are
//! busy. The revoked partitions' records in hand finish first and are committed, so the new
//! owner starts after them: no record handled twice, and never two members on one partition at
//! once. With the classic eager protocol, with cooperative-sticky assignment, and with Kafka 4's
//! `group.protocol=consumer`.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, ListenerExt, State, erp_listener};
use support::PATIENCE;
use support::services::external_kafka;
use tokio::time::Instant;

/// One run of the handler.
#[derive(Debug, Clone)]
struct Run {
    #[allow(dead_code)] // shown when an assertion fails
    member: &'static str,
    product: String,
    quantity: i64,
    start: Instant,
    end: Instant,
}

/// Every run of this test's handlers, whichever member ran them.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<Run>>>);

impl Runs {
    fn all(&self) -> Vec<Run> {
        self.0.lock().unwrap().clone()
    }
}

/// Takes 100 ms per record of this run (`prefix`); others (earlier tests' records on the shared
/// broker) are passed over.
#[erp_listener(group = "analytics", retries = 0, idempotent = false)]
async fn busy(
    event: Envelope<InventoryMovement>,
    State((member, prefix, runs)): State<(&'static str, String, Runs)>,
) -> Result<(), HandlerError> {
    if !event.payload.product_id.starts_with(&prefix) {
        return Ok(());
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    runs.0.lock().unwrap().push(Run {
        member,
        product: event.payload.product_id.clone(),
        quantity: event.payload.quantity,
        start,
        end: Instant::now(),
    });
    Ok(())
}

/// Records of one run: 6 partitions, 100 ms each, so about 8 s of work.
const RECORDS: i64 = 480;

/// [`RECORDS`] records over 24 products (so over every partition), a member that starts alone,
/// and a second that joins while the first is busy.
async fn a_joining_member_never_overlaps_the_one_it_relieves(
    test: &str,
    properties: &[(&str, &str)],
) {
    let Some((kafka, _turn)) = external_kafka(test).await else {
        return;
    };
    let prefix = format!("{test}-{}-", uuid::Uuid::new_v4().simple());
    let runs = Runs::default();
    let member = |name: &'static str| {
        let app = properties
            .iter()
            .fold(App::new(&kafka), |app, (key, value)| {
                app.consumer_config(key, value)
            });
        app.listener(busy.with_state((name, prefix.clone(), runs.clone())))
            .start()
            .unwrap()
    };
    let movements: Vec<InventoryMovement> = (0..RECORDS)
        .map(|i| {
            let product = format!("{prefix}{}", i % 24);
            InventoryMovement::new(&product, "WH-1", MovementAction::Received, i)
        })
        .collect();
    let deliveries = kafka
        .publisher("inventory-service")
        .unwrap()
        .publish_all(&movements)
        .await
        .unwrap();
    let partition_of: HashMap<i64, i32> = movements
        .iter()
        .zip(&deliveries)
        .map(|(movement, delivery)| (movement.quantity, delivery.partition))
        .collect();
    let first = member("first");
    let started = async {
        while runs.all().len() < 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, started)
        .await
        .expect("the first member handles records");
    let second = member("second");
    let all_handled = async {
        loop {
            let mut handled: Vec<i64> = runs.all().iter().map(|run| run.quantity).collect();
            handled.sort_unstable();
            handled.dedup();
            if handled.len() == RECORDS as usize {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, all_handled)
        .await
        .expect("all handled");
    let by_second = second.shutdown().await[0].counts.handled;
    first.shutdown().await;
    let runs = runs.all();
    let mut times: BTreeMap<i64, u32> = BTreeMap::new();
    for run in &runs {
        *times.entry(run.quantity).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "handled more than once (quantity, times): {twice:?}"
    );
    let mut by_partition: BTreeMap<i32, Vec<&Run>> = BTreeMap::new();
    for run in &runs {
        by_partition
            .entry(partition_of[&run.quantity])
            .or_default()
            .push(run);
    }
    for (partition, runs) in &mut by_partition {
        runs.sort_by_key(|run| run.start);
        for pair in runs.windows(2) {
            assert!(
                pair[1].start >= pair[0].end,
                "partition {partition}: {:?} started before {:?} ended",
                pair[1],
                pair[0]
            );
        }
        let products: Vec<&str> = runs.iter().map(|run| run.product.as_str()).collect();
        for product in &products {
            let order: Vec<i64> = runs
                .iter()
                .filter(|run| run.product == *product)
                .map(|run| run.quantity)
                .collect();
            assert!(order.is_sorted(), "{product} in order: {order:?}");
        }
    }
    assert!(by_second > 0, "the second member was given partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_eager_protocol() {
    a_joining_member_never_overlaps_the_one_it_relieves("rebalance-eager", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cooperative_sticky_assignment() {
    a_joining_member_never_overlaps_the_one_it_relieves(
        "rebalance-cooperative",
        &[("partition.assignment.strategy", "cooperative-sticky")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_kafka_4s_consumer_protocol() {
    a_joining_member_never_overlaps_the_one_it_relieves(
        "rebalance-kip848",
        &[("group.protocol", "consumer")],
    )
    .await;
}
