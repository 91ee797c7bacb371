//! Internals for tests and fuzzing (the `test-util` feature, as tokio's): building records and
//! dead-letter headers by hand, and fault injection on the embedded broker. Not a stable API.

use crate::runtime::record::{Record, Timestamp};

pub use crate::runtime::dlt::headers::{DeadLetterReason, dead_letter_headers};
pub use crate::runtime::fault::KILL_WORKER_MARKER;

/// A record with the given parts, as a transport would deliver it.
pub fn record<'a>(
    (topic, partition, offset): (&'static str, i32, i64),
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + Clone,
    timestamp: Timestamp,
) -> Record {
    Record::new((topic, partition, offset), key, value, headers, timestamp)
}
