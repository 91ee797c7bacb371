//! The health endpoint as an operator meets it: `/metrics` counts what the listeners counted,
//! `/health/ready` turns red for a hung handler or an unreachable Redis and back, and
//! `/health/live` for a dead worker; a taken port is an error at start.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{
    App, AppError, Envelope, HandlerError, HealthError, ListenerExt, Publisher, RedisStore,
    Running, State, erp_listener,
};
use support::services::RedisServer;
use support::{PATIENCE, kafka, read_records};
use tokio::sync::Notify;

const TOPIC: &str = "erp.inventory.movements";

/// Fails the first attempt of quantity 2 (retried), refuses quantity 3 (dead-lettered).
#[erp_listener(group = "search-sync", retries = 1, backoff(initial_ms = 1))]
async fn picky(event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    match event.payload.quantity {
        2 if !FAILED_ONCE.swap(true, Ordering::Relaxed) => {
            Err(HandlerError::retryable("index busy"))
        }
        3 => Err(HandlerError::permanent("no such product")),
        _ => Ok(()),
    }
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

fn movement(quantity: i64, warehouse: &str) -> InventoryMovement {
    InventoryMovement::new("SKU-O", warehouse, MovementAction::Received, quantity)
}

/// `GET path` on the endpoint: the status code and the body.
async fn get(address: SocketAddr, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || erp_demo::erp::http_get(address, path))
        .await
        .unwrap()
        .unwrap()
}

/// Probes `path` until it answers `status`; fails after [`PATIENCE`] with the last answer.
async fn until_probe(address: SocketAddr, path: &'static str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (answered, body) = get(address, path).await;
        if answered == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} still answers {answered}: {body}"
        );
        // A probe's answer changes with time, not on an event the test could await.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the series `name` whose labels include `labels`, from `/metrics`' text.
