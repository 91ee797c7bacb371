//! Dead-letter headers: the original record plus Spring-compatible `kafka_dlt-*` headers.
//!
//! Spring's `DeadLetterPublishingRecoverer` encodings: strings as UTF-8, the partition and the
//! attempt count as 4-byte big-endian integers, the offset and the timestamp as 8-byte
//! big-endian integers. A Spring consumer of `<topic>.DLT` reads our records as its own.

use crate::runtime::record::{Record, Timestamp};

/// The original topic (UTF-8).
pub const ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
/// The original partition (4-byte big-endian).
pub const ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
/// The original offset (8-byte big-endian).
pub const ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
/// The original timestamp in epoch milliseconds (8-byte big-endian).
pub const ORIGINAL_TIMESTAMP: &str = "kafka_dlt-original-timestamp";
/// The original timestamp type, `CreateTime` or `LogAppendTime` (UTF-8).
pub const ORIGINAL_TIMESTAMP_TYPE: &str = "kafka_dlt-original-timestamp-type";
/// The consumer group that gave up (UTF-8).
pub const ORIGINAL_CONSUMER_GROUP: &str = "kafka_dlt-original-consumer-group";
/// The type of the error (UTF-8; Spring writes a Java class name, we a Rust type path).
pub const EXCEPTION_FQCN: &str = "kafka_dlt-exception-fqcn";
/// The reason (UTF-8).
pub const EXCEPTION_MESSAGE: &str = "kafka_dlt-exception-message";
/// The type of the error's cause (UTF-8; Spring writes it beside its listener's wrapper
/// exception, we do not).
pub const EXCEPTION_CAUSE_FQCN: &str = "kafka_dlt-exception-cause-fqcn";
/// How many times the handler ran (4-byte big-endian; Spring's retry-topic attempts header).
pub const ATTEMPTS: &str = "retry_topic-attempts";

/// Why the dead letter lacks the original record's headers (UTF-8; erp-events' own): the record
/// was no longer on Kafka when its headers were read back to dead-letter it (a Kafka listener
/// copies a record's headers only when they may be needed: see `Record::headers_copied`).
pub const ORIGINAL_HEADERS_LOST: &str = "erp_dlt-original-headers-lost";

/// The error type written for records that could not be decoded.
pub const DECODE_ERROR_TYPE: &str = "erp_events::DecodeError";

/// Why a record is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterReason {
    /// The error's type.
    pub error_type: String,
    /// The error's message.
    pub message: String,
    /// How many times the handler ran (0 when the record could not be decoded).
    pub attempts: u32,
}

/// The longest reason written to a dead letter's header: an error quoting a huge value must
/// not make a huge header.
const MAX_REASON_BYTES: usize = 1024;

impl DeadLetterReason {
    /// `error` of type `error_type` after `attempts` runs of the handler, its message cut to
    /// 1 KiB.
    pub fn new(error_type: &str, error: &dyn std::fmt::Display, attempts: u32) -> Self {
        let mut message = error.to_string();
        if message.len() > MAX_REASON_BYTES {
            let mut end = MAX_REASON_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        DeadLetterReason {
            error_type: error_type.to_owned(),
            message,
            attempts,
        }
    }
}

/// What the `kafka_dlt-*` headers of a dead-letter record say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterInfo {
    /// The topic the record was consumed from.
    pub original_topic: String,
    /// Its partition.
    pub original_partition: i32,
    /// Its offset.
    pub original_offset: i64,
    /// Its timestamp (epoch milliseconds), when it had one.
    pub original_timestamp: Option<i64>,
    /// `CreateTime` or `LogAppendTime`, when it had a timestamp.
    pub original_timestamp_type: Option<String>,
    /// The consumer group that dead-lettered it.
    pub consumer_group: String,
    /// The error's type.
    pub error_type: String,
    /// The type of the error's cause, when the writer named one (Spring does).
    pub cause_type: Option<String>,
    /// The reason.
    pub message: String,
    /// How many times the handler ran, when the writer counted (erp-events does, Spring's
    /// `DeadLetterPublishingRecoverer` does not).
    pub attempts: Option<u32>,
    /// Why the original record's headers are missing, when they are
    /// ([`ORIGINAL_HEADERS_LOST`]).
    pub original_headers_lost: Option<String>,
}

