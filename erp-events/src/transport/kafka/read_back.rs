//! Reading a record's headers back from Kafka, for a dead letter whose record the listener
//! copied without them (see `record`): the dead letter carries its original's headers, as
//! Spring's `DeadLetterPublishingRecoverer` writes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use tracing::{debug, warn};

use crate::transport::kafka::Kafka;
use crate::transport::kafka::headers::headers;

/// How long reading one record back may take before it counts as failed (the dead letter is
/// then tried again, as when publishing fails).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Owned headers: names and values.
pub(crate) type OwnedHeaders = Vec<(String, Option<Vec<u8>>)>;

/// What reading a record back found.
#[derive(Debug, PartialEq)]
pub(crate) enum ReadBack {
    /// The record's headers, in order.
    Headers(OwnedHeaders),
    /// The record is no longer on Kafka (deleted by retention or compaction): why, to say in
    /// the dead letter.
    Gone(String),
}

/// One group's reading consumer, created with the first read; a read waits for the one before.
type Slot = Arc<tokio::sync::Mutex<Option<BaseConsumer>>>;

/// Reads records back, one at a time per consumer group, each group with a consumer of its
/// own made with its listeners' settings (the credentials and permissions they consume
/// with), created with the group's first dead letter that needs it (most applications never
/// do). It joins no group and commits nothing: it is assigned the record's partition at the
/// record's offset, and unassigned after.
pub(crate) struct HeaderReader {
    kafka: Kafka,
    slots: Mutex<HashMap<String, Slot>>,
}

