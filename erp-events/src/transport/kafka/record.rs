//! Kafka's records as the runtime reads them: copied once, as the consumer polls them, into the
//! owned form every transport hands its workers (a run of them into one buffer). Holding
//! librdkafka's message instead would keep its whole fetch response in memory until the last
//! record of it is handled, beyond any budget.
//!
//! A record's headers are copied only when its handling may need them: librdkafka parses them
//! into a list of its own first, a tenth of what the listener spends on a record. The worker
//! reads `traceparent` when the envelope names no trace, or when OpenTelemetry records the
//! spans (they continue the producer's own span), so they are copied then; a dead letter needs
//! them all, and reads them from Kafka again (`read_back`).

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

use crate::core::envelope::named_trace;
use crate::runtime::record::{RunBuffer, Timestamp};
use crate::runtime::worker::records_continue_producers_spans;
use crate::transport::kafka::headers::each_header;

/// Copies a message received from Kafka to the end of `run`; `topic` is the listener's (same
/// text, static).
pub(crate) fn copy_into(run: &mut RunBuffer, topic: &'static str, message: &BorrowedMessage<'_>) {
    let payload = message.payload();
    let headers_needed =
        payload.and_then(named_trace).is_none() || records_continue_producers_spans();
    run.push(
        (topic, message.partition(), message.offset()),
        message.key(),
        payload,
        headers_needed.then(|| each_header(message)),
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
