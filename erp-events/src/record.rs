//! A consumed record, independent of the transport that delivered it.

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers};

pub use rdkafka::Timestamp;

/// One consumed record: what Kafka (or the in-process transport) delivered, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The topic.
    pub topic: &'static str,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record value (the envelope).
    pub value: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record timestamp.
    pub timestamp: Timestamp,
}

impl Record {
    /// Copies a message received from Kafka; `topic` is the listener's (same text, static).
    pub fn from_kafka(topic: &'static str, message: &BorrowedMessage<'_>) -> Self {
        Record {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            timestamp: message.timestamp(),
        }
    }

    /// The last header named `name`, as UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| std::str::from_utf8(value.as_deref()?).ok())
    }
}