impl HeaderReader {
    pub(crate) fn new(kafka: &Kafka) -> Self {
        HeaderReader {
            kafka: kafka.clone(),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The headers of the record at `offset` of `topic`'s `partition`, read as `group`.
    pub(crate) async fn read(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<ReadBack, KafkaError> {
        let slot = self
            .slots
            .lock()
            .expect("not poisoned")
            .entry(group.to_owned())
            .or_default()
            .clone();
        // Waited for here, not on a blocking thread: a stopping worker drops the wait.
        let mut consumer = slot.lock_owned().await;
        let config = self.config(group);
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let reader = match &mut *consumer {
                Some(reader) => reader,
                empty => empty.insert(config.create()?),
            };
            let read = read_at(reader, &topic, partition, offset);
            if let Err(error) = reader.unassign() {
                // It may still be fetching: the next read starts with a new one.
                warn!(%error, topic, partition, "cannot unassign the consumer reading records back");
                *consumer = None;
            }
            read
        })
        .await
        .expect("reading a record back does not panic")
    }

    /// `group`'s consumer settings, for reading single records.
    fn config(&self, group: &str) -> rdkafka::ClientConfig {
        let mut config = self.kafka.consumer_config(group, &[]);
        // Never a member of the group (assigned, not subscribed), so never a static one.
        config.remove("group.instance.id");
        config
            .set("client.id", format!("erp-{group}-dead-letters"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // The record was consumed, so it is in the log: read uncommitted, it is seen
            // whatever the transaction it was written in.
            .set("isolation.level", "read_uncommitted")
            // Deleted between the check of the partition's start and the fetch: the first
            // record after it comes, which says it is gone; nothing after it: the end does.
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true")
            .set("statistics.interval.ms", "0")
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.message.max.bytes", "65536");
        config
    }
}

/// Reads the record at `offset` with `consumer`, within [`READ_TIMEOUT`].
fn read_at(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<ReadBack, KafkaError> {
    let deadline = Instant::now() + READ_TIMEOUT;
    // What the last read left queued (records fetched past it, the client's events) goes first.
    while consumer.poll(Duration::ZERO).is_some() {}
    let gone = |why: &str| ReadBack::Gone(format!("offset {offset} of {topic}-{partition} {why}"));
    let (low, high) = consumer.fetch_watermarks(topic, partition, READ_TIMEOUT)?;
    if offset < low {
        return Ok(gone(&format!(
            "is no longer on Kafka (the partition starts at {low})"
        )));
    }
    if offset >= high {
        return Ok(gone(&format!(
            "is no longer on Kafka (the partition ends before it, at {high})"
        )));
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&assignment)?;
    let mut last_error = KafkaError::MessageConsumption(RDKafkaErrorCode::OperationTimedOut);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last_error);
        }
        let message = match consumer.poll(left) {
            None => continue,
            Some(Ok(message)) => message,
            Some(Err(KafkaError::PartitionEOF(at))) if at == partition => {
                return Ok(gone(
                    "is no longer on Kafka (nothing is left at or after it)",
                ));
            }
            Some(Err(error @ KafkaError::MessageConsumptionFatal(_))) => return Err(error),
            // A broker unreachable for a while, say: librdkafka retries until the deadline.
            Some(Err(error)) => {
                debug!(%error, topic, partition, offset, "reading a record back");
                last_error = error;
                continue;
            }
        };
        if (message.topic(), message.partition()) != (topic, partition) || message.offset() < offset
        {
            continue;
        }
        if message.offset() > offset {
            return Ok(gone("is no longer on Kafka (deleted or compacted away)"));
        }
        let read = headers(&message)
            .into_iter()
            .map(|(name, value)| (name.into_owned(), value.map(<[u8]>::to_vec)))
            .collect();
        return Ok(ReadBack::Headers(read));
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders as RdOwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::util::Timeout;

    use super::*;
    use crate::core::catalog::Catalog;
    use crate::transport::kafka::embedded::EmbeddedBroker;

    const TOPIC: &str = "erp.test.records";

    /// A cluster whose topic holds two records with headers, at offsets 0 and 1.
    async fn two_records() -> Kafka {
        let broker = EmbeddedBroker::new(1).unwrap();
        broker.create_topic(TOPIC, 1).unwrap();
        let catalog = format!(
            "[[topic]]\nname = \"{TOPIC}\"\nproducer = \"p\"\nconsumers = []\npartitions = 1\n\
             purpose = \"tests\"\n"
        );
        let catalog = Catalog::parse(std::path::Path::new("."), &catalog).unwrap();
        let kafka = Kafka::on_embedded(broker, &catalog);
        let producer: FutureProducer = kafka.producer_config("test").create().unwrap();
        for (name, value) in [("first", &b"1"[..]), ("second", &b"2"[..])] {
            let headers = RdOwnedHeaders::new()
                .insert(Header {
                    key: name,
                    value: Some(value),
                })
                .insert(Header {
                    key: "empty",
                    value: None::<&[u8]>,
                });
            let record = FutureRecord::<[u8], [u8]>::to(TOPIC)
                .payload(b"v")
                .headers(headers);
            producer.send(record, Timeout::Never).await.unwrap();
        }
        kafka
    }

    #[tokio::test]
    async fn reads_the_headers_of_the_record_at_an_offset_again_and_again() {
        let kafka = two_records().await;
        let reader = HeaderReader::new(&kafka);
        let headers = |name: &str, value: &[u8]| {
            ReadBack::Headers(vec![
                (name.to_owned(), Some(value.to_vec())),
                ("empty".to_owned(), None),
            ])
        };
        // One consumer, assigned anew for each read: a later offset, then an earlier one.
        assert_eq!(
            reader.read("g", TOPIC, 0, 1).await.unwrap(),
            headers("second", b"2")
        );
        assert_eq!(
            reader.read("g", TOPIC, 0, 0).await.unwrap(),
            headers("first", b"1")
        );
        assert_eq!(
            reader.read("g", TOPIC, 0, 1).await.unwrap(),
            headers("second", b"2")
        );
    }

    #[tokio::test]
    async fn a_record_not_on_kafka_is_gone_and_says_where() {
        let kafka = two_records().await;
        let reader = HeaderReader::new(&kafka);
        assert_eq!(
            reader.read("g", TOPIC, 0, 2).await.unwrap(),
            ReadBack::Gone(
                "offset 2 of erp.test.records-0 is no longer on Kafka (the partition ends before it, at 2)"
                    .to_owned()
            )
        );
    }
}
