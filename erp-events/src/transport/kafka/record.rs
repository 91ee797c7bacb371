//! Kafka's records as the runtime reads them: in place from a partition queue, copied only on
//! their way to the dead-letter topic.

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

use crate::core::trace::TRACEPARENT;
use crate::runtime::record::{ConsumedRecord, Record, Timestamp};
use crate::transport::kafka::headers::headers;

impl ConsumedRecord for BorrowedMessage<'_> {
    fn offset(&self) -> i64 {
        Message::offset(self)
    }

    fn value(&self) -> Option<&[u8]> {
        self.payload()
    }

    fn key(&self) -> Option<&[u8]> {
        Message::key(self)
    }

    fn traceparent(&self) -> Option<&str> {
        let value = headers(self)
            .into_iter()
            .rev()
            .find(|(name, _)| name == TRACEPARENT)?
            .1?;
        std::str::from_utf8(value).ok()
    }

    fn to_record(&self, topic: &'static str) -> Record {
        copy(topic, self)
    }
}

/// Copies a message received from Kafka; `topic` is the listener's (same text, static).
fn copy(topic: &'static str, message: &BorrowedMessage<'_>) -> Record {
    let headers = headers(message);
    Record::new(
        (topic, message.partition(), Message::offset(message)),
        Message::key(message),
        message.payload(),
        headers.iter().map(|(name, value)| (name.as_ref(), *value)),
        timestamp(message.timestamp()),
    )
}

/// A Kafka timestamp as the runtime keeps it.
pub(crate) fn timestamp(timestamp: rdkafka::Timestamp) -> Timestamp {
    match timestamp {
        rdkafka::Timestamp::NotAvailable => Timestamp::NotAvailable,
        rdkafka::Timestamp::CreateTime(ms) => Timestamp::CreateTime(ms),
        rdkafka::Timestamp::LogAppendTime(ms) => Timestamp::LogAppendTime(ms),
    }
}