/// A dead-letter header is missing or not in Spring's encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterHeaderError {
    /// A required header is absent (or null).
    #[error("dead-letter header `{0}` is missing")]
    Missing(&'static str),
    /// A header has the wrong length or is not UTF-8.
    #[error("dead-letter header `{0}` is not in Spring's encoding")]
    Malformed(&'static str),
}

/// The headers of the dead-letter record for `record`: its own headers `originals` (minus any
/// earlier dead-letter headers, so a record dead-lettered twice carries one set), then ours.
pub fn dead_letter_headers<'a>(
    originals: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
    record: &Record,
    group: &str,
    reason: &DeadLetterReason,
) -> Vec<(String, Option<Vec<u8>>)> {
    let mut headers: Vec<(String, Option<Vec<u8>>)> = originals
        .filter(|(key, _)| !is_dead_letter_header(key))
        .map(|(key, value)| (key.to_owned(), value.map(<[u8]>::to_vec)))
        .collect();
    let mut add = |key: &str, value: Vec<u8>| headers.push((key.to_owned(), Some(value)));
    add(ORIGINAL_TOPIC, record.topic.as_bytes().to_vec());
    add(ORIGINAL_PARTITION, record.partition.to_be_bytes().to_vec());
    add(ORIGINAL_OFFSET, record.offset.to_be_bytes().to_vec());
    let (millis, kind) = match record.timestamp {
        Timestamp::CreateTime(ms) => (Some(ms), "CreateTime"),
        Timestamp::LogAppendTime(ms) => (Some(ms), "LogAppendTime"),
        Timestamp::NotAvailable => (None, ""),
    };
    if let Some(millis) = millis {
        add(ORIGINAL_TIMESTAMP, millis.to_be_bytes().to_vec());
        add(ORIGINAL_TIMESTAMP_TYPE, kind.as_bytes().to_vec());
    }
    add(ORIGINAL_CONSUMER_GROUP, group.as_bytes().to_vec());
    add(EXCEPTION_FQCN, reason.error_type.as_bytes().to_vec());
    add(EXCEPTION_MESSAGE, reason.message.as_bytes().to_vec());
    add(ATTEMPTS, reason.attempts.to_be_bytes().to_vec());
    headers
}

/// Whether `name` is a header a dead-letter writer adds (ours or Spring's), not one of the
/// original record's.
pub fn is_dead_letter_header(name: &str) -> bool {
    name.starts_with("kafka_dlt-") || name == ATTEMPTS || name == ORIGINAL_HEADERS_LOST
}

