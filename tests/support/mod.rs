//! Helpers shared by the integration tests: reaching the services and reading what Kafka holds.
#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use erp_events::{Config, Kafka};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a test waits for something Kafka should do promptly before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The Kafka under test: `KAFKA_BROKERS` when set, else a fresh embedded broker.
pub fn kafka() -> Kafka {
    Kafka::connect(&Config::from_env().brokers, erp_events::catalog!()).expect("start Kafka")
}

/// Reads every record of `topic` from the beginning until `count` have arrived (or fails after
/// [`PATIENCE`]), without joining a consumer group.
pub fn read_records(kafka: &Kafka, topic: &str, count: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "erp-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("create a reader");
    let metadata = consumer
        .fetch_metadata(Some(topic), PATIENCE)
        .expect("read topic metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&assignment).expect("assign partitions");
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {count} records arrived on `{topic}`",
            records.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            records.push(message.expect("read a record").detach());
        }
    }
    records
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
