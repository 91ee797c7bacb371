//! The measured sides, each run in a child process of its own: our publisher and listener, and
//! the baselines they are compared with.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use erp_demo::audit::AuditRecord;
use erp_demo::clinical::{CaseStage, ClinicalCaseEvent};
use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_demo::purchase::{OrderLine, PurchaseOrderEvent, PurchaseStage};
use erp_demo::sales::SaleCompleted;
use erp_events::{
    App, Brokers, ConfirmMode, Envelope, Event, HandlerError, IdempotencySettings,
    IdempotencyStore, Kafka, ListenerExt, Publisher, RedisStore, State, erp_listener,
};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Notify;

use crate::measure::{
    Measurement, cpu_seconds, cpu_us_per_event, now_millis, peak_rss_mib, percentile, throughput,
};
use crate::naive::NaiveRedisStore;

/// The topic every side uses (24 partitions in the bench's broker).
pub const TOPIC: &str = "erp.inventory.movements";
/// How many publishes are in flight at once in the pipelined publishing loops.
const WINDOW: usize = 20_000;

/// `count` movements (envelopes of about 300 bytes), numbered from `first`.
pub fn movements(first: usize, count: usize) -> Vec<InventoryMovement> {
    (first..first + count)
        .map(|i| {
            let mut movement = InventoryMovement::new(
                &format!("SKU-{:06}", i % 5_000),
                "WH-CENTRAL-EAST-01",
                MovementAction::Received,
                i as i64,
            );
            movement.to_warehouse = Some("WH-CENTRAL-WEST-02".to_owned());
            movement
        })
        .collect()
}

/// The Kafka at `bootstrap`.
pub fn kafka(bootstrap: &str) -> Kafka {
    let catalog = erp_events::catalog!();
    Kafka::connect(&Brokers::External(bootstrap.to_owned()), catalog).expect("connect")
}

/// Consumer settings for the mock cluster (which every side meets in another process, so the
/// framework cannot know it is the mock): an empty fetch is held for the whole
/// `fetch.wait.max.ms`, so a short wait keeps live latency about the consumer, not the mock.
pub const MOCK_CONSUMER_SETTINGS: [(&str, &str); 1] = [("fetch.wait.max.ms", "10")];

/// Sends `count` records through `send`, keeping up to [`WINDOW`] unacknowledged, and measures
/// throughput and send-to-acknowledgement latency. Both publishers run through this loop.
async fn pipelined<F, R, E>(count: usize, mut send: impl FnMut(usize) -> F) -> Measurement
where
    F: Future<Output = R>,
    R: Future<Output = Result<(), E>>,
    E: std::fmt::Debug,
{
    let mut pending = VecDeque::with_capacity(WINDOW);
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    let cpu_start = cpu_seconds();
    for i in 0..count {
        if pending.len() == WINDOW {
            let (sent, delivery): (Instant, R) = pending.pop_front().expect("full");
            delivery.await.expect("delivered");
            latencies.push(sent.elapsed().as_secs_f64() * 1e3);
        }
        pending.push_back((Instant::now(), send(i).await));
    }
    for (sent, delivery) in pending {
        delivery.await.expect("delivered");
        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    Measurement {
        throughput: throughput(count, started.elapsed()),
        p50_ms: percentile(&mut latencies, 50.0),
        p99_ms: percentile(&mut latencies, 99.0),
        peak_rss_mib: peak_rss_mib(),
        cpu_us_per_event: cpu_us_per_event(count, (cpu_start, cpu_seconds())),
    }
}

/// Our publisher, pipelined with `send`.
#[expect(
    clippy::async_yields_async,
    reason = "sending yields the acknowledgement to await later"
)]
pub async fn publish_ours(bootstrap: &str, count: usize) -> Measurement {
    let publisher = kafka(bootstrap)
        .publisher("inventory-service")
        .expect("publisher");
    let events = movements(0, count);
    pipelined(count, |i| {
        let publisher = &publisher;
        let event = &events[i];
        async move {
            let pending = publisher.send(event).await.expect("enqueued");
            async move { pending.await.map(drop) }
        }
    })
    .await
}