/// Reads the dead-letter headers of a record (the last occurrence of each wins).
pub fn decode_dead_letter_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Result<DeadLetterInfo, DeadLetterHeaderError> {
    let headers: Vec<(&str, Option<&[u8]>)> = headers.into_iter().collect();
    let find = |name: &'static str| {
        headers
            .iter()
            .rev()
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| *value)
    };
    let required = |name| find(name).ok_or(DeadLetterHeaderError::Missing(name));
    let text = |name, bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DeadLetterHeaderError::Malformed(name))
    };
    let fixed = |name, bytes: &[u8]| -> Result<[u8; 8], DeadLetterHeaderError> {
        bytes
            .try_into()
            .map_err(|_| DeadLetterHeaderError::Malformed(name))
    };
    let int = |name, bytes: &[u8]| -> Result<[u8; 4], DeadLetterHeaderError> {
        bytes
            .try_into()
            .map_err(|_| DeadLetterHeaderError::Malformed(name))
    };
    Ok(DeadLetterInfo {
        original_topic: text(ORIGINAL_TOPIC, required(ORIGINAL_TOPIC)?)?,
        original_partition: i32::from_be_bytes(int(
            ORIGINAL_PARTITION,
            required(ORIGINAL_PARTITION)?,
        )?),
        original_offset: i64::from_be_bytes(fixed(ORIGINAL_OFFSET, required(ORIGINAL_OFFSET)?)?),
        original_timestamp: find(ORIGINAL_TIMESTAMP)
            .map(|bytes| fixed(ORIGINAL_TIMESTAMP, bytes).map(i64::from_be_bytes))
            .transpose()?,
        original_timestamp_type: find(ORIGINAL_TIMESTAMP_TYPE)
            .map(|bytes| text(ORIGINAL_TIMESTAMP_TYPE, bytes))
            .transpose()?,
        consumer_group: text(ORIGINAL_CONSUMER_GROUP, required(ORIGINAL_CONSUMER_GROUP)?)?,
        error_type: text(EXCEPTION_FQCN, required(EXCEPTION_FQCN)?)?,
        cause_type: find(EXCEPTION_CAUSE_FQCN)
            .map(|bytes| text(EXCEPTION_CAUSE_FQCN, bytes))
            .transpose()?,
        message: text(EXCEPTION_MESSAGE, required(EXCEPTION_MESSAGE)?)?,
        attempts: find(ATTEMPTS)
            .map(|bytes| int(ATTEMPTS, bytes).map(u32::from_be_bytes))
            .transpose()?,
        original_headers_lost: find(ORIGINAL_HEADERS_LOST)
            .map(|bytes| text(ORIGINAL_HEADERS_LOST, bytes))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let headers = [
            ("traceparent", Some(&b"00-ab-cd-01"[..])),
            (EXCEPTION_MESSAGE, Some(&b"an older failure"[..])),
        ];
        Record::new(
            ("erp.inventory.movements", 2, 41),
            Some(b"SKU-1"),
            Some(b"{}"),
            headers.into_iter(),
            Timestamp::CreateTime(1_770_814_800_123),
        )
    }

    fn as_refs(headers: &[(String, Option<Vec<u8>>)]) -> Vec<(&str, Option<&[u8]>)> {
        headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect()
    }

    #[test]
    fn headers_use_springs_encodings_and_round_trip() {
        let reason = DeadLetterReason {
            error_type: "erp_demo::IndexDown".into(),
            message: "index unavailable".into(),
            attempts: 4,
        };
        let record = record();
        let headers = dead_letter_headers(record.headers(), &record, "search-sync", &reason);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .unwrap()
                .1
                .clone()
                .unwrap()
        };
        assert_eq!(get(ORIGINAL_PARTITION), [0, 0, 0, 2]);
        assert_eq!(get(ORIGINAL_OFFSET), [0, 0, 0, 0, 0, 0, 0, 41]);
        assert_eq!(get(ORIGINAL_TIMESTAMP), 1_770_814_800_123i64.to_be_bytes());
        assert_eq!(get(ORIGINAL_TIMESTAMP_TYPE), b"CreateTime");
        assert_eq!(get("traceparent"), b"00-ab-cd-01");
        assert_eq!(
            headers
                .iter()
                .filter(|(k, _)| k == EXCEPTION_MESSAGE)
                .count(),
            1
        );

        let info = decode_dead_letter_headers(as_refs(&headers)).unwrap();
        assert_eq!(
            info,
            DeadLetterInfo {
                original_topic: "erp.inventory.movements".into(),
                original_partition: 2,
                original_offset: 41,
                original_timestamp: Some(1_770_814_800_123),
                original_timestamp_type: Some("CreateTime".into()),
                consumer_group: "search-sync".into(),
                error_type: "erp_demo::IndexDown".into(),
                cause_type: None,
                message: "index unavailable".into(),
                attempts: Some(4),
                original_headers_lost: None,
            }
        );
    }

    #[test]
    fn headers_lost_are_read_and_not_carried_to_a_second_dead_letter() {
        let reason = DeadLetterReason {
            error_type: "erp_demo::IndexDown".into(),
            message: "index unavailable".into(),
            attempts: 1,
        };
        let lost = "offset 41 of erp.inventory.movements-2 is no longer on Kafka";
        let no_headers = std::iter::empty();
        let mut headers = dead_letter_headers(no_headers, &record(), "g", &reason);
        headers.push((ORIGINAL_HEADERS_LOST.into(), Some(lost.into())));
        let info = decode_dead_letter_headers(as_refs(&headers)).unwrap();
        assert_eq!(info.original_headers_lost.as_deref(), Some(lost));
        let again = dead_letter_headers(as_refs(&headers).into_iter(), &record(), "g", &reason);
        assert!(again.iter().all(|(name, _)| name != ORIGINAL_HEADERS_LOST));
    }

    #[test]
    fn decoding_rejects_missing_and_misencoded_headers() {
        let reason = DeadLetterReason {
            error_type: DECODE_ERROR_TYPE.into(),
            message: "the record value is empty".into(),
            attempts: 0,
        };
        let record = record();
        let headers = dead_letter_headers(record.headers(), &record, "g", &reason);
        let without = |name: &str| {
            let kept: Vec<_> = headers.iter().filter(|(k, _)| k != name).cloned().collect();
            decode_dead_letter_headers(as_refs(&kept))
        };
        assert_eq!(
            without(ORIGINAL_TOPIC).unwrap_err(),
            DeadLetterHeaderError::Missing(ORIGINAL_TOPIC)
        );
        // Spring writes no attempt count.
        assert_eq!(without(ATTEMPTS).unwrap().attempts, None);
        let mut bad = as_refs(&headers);
        bad.push((ORIGINAL_PARTITION, Some(&[0, 2])));
        assert_eq!(
            decode_dead_letter_headers(bad).unwrap_err(),
            DeadLetterHeaderError::Malformed(ORIGINAL_PARTITION)
        );
        let mut bad = as_refs(&headers);
        bad.push((EXCEPTION_MESSAGE, Some(&[0xff])));
        assert_eq!(
            decode_dead_letter_headers(bad).unwrap_err(),
            DeadLetterHeaderError::Malformed(EXCEPTION_MESSAGE)
        );
    }
}
