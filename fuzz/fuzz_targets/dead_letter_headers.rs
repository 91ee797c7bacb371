//! Fuzzes the dead-letter headers.
//!
//! Properties: `decode_dead_letter_headers` never panics on any header list; and the headers
//! `dead_letter_headers` writes for any record (with any headers of its own, earlier dead-letter
//! headers included), group and reason decode to exactly the values written.
#![no_main]

use arbitrary::Arbitrary;
use erp_events::Timestamp;
use erp_events::dlt::{DeadLetterInfo, decode_dead_letter_headers};
use erp_events::test_util::{DeadLetterReason, dead_letter_headers, record};
use libfuzzer_sys::fuzz_target;

/// `Record` wants a `&'static str` topic: one of these, rather than leaking one per input.
const TOPICS: [&str; 4] = [
    "erp.inventory.movements",
    "",
    "kafka_dlt-original-topic",
    "τ\u{0}",
];

#[derive(Debug, Arbitrary)]
enum Stamp {
    None,
    Create(i64),
    LogAppend(i64),
}

#[derive(Debug, Arbitrary)]
struct Input {
    headers: Vec<(String, Option<Vec<u8>>)>,
    topic: u8,
    partition: i32,
    offset: i64,
    timestamp: Stamp,
    group: String,
    error_type: String,
    message: String,
    attempts: u32,
}

fuzz_target!(|input: Input| {
    let headers = input
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_deref()));
    let _ = decode_dead_letter_headers(headers.clone());

    let topic = TOPICS[usize::from(input.topic) % TOPICS.len()];
    let (timestamp, millis, kind) = match input.timestamp {
        Stamp::None => (Timestamp::NotAvailable, None, None),
        Stamp::Create(ms) => (Timestamp::CreateTime(ms), Some(ms), Some("CreateTime")),
        Stamp::LogAppend(ms) => (
            Timestamp::LogAppendTime(ms),
            Some(ms),
            Some("LogAppendTime"),
        ),
    };
    let record = record(
        (topic, input.partition, input.offset),
        None,
        None,
        headers,
        timestamp,
    );
    let reason = DeadLetterReason {
        error_type: input.error_type,
        message: input.message,
        attempts: input.attempts,
    };
    let written = dead_letter_headers(record.headers(), &record, &input.group, &reason);
    let decoded = decode_dead_letter_headers(
        written
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_deref())),
    );
    let expected = DeadLetterInfo {
        original_topic: topic.to_owned(),
        original_partition: input.partition,
        original_offset: input.offset,
        original_timestamp: millis,
        original_timestamp_type: kind.map(str::to_owned),
        consumer_group: input.group,
        error_type: reason.error_type,
        cause_type: None,
        message: reason.message,
        attempts: Some(reason.attempts),
        original_headers_lost: None,
    };
    assert_eq!(decoded, Ok(expected));
});
