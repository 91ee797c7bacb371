//! Helpers shared by the integration tests: reaching the services and reading what Kafka holds.
#![allow(dead_code)] // each test file uses its own subset

pub mod peer;
pub mod services;

use std::time::Duration;

use erp_events::{Config, Kafka};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a test waits for something Kafka should do promptly before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh embedded broker with the catalog's topics, private to one test.
pub fn kafka() -> Kafka {
    Kafka::connect(&Config::embedded().brokers, erp_events::catalog!()).expect("start Kafka")
}

/// Reads every record of `topic` from the beginning until `count` have arrived (or fails after
/// [`PATIENCE`]), without joining a consumer group. Runs on the blocking pool, so listeners on
/// the test's runtime keep running meanwhile.
pub async fn read_records(kafka: &Kafka, topic: &str, count: usize) -> Vec<OwnedMessage> {
    read_records_where(kafka, topic, count, |_| true).await
}

/// [`read_records`] of the records for which `keep` holds (on a shared broker, a test's own).
pub async fn read_records_where(
    kafka: &Kafka,
    topic: &str,
    count: usize,
    keep: impl Fn(&OwnedMessage) -> bool + Send + 'static,
) -> Vec<OwnedMessage> {
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_records_blocking(&kafka, &topic, count, keep))
        .await
        .expect("the reader does not panic")
}

/// The dead letters of `topic` (read with [`erp_events::dlt::DeadLetter::from_message`]) for
/// which `keep` holds: `count` of them, or the test fails after [`PATIENCE`].
#[allow(dead_code)] // not every test binary reads dead letters this way
pub async fn read_dead_letters_where(
    kafka: &Kafka,
    topic: &str,
    count: usize,
    keep: impl Fn(&erp_events::dlt::DeadLetter) -> bool + Send + 'static,
) -> Vec<erp_events::dlt::DeadLetter> {
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let read = |message: &rdkafka::message::BorrowedMessage<'_>| {
            let dead = erp_events::dlt::DeadLetter::from_message(message)
                .expect("dead-letter headers in Spring's encoding");
            Some(dead).filter(&keep)
        };
        let dead = erp_demo::demo::read_from_start_with(&kafka, &topic, count, PATIENCE, read)
            .expect("read the topic");
        assert!(
            dead.len() == count,
            "only {} of {count} dead letters arrived on `{topic}`",
            dead.len()
        );
        dead
    })
    .await
    .expect("the reader does not panic")
}

fn read_records_blocking(
    kafka: &Kafka,
    topic: &str,
    count: usize,
    keep: impl Fn(&OwnedMessage) -> bool,
) -> Vec<OwnedMessage> {
    let records = erp_demo::demo::read_from_start(kafka, topic, count, PATIENCE, keep)
        .expect("read the topic");
    assert!(
        records.len() == count,
        "only {} of {count} records arrived on `{topic}`",
        records.len()
    );
    records
}

/// How many partitions `topic` has.
pub fn partition_count(kafka: &Kafka, topic: &str) -> i32 {
    let consumer: BaseConsumer = kafka.client_config().create().expect("create a client");
    let metadata = consumer
        .fetch_metadata(Some(topic), PATIENCE)
        .expect("read topic metadata");
    metadata.topics()[0].partitions().len() as i32
}

/// The end offset (high watermark) of each partition of `topic`.
pub fn end_offsets(kafka: &Kafka, topic: &str) -> std::collections::BTreeMap<i32, i64> {
    let consumer: BaseConsumer = kafka.client_config().create().expect("create a client");
    (0..partition_count(kafka, topic))
        .map(|partition| {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, PATIENCE)
                .expect("read watermarks");
            (partition, high)
        })
        .collect()
}

/// How many records `topic` holds (the sum of its partitions' watermark spans).
pub fn records_in(kafka: &Kafka, topic: &str) -> i64 {
    let consumer: BaseConsumer = kafka.client_config().create().expect("create a client");
    let metadata = consumer
        .fetch_metadata(Some(topic), PATIENCE)
        .expect("read topic metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), PATIENCE)
                .expect("read watermarks");
            high - low
        })
        .sum()
}

/// The value of header `name` of `record` as UTF-8.
pub fn header(record: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = record.headers()?;
    headers
        .iter()
        .find(|header| header.key == name)
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// Awaits `future`, failing the test if it takes longer than `limit` of real time (measured on
/// a thread, so it also holds under tokio's paused clock).
pub async fn within<F: std::future::Future>(limit: Duration, what: &str, future: F) -> F::Output {
    let (expired_tx, expired_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = expired_tx.send(());
    });
    tokio::select! {
        output = future => output,
        _ = expired_rx => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Committed offsets of `group` on `topic`, by partition (partitions without a commit absent).
pub fn committed(kafka: &Kafka, group: &str, topic: &str) -> std::collections::BTreeMap<i32, i64> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create an offsets reader");
    let metadata = consumer
        .fetch_metadata(Some(topic), PATIENCE)
        .expect("read topic metadata");
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        partitions.add_partition(topic, partition.id());
    }
    consumer
        .committed_offsets(partitions, PATIENCE)
        .expect("read committed offsets")
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect()
}

