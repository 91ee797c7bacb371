//! A consumed record, independent of the transport that delivered it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

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
/// Key, value and headers live in one buffer: the key and value first, then each header as its
/// name's length (`u32`, little-endian), the name, its value's length (`u32::MAX` for none) and
/// the value. Records copied one after another into one run buffer share it, so a run costs
/// one allocation, not one per record.
#[derive(Clone)]
pub struct Record {
    /// The topic.
    pub topic: &'static str,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The record timestamp.
    pub timestamp: Timestamp,
    bytes: Arc<Vec<u8>>,
    parts: Parts,
}

/// Where a record's key, value and headers are in its buffer.
#[derive(Clone)]
struct Parts {
    key: Option<Range<u32>>,
    value: Option<Range<u32>>,
    /// The headers; the record ends where they do.
    headers: Range<u32>,
    /// Whether the transport copied the headers (else they are left at the source).
    headers_copied: bool,
}

impl Parts {
    /// Appends a record's key, value and headers (`None`: left at the source) to `bytes`, and
    /// says where they are.
    fn append<'a, N: AsRef<str>>(
        bytes: &mut Vec<u8>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<impl Iterator<Item = (N, Option<&'a [u8]>)>>,
    ) -> Self {
        let mut append = |part: &[u8]| {
            let start = bytes.len() as u32;
            bytes.extend_from_slice(part);
            start..bytes.len() as u32
        };
        let key = key.map(&mut append);
        let value = value.map(&mut append);
        let headers_start = bytes.len() as u32;
        let headers_copied = headers.is_some();
        for (name, value) in headers.into_iter().flatten() {
            let name = name.as_ref();
            bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            let length = value.map_or(NO_VALUE, |value| value.len() as u32);
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(value.unwrap_or_default());
        }
        Parts {
            key,
            value,
            headers: headers_start..bytes.len() as u32,
            headers_copied,
        }
    }

    /// The bytes of the record's key, value and headers (laid out in that order).
    fn size(&self) -> usize {
        let first = self.key.as_ref().or(self.value.as_ref());
        let start = first.map_or(self.headers.start, |range| range.start);
        (self.headers.end - start) as usize
    }
}

/// The bytes a record of this key and value is expected to take, headers included.
fn expected_size(key: Option<&[u8]>, value: Option<&[u8]>) -> usize {
    key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + HEADER_ROOM
}

/// Where a record is: its topic, partition and offset.
pub(crate) type Coordinates = (&'static str, i32, i64);

impl Record {
    /// A record with the given parts, in a buffer of its own.
    pub(crate) fn new<'a, N: AsRef<str>>(
        (topic, partition, offset): Coordinates,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (N, Option<&'a [u8]>)>,
        timestamp: Timestamp,
    ) -> Self {
        let mut bytes = Vec::with_capacity(expected_size(key, value));
        let parts = Parts::append(&mut bytes, key, value, Some(headers));
        Record::in_buffer(
            Arc::new(bytes),
            ((topic, partition, offset), timestamp, parts),
        )
    }

    /// The record whose parts are at `parts` in `bytes`.
    fn in_buffer(
        bytes: Arc<Vec<u8>>,
        ((topic, partition, offset), timestamp, parts): (Coordinates, Timestamp, Parts),
    ) -> Self {
        Record {
            topic,
            partition,
            offset,
            timestamp,
            bytes,
            parts,
        }
    }

    /// The bytes of its key, value and headers.
    pub(crate) fn size(&self) -> usize {
        self.parts.size()
    }

    fn slice(&self, range: &Range<u32>) -> &[u8] {
        &self.bytes[range.start as usize..range.end as usize]
    }

    /// The record key.
    pub fn key(&self) -> Option<&[u8]> {
        self.parts.key.as_ref().map(|range| self.slice(range))
    }

    /// The record value (the envelope).
    pub fn value(&self) -> Option<&[u8]> {
        self.parts.value.as_ref().map(|range| self.slice(range))
    }

    /// The headers, in order (a name that was not UTF-8 was decoded lossily); none when the
    /// transport left them at the source (see [`Record::headers_copied`]).
    pub fn headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> + '_ {
        let mut rest = self.slice(&self.parts.headers);
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

    /// Whether [`Record::headers`] are the record's: a Kafka consumer leaves a record's headers
    /// unread when its envelope names its trace (reading them is a tenth of a record's cost), and
    /// reads them from Kafka again if the record is dead-lettered.
    pub fn headers_copied(&self) -> bool {
        self.parts.headers_copied
    }

    /// The last header named `name`, as UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers()
            .filter(|(key, _)| *key == name)
            .last()
            .and_then(|(_, value)| std::str::from_utf8(value?).ok())
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        (self.topic, self.partition, self.offset, self.timestamp)
            == (other.topic, other.partition, other.offset, other.timestamp)
            && self.key() == other.key()
            && self.value() == other.value()
            && self.slice(&self.parts.headers) == other.slice(&other.parts.headers)
            && self.headers_copied() == other.headers_copied()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("key", &self.key())
            .field("value", &self.value())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("headers_copied", &self.headers_copied())
            .finish()
    }
}

/// The most a [`RunBuffer`] reserves up front.
const MOST_RESERVED: usize = 64 * 1024;

/// The most records in one run.
pub(crate) const RUN_RECORDS: usize = 64;

/// The bytes past which a run takes no more records: what it holds counts against its
/// consumer's budget only once it is handed over, and positions in its buffer are `u32` (one
/// record is under 2 GiB, Kafka's sizes being `i32`).
const RUN_BYTES: usize = 1024 * 1024;

/// Records copied one after another into one buffer, which the records it becomes share: one
/// allocation for a run of records instead of one each.
pub(crate) struct RunBuffer {
    bytes: Vec<u8>,
    records: Vec<(Coordinates, Timestamp, Parts)>,
}

