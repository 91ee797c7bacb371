//! What happens when things break: a consumer process killed with SIGKILL mid-stream, the broker
//! going away and coming back, Redis going away and coming back. Nothing may be lost; what may
//! be repeated is counted.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use erp_demo::apache_kafka::ApacheKafka;
use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::idempotency::idempotency_key;
use erp_events::{
    App, Brokers, Envelope, HandlerError, Kafka, ListenerExt, PublishError, RedisStore, State,
    erp_listener,
};
use support::services::{RedisServer, external_brokers, external_or_embedded_kafka, redis_url};
use support::{PATIENCE, Probe, committed, kafka, probed_once};

const TOPIC: &str = "erp.inventory.movements";

fn movement(product: &str, quantity: i64) -> InventoryMovement {
    InventoryMovement::new(product, "WH-1", MovementAction::Received, quantity)
}

/// Polls `condition` (a store with no change notification) until it holds, failing after
/// `limit`.
async fn poll_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Signals

/// Sends `signal` (`-INT`, `-TERM`) to `process`.
fn signal(process: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &process.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {signal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_without_waiting_for_the_handler_in_progress() {
    let Some(redis) = redis_url("a_second_signal_stops_at_once") else {
        return;
    };
    let (kafka, _turn) = external_or_embedded_kafka().await;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let effects = format!("erp:test:effects:{run}");
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_effect-counter"))
        .env("KAFKA_BROKERS", kafka.bootstrap_servers())
        .env("REDIS_URL", &redis)
        .env("EFFECTS_KEY", &effects)
        .env("EFFECT_PRODUCTS", &run)
        // Longer than the shutdown timeout (30 s): a graceful stop gives up on it only then.
        .env("EFFECT_HOLD_MS", "600000")
        .env_remove("ERP_IN_PROCESS_TOPICS")
        // Its store is REDIS_URL's server, not the cluster the suite may also have.
        .env_remove("ERP_REDIS_CLUSTER_NODES")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the effect-counter consumer");
    let log = std::io::BufReader::new(consumer.stderr.take().unwrap());
    let (lines, mut logged) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in log.lines().map_while(Result::ok) {
            eprintln!("effect-counter: {line}");
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut wait_for = async |text: &str| {
        let found = async {
            while let Some(line) = logged.recv().await {
                if line.contains(text) {
                    return;
                }
            }
            panic!("the consumer ended before logging `{text}`");
        };
        tokio::time::timeout(PATIENCE, found)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for the consumer to log `{text}`"));
    };
    wait_for("partitions assigned").await;
    let publisher = kafka.publisher("inventory-service").unwrap();
    publisher
        .publish(&movement(&format!("{run}-SKU-1"), 1))
        .await
        .unwrap();
    let mut connection = redis::Client::open(redis.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    poll_until("the handler's effect", PATIENCE, || {
        redis::cmd("HLEN")
            .arg(&effects)
            .query::<usize>(&mut connection)
            .unwrap()
            == 1
    })
    .await;
    signal(&consumer, "-INT");
    wait_for("shutdown signal received").await;
    let second = Instant::now();
    signal(&consumer, "-INT");
    let status = tokio::task::spawn_blocking(move || consumer.wait().expect("reap the consumer"))
        .await
        .unwrap();
    wait_for("second shutdown signal").await;
    assert!(
        !status.success(),
        "an interrupted shutdown is an error: {status}"
    );
    assert!(
        second.elapsed() < Duration::from_secs(20),
        "the second signal stopped it at once, not after the shutdown timeout ({:?})",
        second.elapsed()
    );
    let _: () = redis::cmd("DEL")
        .arg(&effects)
        .query(&mut connection)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// SIGKILL

const CRASH_EVENTS: usize = 50_000;

/// What a crash run left behind.
#[derive(Debug)]
struct CrashRun {
    /// How many events had their effect when each kill came.
    killed_at: Vec<usize>,
    /// Events whose effect never happened.
    missing: usize,
    /// Effects that happened more than once (the extra ones).
    repeated: i64,
}

/// How the `effect-counter` consumer applies its effect (`plain` or `atomic`) and confirms
/// (`EFFECT_CONFIRM`: `each-record` or `in-groups`).
#[derive(Clone, Copy)]
struct Mode {
    effect: &'static str,
    confirm: &'static str,
}

/// Starts the `effect-counter` consumer process against `kafka` and `redis`.
fn start_consumer(kafka: &Kafka, redis: &str, effects: &str, mode: Mode, run: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_effect-counter"))
        .env("KAFKA_BROKERS", kafka.bootstrap_servers())
        .env("REDIS_URL", redis)
        .env("EFFECTS_KEY", effects)
        .env("EFFECT_MODE", mode.effect)
        .env("EFFECT_CONFIRM", mode.confirm)
        .env("EFFECT_PRODUCTS", run)
        .env_remove("ERP_IN_PROCESS_TOPICS")
        // Its store is REDIS_URL's server, not the cluster the suite may also have.
        .env_remove("ERP_REDIS_CLUSTER_NODES")
        .spawn()
        .expect("start the effect-counter consumer")
}

/// Publishes [`CRASH_EVENTS`] events, kills the consumer with SIGKILL at three random points,
/// restarting it each time, lets the last one finish, and counts each event's effect, checking
/// that each kill came mid-stream and that no event was lost (`None` without Redis for
/// `test`). On the real broker when there is one (each restart resumes from offsets committed
/// mid-batch), else on the embedded one.
async fn kill_three_times(test: &str, mode: Mode) -> Option<CrashRun> {
    let url = redis_url(test)?;
    let redis = url.as_str();
    let (kafka, _turn) = external_or_embedded_kafka().await;
    let kafka = &kafka;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let effects = format!("erp:test:effects:{run}");
    let events: Vec<_> = (0..CRASH_EVENTS)
        .map(|i| movement(&format!("{run}-SKU-{}", i % 1_000), i as i64))
        .collect();
    let publisher = kafka.publisher("inventory-service").unwrap();
    publisher.publish_all(&events).await.unwrap();
    let end = support::end_offsets(kafka, TOPIC);
    let mut connection = redis::Client::open(redis)
        .unwrap()
        .get_connection()
        .unwrap();
    let mut counted = || -> usize {
        redis::cmd("HLEN")
            .arg(&effects)
            .query(&mut connection)
            .unwrap()
    };
    let mut killed_at = Vec::new();
    for round in 1..=3 {
        let mut consumer = start_consumer(kafka, redis, &effects, mode, &run);
        let random = (uuid::Uuid::new_v4().as_u128() % (CRASH_EVENTS as u128 / 8)) as usize;
        let target = round * CRASH_EVENTS / 4 + random;
        poll_until("effects before the kill", PATIENCE * 4, || {
            counted() >= target
        })
        .await;
        consumer.kill().expect("SIGKILL");
        consumer.wait().expect("reap the killed consumer");
        killed_at.push(counted());
    }
    let mut consumer = start_consumer(kafka, redis, &effects, mode, &run);
    poll_until("every event committed", PATIENCE * 4, || {
        let committed = committed(kafka, "search-sync", TOPIC);
        end.iter()
            .all(|(partition, end)| committed.get(partition).is_some_and(|c| c >= end))
    })
    .await;
    let terminated = Command::new("kill")
        .args(["-TERM", &consumer.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(terminated.success());
    assert!(
        consumer.wait().expect("the consumer stops").success(),
        "a clean shutdown"
    );
    let mut connection = redis::Client::open(redis)
        .unwrap()
        .get_connection()
        .unwrap();
    let counts: HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(&effects)
        .query(&mut connection)
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&effects)
        .query(&mut connection)
        .unwrap();
    let run = CrashRun {
        killed_at,
        missing: CRASH_EVENTS - counts.len(),
        repeated: counts.values().map(|count| count - 1).sum(),
    };
    println!(
        "{} effects, confirmed {}: {run:?}",
        mode.effect, mode.confirm
    );
    assert!(
        run.killed_at.iter().all(|&count| count < CRASH_EVENTS),
        "killed mid-stream: {run:?}"
    );
    assert_eq!(run.missing, 0, "no event lost: {run:?}");
    Some(run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_three_times_loses_nothing_and_repeats_only_what_was_in_flight() {
    let mode = Mode {
        effect: "plain",
        confirm: "each-record",
    };
    let Some(run) = kill_three_times("a_consumer_killed_three_times_loses_nothing", mode).await
    else {
        return;
    };
    // A repeat needs a kill between an effect and its `done` marker, which is written before
    // the partition's next record is handled: at most the records in flight at each of the 3
    // kills, one per partition (6, within the listener's concurrency of 8).
    assert!(run.repeated <= 3 * 6, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_in_groups_a_kill_repeats_at_most_two_groups_per_partition() {
    let mode = Mode {
        effect: "plain",
        confirm: "in-groups",
    };
    let Some(run) = kill_three_times(
        "confirming_in_groups_a_kill_repeats_at_most_two_groups",
        mode,
    )
    .await
    else {
        return;
    };
    // At each of the 3 kills, per partition (6) the record being handled and at most 16 handled
    // ones whose markers are not written yet (two groups of 8), not batches of 64.
    assert!(run.repeated <= 3 * 6 * (1 + 16), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_effect_and_the_done_marker_in_one_transaction_nothing_repeats() {
    let mode = Mode {
        effect: "atomic",
        confirm: "in-groups",
    };
    let Some(run) = kill_three_times(
        "with_the_effect_and_the_done_marker_in_one_transaction",
        mode,
    )
    .await
    else {
        return;
    };
    assert_eq!(run.repeated, 0, "{run:?}");
}

// ---------------------------------------------------------------------------------------------
// Broker outage

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_and_consuming_survive_a_broker_outage() {
    let kafka = kafka();
    let broker = kafka.embedded().expect("the embedded broker");
    survive_an_outage(
        &kafka,
        || broker.broker_down(1).unwrap(),
        || broker.broker_up(1).unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_and_consuming_survive_an_apache_kafka_restart() {
    if external_brokers("publishing_and_consuming_survive_an_apache_kafka_restart").is_none() {
        return;
    }
    // A broker of this test's own, stopped and started again on its log dir.
    let broker = ApacheKafka::start("kafka-outage");
    let catalog = erp_events::catalog!();
    let kafka = Kafka::connect(&Brokers::External(broker.bootstrap()), catalog).unwrap();
    kafka.provision(catalog, 1).await.unwrap();
    survive_an_outage(&kafka, || broker.stop(), || broker.restart()).await;
}

/// Publishes and handles 100 events, takes the broker down (`down`), publishes 100 more
/// (waiting, and with an impatient publisher that says why it failed), brings it back (`up`),
/// and checks that every event was handled once and committed.
async fn survive_an_outage(kafka: &Kafka, down: impl FnOnce(), up: impl FnOnce()) {
    let probe = Probe::succeeding();
    let mut app = App::new(kafka);
    if kafka.embedded().is_some() {
        // The outage must not outlast the member's session (2.5 s on the embedded broker; a
        // loaded machine took 3.5 s): a member the group dropped meanwhile cannot commit what it
        // handled, and those records go to their next owner again (at-least-once, as in Java).
        app = app.consumer_config("session.timeout.ms", "10000");
    }
    let running = app
        .listener(probed_once.with_state(probe.clone()))
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let batch = |from: i64| -> Vec<InventoryMovement> {
        (from..from + 100)
            .map(|i| movement(&format!("SKU-{}", i % 10), i))
            .collect()
    };
    publisher.publish_all(&batch(0)).await.unwrap();
    probe.wait_for_calls(100).await;
    poll_until("the first 100 committed", PATIENCE, || {
        committed(kafka, "search-sync", TOPIC).values().sum::<i64>() == 100
    })
    .await;

    tokio::task::block_in_place(down);
    // The default publisher keeps its records until the broker is back...
    let pending = tokio::spawn({
        let publisher = publisher.clone();
        async move { publisher.publish_all(&batch(100)).await }
    });
    // ...and one that may wait only 1 s says why it failed, with a typed error.
    let impatient = kafka
        .publisher_with_config("inventory-service", &[("message.timeout.ms", "1000")])
        .unwrap();
    let error = impatient.publish(&movement("SKU-X", -1)).await.unwrap_err();
    assert!(matches!(&error, PublishError::TimedOut { .. }), "{error}");
    assert!(
        !pending.is_finished(),
        "nothing is acknowledged while the broker is down"
    );
    tokio::task::block_in_place(up);
    let deliveries = pending
        .await
        .unwrap()
        .expect("published once the broker is back");
    assert_eq!(deliveries.len(), 100);
    let calls = probe.wait_for_calls(200).await;
    running.shutdown().await;
    let mut quantities: Vec<i64> = calls.iter().map(|c| c.quantity).collect();
    quantities.sort_unstable();
    assert_eq!(
        quantities,
        (0..200).collect::<Vec<_>>(),
        "each event once, none lost"
    );
    let total: i64 = committed(kafka, "search-sync", TOPIC).values().sum();
    assert_eq!(total, 200);
}

// ---------------------------------------------------------------------------------------------
// Redis outage

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_pauses_processing_until_redis_is_back() {
    let Some(mut redis) =
        RedisServer::start("a_redis_outage_pauses_processing_until_redis_is_back")
    else {
        return;
    };
    // Its own Redis connection fails once after the restart (a broken pipe): a retry heals it.
    #[erp_listener(
        group = "search-sync",
        retries = 3,
        backoff(initial_ms = 10, max_ms = 100)
    )]
    async fn checked(
        event: Envelope<InventoryMovement>,
        State(check): State<ClaimCheck>,
    ) -> Result<(), HandlerError> {
        check.verify(&event).await?;
        check.probe.call(&event)
    }
    let kafka = kafka();
    let check = ClaimCheck::new(&redis.url());
    let running = App::new(&kafka)
        .idempotency_store(RedisStore::new(&redis.url()).unwrap())
        .listener(checked.with_state(check.clone()))
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let batch = |from: i64| -> Vec<InventoryMovement> {
        (from..from + 300)
            .map(|i| movement(&format!("SKU-{}", i % 12), i))
            .collect()
    };
    publisher.publish_all(&batch(0)).await.unwrap();
    check.probe.wait_for_calls(300).await;

    redis.stop();
    publisher.publish_all(&batch(300)).await.unwrap();
    // While Redis is down, nothing is handled, and nothing past the first 300 is committed: not
    // even all of those, when the last batch's `done` markers were not written before it went.
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(2) {
        let total: i64 = committed(&kafka, "search-sync", TOPIC).values().sum();
        assert!(total <= 300, "{total} committed while Redis is down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        check.probe.calls().len(),
        300,
        "no handler ran without the check"
    );

    redis.restart();
    let calls = check.probe.wait_for_calls(600).await;
    running.shutdown().await;
    let mut quantities: Vec<i64> = calls.iter().map(|c| c.quantity).collect();
    quantities.sort_unstable();
    assert_eq!(
        quantities,
        (0..600).collect::<Vec<_>>(),
        "each event handled once, none lost"
    );
    let total: i64 = committed(&kafka, "search-sync", TOPIC).values().sum();
    assert_eq!(total, 600);
    assert_eq!(
        check.unchecked.lock().unwrap().len(),
        0,
        "every handler ran under its claim"
    );
    println!(
        "outage: 300 handled before, 0 during ({:?} down), 300 after Redis came back",
        down_since.elapsed()
    );
}

/// Handler state that verifies, from inside the handler, that its event's claim is in Redis.
#[derive(Clone)]
struct ClaimCheck {
    connection: RedisStore,
    probe: Probe,
    unchecked: Arc<Mutex<Vec<uuid::Uuid>>>,
}

impl ClaimCheck {
    fn new(url: &str) -> Self {
        ClaimCheck {
            connection: RedisStore::new(url).unwrap(),
            probe: Probe::succeeding(),
            unchecked: Arc::new(Mutex::new(Vec::new())),
        }
    }

    async fn verify(&self, event: &Envelope<InventoryMovement>) -> Result<(), HandlerError> {
        let key = idempotency_key("search-sync", &event.event_id);
        let value: Option<String> = redis_get(&self.connection, &key)
            .await
            .map_err(HandlerError::retryable)?;
        // Claimed: the key holds its claimer's owner token (neither absent nor `done:…`).
        if value.is_none_or(|value| value.starts_with("done")) {
            self.unchecked.lock().unwrap().push(event.event_id);
        }
        Ok(())
    }
}

async fn redis_get(store: &RedisStore, key: &str) -> Result<Option<String>, String> {
    let mut connection = store.connection();
    ::redis::cmd("GET")
        .arg(key)
        .query_async(&mut connection)
        .await
        .map_err(|e| e.to_string())
}