fn value(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    let found: Vec<f64> = metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one series {name} {labels:?} in:\n{metrics}"
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_what_the_listeners_counted() {
    let kafka = kafka();
    let app = App::new(&kafka).health_endpoint("127.0.0.1:0");
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app.listener(picky).start().unwrap();
    let address = running.health_address().unwrap();
    let events = [
        movement(1, "WH-1"),
        movement(2, "WH-1"),
        movement(3, "WH-1"),
    ];
    publisher.publish_all(&events).await.unwrap();
    // The first event again, as a replay would send it: a duplicate.
    let first = read_records(&kafka, TOPIC, 1).await;
    let value_bytes = rdkafka::Message::payload(&first[0]).unwrap();
    let envelope = Envelope::<InventoryMovement>::decode(value_bytes).unwrap();
    publisher.publish_envelope(&envelope).await.unwrap();
    let finished = running.wait_until(|reports| reports[0].counts.finished() == 4);
    tokio::time::timeout(PATIENCE, finished).await.unwrap();

    let counts = running.reports()[0].counts;
    assert_eq!(
        (
            counts.handled,
            counts.retries,
            counts.dead_lettered,
            counts.duplicates
        ),
        (2, 1, 1, 1)
    );
    let (status, metrics) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    let ours = [
        "messaging_consumer_group_name=\"search-sync\"",
        "messaging_destination_name=\"erp.inventory.movements\"",
    ];
    let series = |name| value(&metrics, name, &ours) as u64;
    assert_eq!(series("erp_events_records_handled_total"), counts.handled);
    assert_eq!(series("erp_events_retries_total"), counts.retries);
    assert_eq!(
        series("erp_events_records_dead_lettered_total"),
        counts.dead_lettered
    );
    assert_eq!(
        series("erp_events_records_duplicate_total"),
        counts.duplicates
    );
    assert_eq!(series("erp_events_stalls_total"), counts.stalls);
    assert_eq!(series("messaging_client_consumed_messages_total"), 4);
    // Attempts: quantity 1, the retried 2 twice, 3 once (the duplicate runs nothing).
    let attempts = |error: &str| {
        let mut labels = ours.to_vec();
        labels.push(error);
        metrics
            .lines()
            .filter(|l| l.starts_with("messaging_process_duration_seconds_count{"))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    assert_eq!(attempts(""), 4, "{metrics}");
    assert_eq!(attempts("error_type="), 2, "{metrics}");
    let sent = value(
        &metrics,
        "messaging_client_sent_messages_total",
        &["messaging_destination_name=\"erp.inventory.movements\""],
    );
    assert_eq!(sent, 4.0);
    assert_eq!(get(address, "/health/live").await, (200, "ok\n".to_owned()));
    assert_eq!(get(address, "/health/ready").await.0, 200);
    running.shutdown().await;
}

/// Hangs on quantity 9 until its state is notified.
#[erp_listener(group = "search-sync", retries = 0)]
async fn hangs(
    event: Envelope<InventoryMovement>,
    State(release): State<Arc<Notify>>,
) -> Result<(), HandlerError> {
    if event.payload.quantity == 9 {
        release.notified().await;
    }
    Ok(())
}

/// Starts `app` with [`hangs`]: its publisher, the handler's release, and where it is probed.
fn start_hanging(app: App) -> (Publisher, Arc<Notify>, Running, SocketAddr) {
    let publisher = app.publisher("inventory-service").unwrap();
    let release = Arc::new(Notify::new());
    let running = app
        .listener(hangs.with_state(release.clone()))
        .start()
        .unwrap();
    let address = running.health_address().unwrap();
    (publisher, release, running, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_makes_the_application_not_ready_until_it_returns() {
    let kafka = kafka();
    let app = App::new(&kafka)
        .health_endpoint("127.0.0.1:0")
        .hung_handler_after(Duration::from_millis(300));
    let (publisher, release, running, address) = start_hanging(app);
    until_probe(address, "/health/ready", 200).await;
    publisher.publish(&movement(9, "WH-1")).await.unwrap();
    let problem = until_probe(address, "/health/ready", 503).await;
    assert!(
        problem.contains("listener `hangs`: a handler has been running for"),
        "{problem}"
    );
    assert_eq!(get(address, "/health/live").await.0, 200, "alive all along");
    release.notify_one();
    until_probe(address, "/health/ready", 200).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_of_a_partition_behind_a_hung_handler_is_scraped() {
    let kafka = kafka();
    let app = App::new(&kafka)
        .consumer_config("statistics.interval.ms", "100")
        .consumer_config("auto.commit.interval.ms", "100")
        .health_endpoint("127.0.0.1:0");
    let (publisher, release, running, address) = start_hanging(app);
    // One product, so one partition: 3 handled, then one that hangs with 2 behind it.
    let handled = publisher
        .publish_all(&[
            movement(1, "WH-L"),
            movement(2, "WH-L"),
            movement(3, "WH-L"),
        ])
        .await
        .unwrap();
    let finished = running.wait_until(|reports| reports[0].counts.handled == 3);
    tokio::time::timeout(PATIENCE, finished).await.unwrap();
    publisher
        .publish_all(&[
            movement(9, "WH-L"),
            movement(4, "WH-L"),
            movement(5, "WH-L"),
        ])
        .await
        .unwrap();
    let partition = handled[0].partition;
    let series = format!(
        "messaging_kafka_consumer_lag{{messaging_consumer_group_name=\"search-sync\",messaging_destination_name=\"{TOPIC}\",messaging_destination_partition_id=\"{partition}\"}} 3"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, metrics) = get(address, "/metrics").await;
        if metrics.lines().any(|line| line == series) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {series} in:\n{metrics}"
        );
        // librdkafka's statistics come on their interval, not on an event the test can await.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    release.notify_one();
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_makes_the_application_not_alive() {
    let kafka = kafka();
    let app = App::new(&kafka).health_endpoint("127.0.0.1:0");
    let (publisher, _, running, address) = start_hanging(app);
    until_probe(address, "/health/ready", 200).await;
    let product = format!("{}:probe", erp_events::test_util::KILL_WORKER_MARKER);
    let killer = InventoryMovement::new(&product, "WH-1", MovementAction::Received, 1);
    publisher.publish(&killer).await.unwrap();
    let problem = until_probe(address, "/health/live", 503).await;
    assert!(
        problem.contains("group `search-sync`'s consumer stopped"),
        "{problem}"
    );
    assert_eq!(get(address, "/health/ready").await.0, 503);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_turns_readiness_red_and_back() {
    let Some(mut redis) = RedisServer::start("a_stopped_redis_turns_readiness_red_and_back") else {
        return;
    };
    let kafka = kafka();
    let app = App::new(&kafka)
        .idempotency_store(RedisStore::new(&redis.url()).unwrap())
        .health_endpoint("127.0.0.1:0");
    let (_, _, running, address) = start_hanging(app);
    until_probe(address, "/health/ready", 200).await;
    redis.stop();
    let problem = until_probe(address, "/health/ready", 503).await;
    assert!(problem.contains("the idempotency store"), "{problem}");
    redis.restart();
    until_probe(address, "/health/ready", 200).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_an_error_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let started = App::new(&kafka())
        .health_endpoint(&address.to_string())
        .listener(hangs.with_state(Arc::default()))
        .start();
    match started {
        Err(AppError::Health(HealthError::Bind { address: named, .. })) => {
            assert_eq!(named, address)
        }
        Err(other) => panic!("not the port's error: {other}"),
        Ok(_) => panic!("started on a taken port"),
    }
    let unparsable = App::new(&kafka()).health_endpoint("localhost").start();
    assert!(matches!(
        unparsable,
        Err(AppError::Health(HealthError::Address { .. }))
    ));
}