/// A hand-written FutureProducer loop that builds the same envelope bytes and header.
#[expect(
    clippy::async_yields_async,
    reason = "sending yields the acknowledgement to await later"
)]
pub async fn publish_raw(bootstrap: &str, count: usize) -> Measurement {
    let producer: FutureProducer = kafka(bootstrap)
        .client_config()
        .set("client.id", "inventory-service")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    let events = movements(0, count);
    pipelined(count, |i| {
        let producer = &producer;
        let event = &events[i];
        async move {
            let trace = erp_events::TraceContext::new_root();
            let envelope = Envelope {
                event_id: uuid::Uuid::now_v7(),
                event_type: "RECEIVED".to_owned(),
                source: "inventory-service".to_owned(),
                timestamp: time::OffsetDateTime::now_utc(),
                trace_id: Some(trace.trace_id_hex()),
                user_id: None,
                version: 1,
                payload: event,
            };
            let value = serde_json::to_vec(&envelope).expect("serialize");
            let traceparent = trace.to_traceparent();
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: "traceparent",
                value: Some(traceparent.as_str()),
            });
            let record = FutureRecord::to(TOPIC)
                .key(event.product_id.as_str())
                .payload(&value)
                .headers(headers);
            let delivery = producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueued");
            async move { delivery.await.map(drop).map_err(|_| "canceled") }
        }
    })
    .await
}

/// Counts handled events: the backlog's throughput, then the live events' latency.
#[derive(Clone)]
pub struct Tally {
    inner: Arc<TallyInner>,
}

struct TallyInner {
    backlog: usize,
    total: usize,
    handled: AtomicUsize,
    /// When the first event was handled, and the process's CPU seconds then.
    first: OnceLock<(Instant, f64)>,
    /// When the backlog's last event was handled, and the process's CPU seconds then.
    backlog_done: OnceLock<(Instant, f64)>,
    latencies: Mutex<Vec<f64>>,
    changed: Notify,
}

impl Tally {
    /// Expects `backlog` records, then `live` ones.
    pub fn new(backlog: usize, live: usize) -> Self {
        Tally {
            inner: Arc::new(TallyInner {
                backlog,
                total: backlog + live,
                handled: AtomicUsize::new(0),
                first: OnceLock::new(),
                backlog_done: OnceLock::new(),
                latencies: Mutex::new(Vec::with_capacity(live)),
                changed: Notify::new(),
            }),
        }
    }

    /// Records one handled event published at `published` (epoch milliseconds).
    pub fn record(&self, published: f64) {
        let inner = &self.inner;
        inner.first.get_or_init(|| (Instant::now(), cpu_seconds()));
        let handled = inner.handled.fetch_add(1, Ordering::AcqRel) + 1;
        if handled > inner.backlog {
            inner
                .latencies
                .lock()
                .expect("not poisoned")
                .push(now_millis() - published);
        }
        if handled == inner.backlog {
            inner
                .backlog_done
                .get_or_init(|| (Instant::now(), cpu_seconds()));
        }
        if handled == inner.backlog || handled == inner.total {
            inner.changed.notify_waiters();
        }
    }

    async fn wait_for(&self, count: usize) {
        loop {
            let changed = self.inner.changed.notified();
            if self.inner.handled.load(Ordering::Acquire) >= count {
                return;
            }
            changed.await;
        }
    }

    /// Waits for the backlog, announces the live phase (`LIVE` on stdout), waits for the live
    /// events, and reports.
    pub async fn run_phases(&self) -> Measurement {
        self.wait_for(self.inner.backlog).await;
        println!("LIVE");
        self.wait_for(self.inner.total).await;
        let (first, cpu_first) = *self.inner.first.get().expect("handled");
        let (done, cpu_done) = *self.inner.backlog_done.get().expect("backlog done");
        let mut latencies = self.inner.latencies.lock().expect("not poisoned").clone();
        Measurement {
            throughput: throughput(self.inner.backlog, done - first),
            p50_ms: percentile(&mut latencies, 50.0),
            p99_ms: percentile(&mut latencies, 99.0),
            peak_rss_mib: peak_rss_mib(),
            cpu_us_per_event: cpu_us_per_event(self.inner.backlog, (cpu_first, cpu_done)),
        }
    }
}

fn published_millis<E>(envelope: &Envelope<E>) -> f64 {
    envelope.timestamp.unix_timestamp_nanos() as f64 / 1e6
}

#[erp_listener(group = "search-sync", idempotent = false, concurrency = 24)]
async fn plain(
    event: Envelope<InventoryMovement>,
    State(tally): State<Tally>,
) -> Result<(), HandlerError> {
    tally.record(published_millis(&event));
    Ok(())
}

#[erp_listener(group = "search-sync", concurrency = 24)]
async fn deduplicated(
    event: Envelope<InventoryMovement>,
    State(tally): State<Tally>,
) -> Result<(), HandlerError> {
    tally.record(published_millis(&event));
    Ok(())
}