/// The dead-letter headers of `record`, decoded with Spring's encodings.
pub fn dead_letter_info(record: &OwnedMessage) -> erp_events::dlt::DeadLetterInfo {
    use rdkafka::message::Headers;
    let headers = record.headers().expect("a dead letter has headers");
    erp_events::dlt::decode_dead_letter_headers(headers.iter().map(|h| (h.key, h.value)))
        .expect("dead-letter headers in Spring's encoding")
}

/// Produces raw bytes (not an envelope) to `topic` with `key`, as a misbehaving producer would.
pub async fn produce_raw(kafka: &Kafka, topic: &str, key: &str, values: &[Vec<u8>]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = kafka
        .client_config()
        .set("message.max.bytes", "16777216")
        .create()
        .expect("create a raw producer");
    for value in values {
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(value),
                rdkafka::util::Timeout::After(PATIENCE),
            )
            .await
            .expect("produce a raw record");
    }
}

/// A search-sync listener without retries that records each call in its [`Probe`].
#[erp_events::erp_listener(group = "search-sync", retries = 0)]
pub async fn probed_once(
    event: erp_events::Envelope<erp_demo::inventory::InventoryMovement>,
    erp_events::State(probe): erp_events::State<Probe>,
) -> Result<(), erp_events::HandlerError> {
    probe.call(&event)
}

/// A handler's state for tests: records every call and can be told to fail.
#[derive(Clone)]
pub struct Probe {
    inner: std::sync::Arc<ProbeInner>,
}

struct ProbeInner {
    failures_per_event: u32,
    permanent: bool,
    calls: std::sync::Mutex<Vec<Call>>,
    notify: tokio::sync::Notify,
}

/// One call of a probed handler.
#[derive(Debug, Clone)]
pub struct Call {
    /// The envelope's `eventId`.
    pub event_id: uuid::Uuid,
    /// The record's key (the movement's product).
    pub product: String,
    /// The movement's quantity, used by tests as a sequence number.
    pub quantity: i64,
    /// When the call started, on tokio's clock.
    pub at: tokio::time::Instant,
    /// The trace the handler ran in.
    pub trace_id: Option<String>,
}

impl Probe {
    /// A probe whose handler succeeds.
    pub fn succeeding() -> Self {
        Self::failing(0)
    }

    /// A probe whose handler fails the first `times` calls for each event, then succeeds.
    pub fn failing(times: u32) -> Self {
        Self::new(times, false)
    }

    /// A probe whose handler always fails with a retryable error.
    pub fn always_failing() -> Self {
        Self::new(u32::MAX, false)
    }

    /// A probe whose handler fails permanently.
    pub fn permanently_failing() -> Self {
        Self::new(u32::MAX, true)
    }

    fn new(failures_per_event: u32, permanent: bool) -> Self {
        Probe {
            inner: std::sync::Arc::new(ProbeInner {
                failures_per_event,
                permanent,
                calls: std::sync::Mutex::new(Vec::new()),
                notify: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Records the call; fails as configured.
    pub fn call(
        &self,
        envelope: &erp_events::Envelope<erp_demo::inventory::InventoryMovement>,
    ) -> Result<(), erp_events::HandlerError> {
        let call = Call {
            event_id: envelope.event_id,
            product: envelope.payload.product_id.clone(),
            quantity: envelope.payload.quantity,
            at: tokio::time::Instant::now(),
            trace_id: erp_events::EventContext::current()
                .trace()
                .map(|t| t.trace_id_hex()),
        };
        let previous = {
            let mut calls = self.inner.calls.lock().unwrap();
            let previous = calls.iter().filter(|c| c.event_id == call.event_id).count();
            calls.push(call);
            previous as u32
        };
        self.inner.notify.notify_waiters();
        if previous < self.inner.failures_per_event {
            let error = std::io::Error::other(format!("simulated failure {}", previous + 1));
            return Err(if self.inner.permanent {
                erp_events::HandlerError::permanent(error)
            } else {
                error.into()
            });
        }
        Ok(())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Waits (real time, [`PATIENCE`]) until `done` holds for the calls so far.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        within(PATIENCE, what, async {
            loop {
                let notified = self.inner.notify.notified();
                let calls = self.calls();
                if done(&calls) {
                    return calls;
                }
                notified.await;
            }
        })
        .await
    }

    /// Waits until at least `count` calls were made.
    pub async fn wait_for_calls(&self, count: usize) -> Vec<Call> {
        self.wait_until(&format!("{count} handler calls"), |calls| {
            calls.len() >= count
        })
        .await
    }
}

/// The JSON envelope of `movement` with the given `eventId` (as a producer that re-sends it
/// would write it).
pub fn envelope_json(event_id: &str, movement: &erp_demo::inventory::InventoryMovement) -> Vec<u8> {
    serde_json::json!({
        "eventId": event_id,
        "eventType": "RECEIVED",
        "source": "inventory-service",
        "timestamp": "2026-11-25T10:00:00.000Z",
        "traceId": null,
        "userId": null,
        "version": 1,
        "payload": movement,
    })
    .to_string()
    .into_bytes()
}

/// Produces `value` to one partition of `topic`.
pub async fn produce_to(kafka: &Kafka, topic: &str, partition: i32, key: &str, value: &[u8]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = kafka.client_config().create().expect("create a producer");
    producer
        .send(
            FutureRecord::to(topic)
                .partition(partition)
                .key(key)
                .payload(value),
            rdkafka::util::Timeout::After(PATIENCE),
        )
        .await
        .expect("produce a record");
}
