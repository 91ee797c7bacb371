//! Reading a record's headers back from Kafka, for a dead letter whose record the listener
//! copied without them (see `record`): the dead letter carries its original's headers, as
//! Spring's `DeadLetterPublishingRecoverer` writes it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

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

/// Reads records back, one at a time, with one consumer of its own, created with the first
/// dead letter that needs it (most applications never do). It joins no group and commits
/// nothing: it is assigned the record's partition at the record's offset, and unassigned after.
pub(crate) struct HeaderReader {
    kafka: Kafka,
    consumer: Mutex<Option<BaseConsumer>>,
}

impl HeaderReader {
    pub(crate) fn new(kafka: &Kafka) -> Arc<Self> {
        Arc::new(HeaderReader {
            kafka: kafka.clone(),
            consumer: Mutex::new(None),
        })
    }

    /// The headers of the record at `offset` of `topic`'s `partition`.
    pub(crate) async fn read(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<ReadBack, KafkaError> {
        let reader = self.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || reader.read_blocking(&topic, partition, offset))
            .await
            .expect("reading a record back does not panic")
    }

    fn read_blocking(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<ReadBack, KafkaError> {
        let mut consumer = self.consumer.lock().expect("not poisoned");
        let consumer = match &mut *consumer {
            Some(consumer) => consumer,
            empty => empty.insert(self.create()?),
        };
        let read = read_at(consumer, topic, partition, offset);
        // Unassigned, it fetches nothing more: what it holds stays one record's worth.
        consumer.unassign()?;
        read
    }

    fn create(&self) -> Result<BaseConsumer, KafkaError> {
        let mut config = self.kafka.client_config();
        config
            // librdkafka assigns partitions only to a consumer with a group; this one never
            // joins it, nor commits.
            .set("group.id", "erp-dead-letters")
            .set("client.id", "erp-dead-letters")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // The record was consumed, so it is in the log: read uncommitted, it is seen
            // whatever the transaction it was written in.
            .set("isolation.level", "read_uncommitted")
            // Deleted between the check of the partition's start and the fetch: the first
            // record after it comes, which says it is gone.
            .set("auto.offset.reset", "earliest")
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.message.max.bytes", "65536");
        if self.kafka.embedded().is_some() {
            // The mock broker holds an empty fetch for the whole wait.
            config.set("fetch.wait.max.ms", "10");
        }
        config.create()
    }
}

/// Reads the record at `offset` with `consumer`.
fn read_at(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<ReadBack, KafkaError> {
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
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        let Some(polled) = consumer.poll(left) else {
            continue;
        };
        let message = polled?;
        if (message.topic(), message.partition()) != (topic, partition) || message.offset() < offset
        {
            continue;
        }
        if message.offset() > offset {
            return Ok(gone("is no longer on Kafka (compacted away)"));
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
            reader.read(TOPIC, 0, 1).await.unwrap(),
            headers("second", b"2")
        );
        assert_eq!(
            reader.read(TOPIC, 0, 0).await.unwrap(),
            headers("first", b"1")
        );
        assert_eq!(
            reader.read(TOPIC, 0, 1).await.unwrap(),
            headers("second", b"2")
        );
    }

    #[tokio::test]
    async fn a_record_not_on_kafka_is_gone_and_says_where() {
        let kafka = two_records().await;
        let reader = HeaderReader::new(&kafka);
        assert_eq!(
            reader.read(TOPIC, 0, 2).await.unwrap(),
            ReadBack::Gone(
                "offset 2 of erp.test.records-0 is no longer on Kafka (the partition ends before it, at 2)"
                    .to_owned()
            )
        );
    }
}