fn mock_settings(app: App) -> App {
    MOCK_CONSUMER_SETTINGS
        .iter()
        .fold(app, |app, (key, value)| app.consumer_config(key, value))
}

/// Our listener, without dedup (to compare with the hand-written loop).
pub async fn consume_ours(bootstrap: &str, backlog: usize, live: usize) -> Measurement {
    let tally = Tally::new(backlog, live);
    let running = mock_settings(App::new(&kafka(bootstrap)))
        .listener(plain.with_state(tally.clone()))
        .start()
        .expect("start");
    let measurement = tally.run_phases().await;
    running.shutdown().await;
    measurement
}

/// Our listener with `store` for dedup, confirming as `confirm` says.
pub async fn consume_deduplicated(
    bootstrap: &str,
    backlog: usize,
    live: usize,
    (store, confirm): (impl IdempotencyStore, ConfirmMode),
) -> Measurement {
    let tally = Tally::new(backlog, live);
    // Done markers for 10 minutes, not 24 hours: the benchmark leaves its keys in the Redis
    // it is given. The TTL does not change what a claim or a confirmation costs.
    let settings = IdempotencySettings {
        done_ttl: Duration::from_secs(600),
        confirm,
        ..IdempotencySettings::default()
    };
    let running = mock_settings(App::new(&kafka(bootstrap)))
        .idempotency_store(store)
        .idempotency_settings(settings)
        .listener(deduplicated.with_state(tally.clone()))
        .start()
        .expect("start");
    let measurement = tally.run_phases().await;
    running.shutdown().await;
    measurement
}

/// Our listener with the Redis store (its claims' `SET`s and the scripts it calls: `EVALSHA`, and
/// `EVAL` once), confirming as `confirm` says.
pub async fn consume_redis(
    bootstrap: &str,
    backlog: usize,
    live: usize,
    (url, confirm): (&str, ConfirmMode),
) -> Measurement {
    let store = RedisStore::new(url).expect("redis");
    let work = RedisWork::start(url).await;
    let measurement = consume_deduplicated(bootstrap, backlog, live, (store, confirm)).await;
    let label = match confirm {
        ConfirmMode::InGroups => "Redis store",
        ConfirmMode::EachRecord => "Redis store, each record",
    };
    work.report(label, &["evalsha", "eval", "set"], backlog + live)
        .await;
    forget_keys(url).await;
    measurement
}

/// Our listener with the naive store (one awaited `SET NX` per message).
pub async fn consume_naive(bootstrap: &str, backlog: usize, live: usize, url: &str) -> Measurement {
    let store = NaiveRedisStore::connect(url).await.expect("redis");
    let work = RedisWork::start(url).await;
    let measurement =
        consume_deduplicated(bootstrap, backlog, live, (store, ConfirmMode::InGroups)).await;
    work.report("naive store", &["set"], backlog + live).await;
    forget_keys(url).await;
    measurement
}

/// What Redis spends on a side: its command statistics (reset at the start) and its CPU time.
struct RedisWork {
    connection: redis::aio::MultiplexedConnection,
    cpu_at_start: f64,
}

impl RedisWork {
    async fn start(url: &str) -> Self {
        let client = redis::Client::open(url).expect("redis url");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut connection)
            .await
            .expect("reset Redis's statistics");
        let cpu_at_start = redis_cpu_seconds(&mut connection).await;
        RedisWork {
            connection,
            cpu_at_start,
        }
    }

    /// Prints (to stderr) Redis's µs per event: `usec` of the `commands` the store sent
    /// (`INFO commandstats`; commands run inside a script count in the script's), and its CPU;
    /// then every command's own share, those run inside scripts included, to show where the
    /// time goes.
    async fn report(mut self, store: &str, commands: &[&str], events: usize) {
        let cpu = redis_cpu_seconds(&mut self.connection).await - self.cpu_at_start;
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.connection)
            .await
            .expect("INFO commandstats");
        let events = events.max(1) as f64;
        let (mut calls, mut usec) = (0u64, 0u64);
        let mut each = Vec::new();
        for (name, (its_calls, its_usec)) in stats.lines().filter_map(command_stat) {
            if commands.contains(&name) {
                calls += its_calls;
                usec += its_usec;
            }
            if !matches!(name, "info" | "config|resetstat") {
                each.push(format!(
                    "{name} {:.2} ({:.2} calls)",
                    its_usec as f64 / events,
                    its_calls as f64 / events
                ));
            }
        }
        eprintln!(
            "{store}: Redis commands {:.2} µs per event ({calls} calls of {}), Redis CPU {:.2} µs per event",
            usec as f64 / events,
            commands.join("/"),
            cpu * 1e6 / events
        );
        eprintln!("  per event, by command: {}", each.join(", "));
    }
}

