//! Dead letters on Kafka: publishing them to each topic's dead-letter topic, and reading them
//! back.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::runtime::dlt::{
    DeadLetter, DeadLetterHeaderError, DeadLetterReason, ORIGINAL_HEADERS_LOST,
    dead_letter_headers, decode_dead_letter_headers, is_dead_letter_header,
};
use crate::runtime::record::Record;
use crate::runtime::sinks::{DeadLetterError, DeadLetterFuture, DeadLetterSink};
use crate::transport::kafka::Kafka;
use crate::transport::kafka::headers::headers;
use crate::transport::kafka::read_back::{HeaderReader, ReadBack};

/// How long one dead-letter publish may take before it counts as failed (and is retried).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes dead letters to the original record's partition of the topic's DLT when the DLT has
/// that partition, else lets the key choose (Spring's default destination resolver), with the
/// original's headers (read back from Kafka when the listener did not copy them).
///
/// The producer (and its polling thread) is created with the first dead letter: most
/// applications never need it.
pub(crate) struct KafkaDeadLetters {
    kafka: Kafka,
    producer: OnceLock<FutureProducer>,
    partitions: Mutex<HashMap<String, i32>>,
    reader: HeaderReader,
}

impl KafkaDeadLetters {
    pub(crate) fn new(kafka: &Kafka) -> Self {
        KafkaDeadLetters {
            kafka: kafka.clone(),
            producer: OnceLock::new(),
            partitions: Mutex::new(HashMap::new()),
            reader: HeaderReader::new(kafka),
        }
    }

    /// The headers of the dead letter for `record`: its own (read back from Kafka when they
    /// were not copied), then the dead-letter ones.
    async fn headers(
        &self,
        record: &Record,
        group: &str,
        reason: &DeadLetterReason,
        topic: &str,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, DeadLetterError> {
        if record.headers_copied() {
            return Ok(dead_letter_headers(record.headers(), record, group, reason));
        }
        let read_back = self
            .reader
            .read(group, record.topic, record.partition, record.offset)
            .await
            .map_err(|error| {
                let at = format!("{}-{}@{}", record.topic, record.partition, record.offset);
                DeadLetterError::transport(
                    topic,
                    format!("cannot read the headers of {at} back: {error}"),
                )
            })?;
        Ok(match read_back {
            ReadBack::Headers(originals) => {
                let originals = originals.iter();
                let originals = originals.map(|(name, value)| (name.as_str(), value.as_deref()));
                dead_letter_headers(originals, record, group, reason)
            }
            ReadBack::Gone(why) => {
                let mut headers = dead_letter_headers(std::iter::empty(), record, group, reason);
                headers.push((ORIGINAL_HEADERS_LOST.to_owned(), Some(why.into_bytes())));
                headers
            }
        })
    }

    fn producer(&self, topic: &str) -> Result<&FutureProducer, DeadLetterError> {
        if let Some(producer) = self.producer.get() {
            return Ok(producer);
        }
        let producer = self
            .kafka
            .producer_config("erp-dead-letters")
            .set("message.max.bytes", "16777216")
            .set(
                "message.timeout.ms",
                PUBLISH_TIMEOUT.as_millis().to_string(),
            )
            .create()
            .map_err(|error| DeadLetterError::transport(topic, error))?;
        Ok(self.producer.get_or_init(|| producer))
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, DeadLetterError> {
        if let Some(count) = self.partitions.lock().expect("not poisoned").get(topic) {
            return Ok(*count);
        }
        let producer = self.producer(topic)?.clone();
        let name = topic.to_owned();
        let count = tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .map_err(|error| DeadLetterError::transport(&name, error))?;
            match metadata.topics().first() {
                Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => {
                    Ok(topic.partitions().len() as i32)
                }
                _ => Err(DeadLetterError::MissingTopic { topic: name }),
            }
        })
        .await
        .expect("metadata lookup does not panic")?;
        self.partitions
            .lock()
            .expect("not poisoned")
            .insert(topic.to_owned(), count);
        Ok(count)
    }
}

impl DeadLetterSink for KafkaDeadLetters {
    fn system(&self) -> &'static str {
        "kafka"
    }

    fn publish<'a>(
        &'a self,
        record: &'a Record,
        group: &'a str,
        reason: &'a DeadLetterReason,
    ) -> DeadLetterFuture<'a> {
        Box::pin(async move {
            let topic = self.kafka.dead_letter_topic(record.topic);
            let partitions = self.partition_count(&topic).await?;
            let headers = self.headers(record, group, reason, &topic).await?;
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (key, value) in &headers {
                owned = owned.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
            let dead_letter = FutureRecord::<[u8], [u8]> {
                topic: &topic,
                partition: (record.partition < partitions).then_some(record.partition),
                payload: record.value(),
                key: record.key(),
                timestamp: None,
                headers: Some(owned),
            };
            self.producer(&topic)?
                .send(dead_letter, Timeout::After(PUBLISH_TIMEOUT))
                .await
                .map(drop)
                .map_err(|(error, _)| DeadLetterError::transport(&topic, error))
        })
    }
}

impl DeadLetter {
    /// Reads a record consumed from a dead-letter topic; an error when its dead-letter headers
    /// are missing or not in Spring's encoding.
    pub fn from_message(message: &BorrowedMessage<'_>) -> Result<Self, DeadLetterHeaderError> {
        let headers = headers(message);
        let info = decode_dead_letter_headers(
            headers.iter().map(|(name, value)| (name.as_ref(), *value)),
        )?;
        Ok(DeadLetter {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .filter(|(name, _)| !is_dead_letter_header(name))
                .map(|(name, value)| (name.to_string(), value.map(<[u8]>::to_vec)))
                .collect(),
            info,
        })
    }
}
