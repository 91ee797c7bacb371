//! A consumed record, independent of the transport that delivered it.

use std::ops::Range;

use crate::core::trace::TRACEPARENT;

/// Where one header's name and value lie in a record's buffer.
type HeaderSpan = (Range<u32>, Option<Range<u32>>);

/// A record as a partition worker reads it: in place from Kafka's partition queue, or owned
/// from the in-process transport. Its headers are read only when needed (librdkafka parses
/// them on first access), and it is copied only when it is dead-lettered.
pub(crate) trait ConsumedRecord {
    /// The offset in the partition.
    fn offset(&self) -> i64;
    /// The record value (the envelope).
    fn value(&self) -> Option<&[u8]>;
    /// The record key.
    fn key(&self) -> Option<&[u8]>;
    /// The last `traceparent` header, as UTF-8.
    fn traceparent(&self) -> Option<&str>;
    /// An owned copy; `topic` is the listener's (same text, static).
    fn to_record(&self, topic: &'static str) -> Record;
}

impl ConsumedRecord for Record {
    fn offset(&self) -> i64 {
        self.offset
    }

    fn value(&self) -> Option<&[u8]> {
        Record::value(self)
    }

    fn key(&self) -> Option<&[u8]> {
        Record::key(self)
    }

    fn traceparent(&self) -> Option<&str> {
        self.header_str(TRACEPARENT)
    }

    fn to_record(&self, _topic: &'static str) -> Record {
        self.clone()
    }
}

/// When a record was written, as its transport says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// The record has no timestamp.
    NotAvailable,
    /// Set by the producer (epoch milliseconds).
    CreateTime(i64),
    /// Set by the broker when it appended the record (epoch milliseconds).
    LogAppendTime(i64),
}

/// One consumed record, owned: what the in-process transport delivered, or a copy of a Kafka
/// record on its way to the dead-letter topic.
///
/// Key, value and headers live in one buffer (a record costs two allocations, not one per
/// part).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The topic.
    pub topic: &'static str,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The record timestamp.
    pub timestamp: Timestamp,
    bytes: Box<[u8]>,
    key: Option<Range<u32>>,
    value: Option<Range<u32>>,
    headers: Box<[HeaderSpan]>,
}

impl Record {
    /// A record with the given parts.
    pub(crate) fn new<'a>(
        (topic, partition, offset): (&'static str, i32, i64),
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + Clone,
        timestamp: Timestamp,
    ) -> Self {
        let header_bytes: usize = headers
            .clone()
            .map(|(name, value)| name.len() + value.map_or(0, <[u8]>::len))
            .sum();
        let size = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + header_bytes;
        let mut bytes = Vec::with_capacity(size);
        let mut append = |part: &[u8]| {
            let start = bytes.len() as u32;
            bytes.extend_from_slice(part);
            start..bytes.len() as u32
        };
        let key = key.map(&mut append);
        let value = value.map(&mut append);
        let headers = headers
            .map(|(name, value)| (append(name.as_bytes()), value.map(&mut append)))
            .collect();
        Record {
            topic,
            partition,
            offset,
            timestamp,
            bytes: bytes.into_boxed_slice(),
            key,
            value,
            headers,
        }
    }

    fn slice(&self, range: &Range<u32>) -> &[u8] {
        &self.bytes[range.start as usize..range.end as usize]
    }

    /// The record key.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_ref().map(|range| self.slice(range))
    }

    /// The record value (the envelope).
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_ref().map(|range| self.slice(range))
    }

    /// The headers, in order (a name that was not UTF-8 was decoded lossily).
    pub fn headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> + '_ {
        self.headers.iter().map(|(name, value)| {
            let name = std::str::from_utf8(self.slice(name)).unwrap_or_default();
            (name, value.as_ref().map(|range| self.slice(range)))
        })
    }

    /// The last header named `name`, as UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers()
            .filter(|(key, _)| *key == name)
            .last()
            .and_then(|(_, value)| std::str::from_utf8(value?).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_as_given() {
        let headers = [
            ("traceparent", Some(&b"00-ab"[..])),
            ("empty", None),
            ("traceparent", Some(&b"00-cd"[..])),
        ];
        let record = Record::new(
            ("erp.audit.events", 2, 7),
            Some(b"key"),
            None,
            headers.iter().copied(),
            Timestamp::CreateTime(5),
        );
        assert_eq!(record.key(), Some(&b"key"[..]));
        assert_eq!(record.value(), None);
        assert_eq!(record.headers().collect::<Vec<_>>(), headers);
        assert_eq!(record.header_str("traceparent"), Some("00-cd"));
        assert_eq!(record.header_str("missing"), None);
    }
}