impl RunBuffer {
    /// An empty run.
    pub(crate) fn new() -> Self {
        RunBuffer {
            bytes: Vec::new(),
            records: Vec::with_capacity(RUN_RECORDS),
        }
    }

    /// Whether the run takes no more records: it holds 64, or more than 1 MiB.
    pub(crate) fn is_full(&self) -> bool {
        self.records.len() >= RUN_RECORDS || self.bytes.len() > RUN_BYTES
    }

    /// Copies in a record with the given parts (its headers: `None` when left at the source).
    /// The first one sizes the buffer for the run, taking the others to be about as large.
    pub(crate) fn push<'a, N: AsRef<str>>(
        &mut self,
        coordinates: Coordinates,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<impl Iterator<Item = (N, Option<&'a [u8]>)>>,
        timestamp: Timestamp,
    ) {
        if self.bytes.capacity() == 0 {
            let one = expected_size(key, value);
            let run = one * self.records.capacity();
            self.bytes.reserve(run.min(MOST_RESERVED).max(one));
        }
        let parts = Parts::append(&mut self.bytes, key, value, headers);
        self.records.push((coordinates, timestamp, parts));
    }

    /// The records, in the order they were pushed.
    pub(crate) fn into_records(mut self) -> Vec<Record> {
        // What the run did not use is given back (in place): the memory is what the budget
        // counts.
        self.bytes.shrink_to_fit();
        let bytes = Arc::new(self.bytes);
        self.records
            .into_iter()
            .map(|placed| Record::in_buffer(bytes.clone(), placed))
            .collect()
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

    #[test]
    fn a_record_whose_headers_were_left_at_the_source_says_so() {
        let mut run = RunBuffer::new();
        /// No headers to copy.
        type Unread<'a> = std::iter::Empty<(&'a str, Option<&'a [u8]>)>;
        let unread: Option<Unread> = None;
        run.push(
            ("t", 0, 3),
            None,
            Some(b"v"),
            unread,
            Timestamp::NotAvailable,
        );
        let no_headers: [(&str, Option<&[u8]>); 0] = [];
        run.push(
            ("t", 0, 4),
            None,
            Some(b"v"),
            Some(no_headers.into_iter()),
            Timestamp::NotAvailable,
        );
        let records = run.into_records();
        assert!(!records[0].headers_copied());
        assert_eq!(records[0].headers().count(), 0);
        assert!(records[1].headers_copied());
    }

    #[test]
    fn a_run_gives_back_each_record_as_given_in_one_shared_buffer() {
        /// A record's key, value and headers.
        type Given<'a> = (
            Option<&'a [u8]>,
            Option<&'a [u8]>,
            &'a [(&'a str, Option<&'a [u8]>)],
        );
        let parts: [Given; 3] = [
            (
                Some(b"a"),
                Some(b"{\"first\":1}"),
                &[("traceparent", Some(b"00-ab"))],
            ),
            (None, Some(&[7; 300]), &[]),
            (Some(b"c"), None, &[("empty", None), ("x", Some(b""))]),
        ];
        let mut run = RunBuffer::new();
        for (offset, (key, value, headers)) in (10..).zip(parts) {
            let timestamp = Timestamp::LogAppendTime(offset);
            run.push(
                ("t", 1, offset),
                key,
                value,
                Some(headers.iter().copied()),
                timestamp,
            );
        }
        assert_eq!(run.records.len(), 3);
        let records = run.into_records();
        for ((offset, (key, value, headers)), record) in (10..).zip(parts).zip(&records) {
            let timestamp = Timestamp::LogAppendTime(offset);
            let alone = Record::new(
                ("t", 1, offset),
                key,
                value,
                headers.iter().copied(),
                timestamp,
            );
            assert_eq!(*record, alone);
            assert_eq!(record.size(), alone.size());
            assert!(Arc::ptr_eq(&record.bytes, &records[0].bytes));
        }
        // A run far shorter than the room it was given keeps only its bytes.
        let bytes = &records[0].bytes;
        assert_eq!(bytes.capacity(), bytes.len());
    }

    #[test]
    fn a_run_that_outgrew_its_room_keeps_only_its_bytes() {
        let value = [b'v'; 1_000];
        let mut run = RunBuffer::new();
        for offset in 0..64 {
            let headers = [("traceparent", Some(&[b'0'; 55][..]))];
            let timestamp = Timestamp::NotAvailable;
            run.push(
                ("t", 0, offset),
                Some(b"k"),
                Some(&value),
                Some(headers.into_iter()),
                timestamp,
            );
        }
        let records = run.into_records();
        let bytes = &records[0].bytes;
        assert!(bytes.len() > MOST_RESERVED);
        assert_eq!(bytes.capacity(), bytes.len());
    }

    #[test]
    fn a_run_is_full_at_64_records_or_past_a_mebibyte() {
        let push = |run: &mut RunBuffer, value: &[u8]| {
            let headers: [(&str, Option<&[u8]>); 0] = [];
            run.push(
                ("t", 0, 0),
                None,
                Some(value),
                Some(headers.into_iter()),
                Timestamp::NotAvailable,
            );
        };
        let mut run = RunBuffer::new();
        for _ in 0..63 {
            push(&mut run, b"small");
        }
        assert!(!run.is_full());
        push(&mut run, b"small");
        assert!(run.is_full(), "64 records");
        let mut run = RunBuffer::new();
        push(&mut run, &[b'v'; RUN_BYTES]);
        assert!(!run.is_full(), "a mebibyte of value, no more");
        push(&mut run, b"one byte past it");
        assert!(run.is_full(), "two records past a mebibyte");
    }
}