/// A command's calls and `usec` from a line of `INFO commandstats`
/// (`cmdstat_<name>:calls=…,usec=…,…`).
fn command_stat(line: &str) -> Option<(&str, (u64, u64))> {
    let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
    let (mut calls, mut usec) = (0, 0);
    for field in fields.split(',') {
        match field.split_once('=') {
            Some(("calls", value)) => calls = value.parse().unwrap_or(0),
            Some(("usec", value)) => usec = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    Some((name, (calls, usec)))
}

/// Redis's CPU time so far (user and system), seconds.
async fn redis_cpu_seconds(connection: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(connection)
        .await
        .expect("INFO cpu");
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| matches!(*name, "used_cpu_user" | "used_cpu_sys"))
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

/// Deletes the keys a deduplicating side left in Redis: a keyspace grown by earlier runs makes
/// every `SET` slower (2.2 µs per call with 0.4 M keys here, 4.5 µs with 2.4 M), and the
/// next run must meet the Redis this one met.
async fn forget_keys(url: &str) {
    let client = redis::Client::open(url).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("erp:idem:{search-sync}:*")
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut connection)
            .await
            .expect("scan");
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut connection)
                .await
                .expect("unlink");
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// A hand-written StreamConsumer loop on `E`'s topic in `group`: decode the envelope with
/// serde_json, handle, store the offset, with the consumer settings our listeners use (the same
/// prefetch bound).
async fn hand_written_loop<E: Event>(kafka: &Kafka, group: &str, tally: &Tally) {
    let mut config = kafka.consumer_config(group, &[]);
    for (key, value) in MOCK_CONSUMER_SETTINGS {
        config.set(key, value);
    }
    let consumer: StreamConsumer = config.create().expect("consumer");
    consumer.subscribe(&[E::TOPIC]).expect("subscribe");
    loop {
        let message = consumer.recv().await.expect("record");
        let envelope: Envelope<E> =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("envelope");
        tally.record(published_millis(&envelope));
        consumer
            .store_offset_from_message(&message)
            .expect("store offset");
    }
}

/// The hand-written loop on the measured topic.
pub async fn consume_hand_written(bootstrap: &str, backlog: usize, live: usize) -> Measurement {
    let tally = Tally::new(backlog, live);
    let kafka = kafka(bootstrap);
    tokio::select! {
        measurement = tally.run_phases() => measurement,
        () = hand_written_loop::<InventoryMovement>(&kafka, "hand-written", &tally) => {
            unreachable!("the loop never ends")
        }
    }
}

/// How long the parent waits between live events (a steady 5 000 events per second).
pub const LIVE_PACE: Duration = Duration::from_micros(200);

/// The topics of the `groups` pair, each read by a group of its own in one process.
pub const GROUP_TOPICS: [&str; 5] = [
    TOPIC,
    "erp.purchase.lifecycle",
    "erp.sales.transactions",
    "erp.vma.clinical",
    "erp.audit.events",
];

/// Publishes `count` events in all, a fifth on each of [`GROUP_TOPICS`], each as its topic's
/// producer service.
pub async fn publish_group_backlog(kafka: &Kafka, count: usize) {
    let publisher = |service: &str| -> Publisher { kafka.publisher(service).expect("publisher") };
    let each = count / GROUP_TOPICS.len();
    let orders: Vec<PurchaseOrderEvent> = (0..each)
        .map(|i| PurchaseOrderEvent {
            po_number: format!("PO-{i:06}"),
            supplier: "ACME-INDUSTRIAL-SUPPLY".to_owned(),
            stage: PurchaseStage::PoCreated,
            lines: vec![OrderLine {
                product_id: format!("SKU-{:06}", i % 5_000),
                quantity: 12,
                unit_cost_cents: 1_999,
            }],
            expected_on: None,
        })
        .collect();
    let sales: Vec<SaleCompleted> = (0..each)
        .map(|i| {
            SaleCompleted::new(
                &format!("S-{i:06}"),
                &format!("SKU-{:06}", i % 5_000),
                2,
                999,
            )
        })
        .collect();
    let cases: Vec<ClinicalCaseEvent> = (0..each)
        .map(|i| ClinicalCaseEvent {
            case_id: format!("CASE-{i:06}"),
            stage: CaseStage::CaseOpened,
            site: "HOSPITAL-NORTH-CAMPUS".to_owned(),
            device_lot: None,
        })
        .collect();
    let audits: Vec<AuditRecord> = (0..each)
        .map(|i| AuditRecord {
            module: "inventory".to_owned(),
            entity_id: format!("PO-{i:06}"),
            action: "APPROVE".to_owned(),
            actor: "buyer@example.com".to_owned(),
            detail: None,
        })
        .collect();
    let (movements, orders, sales, cases, audits) = tokio::join!(
        async {
            let events = movements(0, each);
            publisher("inventory-service").publish_all(&events).await
        },
        async { publisher("purchase-service").publish_all(&orders).await },
        async { publisher("etl-service").publish_all(&sales).await },
        async { publisher("vma-clinical-service").publish_all(&cases).await },
        async { publisher("audit-service").publish_all(&audits).await },
    );
    for published in [movements, orders, sales, cases, audits] {
        published.expect("backlog");
    }
}

/// Counts an event of any topic of the `groups` pair.
async fn count_any<E>(event: Envelope<E>, tally: &Tally) -> Result<(), HandlerError> {
    tally.record(published_millis(&event));
    Ok(())
}

#[erp_listener(group = "search-sync", idempotent = false, concurrency = 24)]
async fn group_movements(
    event: Envelope<InventoryMovement>,
    State(tally): State<Tally>,
) -> Result<(), HandlerError> {
    count_any(event, &tally).await
}

#[erp_listener(group = "finance", idempotent = false, concurrency = 24)]
async fn group_orders(
    event: Envelope<PurchaseOrderEvent>,
    State(tally): State<Tally>,
) -> Result<(), HandlerError> {
    count_any(event, &tally).await
}

#[erp_listener(group = "fifo", idempotent = false, concurrency = 24)]
async fn group_sales(
    event: Envelope<SaleCompleted>,
    State(tally): State<Tally>,
) -> Result<(), HandlerError> {
    count_any(event, &tally).await
}

#[erp_listener(group = "analytics", idempotent = false, concurrency = 24)]
async fn group_cases(
    event: Envelope<ClinicalCaseEvent>,
    State(tally): State<Tally>,
) -> Result<(), HandlerError> {
    count_any(event, &tally).await
}

#[erp_listener(group = "compliance", idempotent = false, concurrency = 24)]
async fn group_audits(
    event: Envelope<AuditRecord>,
    State(tally): State<Tally>,
) -> Result<(), HandlerError> {
    count_any(event, &tally).await
}

/// Five listeners in five groups, one per topic of [`GROUP_TOPICS`], in one application.
pub async fn consume_groups_ours(bootstrap: &str, backlog: usize, live: usize) -> Measurement {
    let tally = Tally::new(backlog, live);
    let running = mock_settings(App::new(&kafka(bootstrap)))
        .listener(group_movements.with_state(tally.clone()))
        .listener(group_orders.with_state(tally.clone()))
        .listener(group_sales.with_state(tally.clone()))
        .listener(group_cases.with_state(tally.clone()))
        .listener(group_audits.with_state(tally.clone()))
        .start()
        .expect("start");
    let measurement = tally.run_phases().await;
    running.shutdown().await;
    measurement
}

/// Five hand-written loops ([`hand_written_loop`]) in one process, one per topic.
pub async fn consume_groups_hand(bootstrap: &str, backlog: usize, live: usize) -> Measurement {
    let tally = Tally::new(backlog, live);
    let kafka = kafka(bootstrap);
    let loops = async {
        tokio::join!(
            hand_written_loop::<InventoryMovement>(&kafka, "hand-search-sync", &tally),
            hand_written_loop::<PurchaseOrderEvent>(&kafka, "hand-finance", &tally),
            hand_written_loop::<SaleCompleted>(&kafka, "hand-fifo", &tally),
            hand_written_loop::<ClinicalCaseEvent>(&kafka, "hand-analytics", &tally),
            hand_written_loop::<AuditRecord>(&kafka, "hand-compliance", &tally),
        )
    };
    tokio::select! {
        measurement = tally.run_phases() => measurement,
        _ = loops => unreachable!("the loops never end"),
    }
}

#[cfg(test)]
mod tests {
    use super::command_stat;

    #[test]
    fn a_command_stat_line_gives_its_calls_and_usec() {
        let line = "cmdstat_evalsha:calls=8000,usec=386752,usec_per_call=48.34,rejected_calls=0,failed_calls=0";
        assert_eq!(command_stat(line), Some(("evalsha", (8000, 386752))));
        assert_eq!(command_stat("# Commandstats"), None);
    }
}
