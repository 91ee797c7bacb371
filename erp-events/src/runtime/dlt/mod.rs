//! The dead-letter topic: where records go that cannot be handled, with the reason.

mod dead_letter;
pub(crate) mod headers;

pub use dead_letter::DeadLetter;
pub use headers::{
    ATTEMPTS, DECODE_ERROR_TYPE, DeadLetterHeaderError, DeadLetterInfo, EXCEPTION_CAUSE_FQCN,
    EXCEPTION_FQCN, EXCEPTION_MESSAGE, ORIGINAL_CONSUMER_GROUP, ORIGINAL_HEADERS_LOST,
    ORIGINAL_OFFSET, ORIGINAL_PARTITION, ORIGINAL_TIMESTAMP, ORIGINAL_TIMESTAMP_TYPE,
    ORIGINAL_TOPIC, decode_dead_letter_headers, is_dead_letter_header,
};
pub(crate) use headers::{DeadLetterReason, dead_letter_headers};
