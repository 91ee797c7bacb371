//! Kafka's records as the runtime reads them: in place from a partition queue, copied only on
//! their way to the dead-letter topic.

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers};

use crate::core::trace::TRACEPARENT;
use crate::runtime::record::{ConsumedRecord, Record, Timestamp, last_header_str};

impl ConsumedRecord for BorrowedMessage<'_> {
    fn offset(&self) -> i64 {
        Message::offset(self)
    }

    fn value(&self) -> Option<&[u8]> {
        self.payload()
    }

    fn traceparent(&self) -> Option<&str> {
        let headers = self
            .headers()?
            .iter()
            .map(|header| (header.key, header.value));
        last_header_str(headers, TRACEPARENT)
    }

    fn to_record(&self, topic: &'static str) -> Record {
        copy(topic, self)
    }
}

/// Copies a message received from Kafka; `topic` is the listener's (same text, static).
fn copy(topic: &'static str, message: &BorrowedMessage<'_>) -> Record {
    let headers = message.headers();
    let header_list = (0..headers.map_or(0, |h| h.count())).filter_map(move |index| {
        let header = headers?.try_get(index)?;
        Some((header.key, header.value))
    });
    Record::new(
        (topic, message.partition(), Message::offset(message)),
        message.key(),
        message.payload(),
        header_list,
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
