//! Kafka's records as the runtime reads them: copied once, as the consumer polls them, into the
//! owned form every transport hands its workers (a run of them into one buffer). Holding
//! librdkafka's message instead would keep its whole fetch response in memory until the last
//! record of it is handled, beyond any budget.

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

use crate::runtime::record::{RunBuffer, Timestamp};
use crate::transport::kafka::headers::each_header;

/// Copies a message received from Kafka to the end of `run`; `topic` is the listener's (same
/// text, static).
pub(crate) fn copy_into(run: &mut RunBuffer, topic: &'static str, message: &BorrowedMessage<'_>) {
    run.push(
        (topic, message.partition(), message.offset()),
        message.key(),
        message.payload(),
        each_header(message),
        timestamp(message.timestamp()),
    );
}

/// A Kafka timestamp as the runtime keeps it.
fn timestamp(timestamp: rdkafka::Timestamp) -> Timestamp {
    match timestamp {
        rdkafka::Timestamp::NotAvailable => Timestamp::NotAvailable,
        rdkafka::Timestamp::CreateTime(ms) => Timestamp::CreateTime(ms),
        rdkafka::Timestamp::LogAppendTime(ms) => Timestamp::LogAppendTime(ms),
    }
}
