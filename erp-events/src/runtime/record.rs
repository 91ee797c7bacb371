//! A consumed record, independent of the transport that delivered it.

use std::ops::Range;

/// Room for headers when a record's buffer is sized (a `traceparent` takes 74 bytes).
const HEADER_ROOM: usize = 128;
/// The length written for a header without a value.
const NO_VALUE: u32 = u32::MAX;

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

/// One consumed record, owned: what a transport hands its workers, and what is copied to the
/// dead-letter topic.
///
/// Key, value and headers live in one buffer, so a record costs one allocation: the key and
/// value first, then each header as its name's length (`u32`, little-endian), the name, its
/// value's length (`u32::MAX` for none) and the value.
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
    bytes: Vec<u8>,
    key: Option<Range<u32>>,
    value: Option<Range<u32>>,
    headers_start: u32,
}

impl Record {
    /// A record with the given parts.
    pub(crate) fn new<'a, N: AsRef<str>>(
        (topic, partition, offset): (&'static str, i32, i64),
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (N, Option<&'a [u8]>)>,
        timestamp: Timestamp,
    ) -> Self {
        let size = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + HEADER_ROOM;
        let mut bytes = Vec::with_capacity(size);
        let mut append = |part: &[u8]| {
            let start = bytes.len() as u32;
            bytes.extend_from_slice(part);
            start..bytes.len() as u32
        };
        let key = key.map(&mut append);
        let value = value.map(&mut append);
        let headers_start = bytes.len() as u32;
        for (name, value) in headers {
            let name = name.as_ref();
            bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            let length = value.map_or(NO_VALUE, |value| value.len() as u32);
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(value.unwrap_or_default());
        }
        Record {
            topic,
            partition,
            offset,
            timestamp,
            bytes,
            key,
            value,
            headers_start,
        }
    }

    /// The bytes of its key, value and headers.
    pub(crate) fn size(&self) -> usize {
        self.bytes.len()
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
        let mut rest = &self.bytes[self.headers_start as usize..];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let mut take = |count: usize| -> &[u8] {
                let (taken, left) = rest.split_at(count);
                rest = left;
                taken
            };
            let length = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
            let name_length = length(take(4)) as usize;
            let name = std::str::from_utf8(take(name_length)).unwrap_or_default();
            let value = match length(take(4)) {
                NO_VALUE => None,
                value_length => Some(take(value_length as usize)),
            };
            Some((name, value))
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
