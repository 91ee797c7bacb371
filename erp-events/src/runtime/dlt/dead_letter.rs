//! A dead-letter record read back, whoever wrote it: erp-events or Spring's
//! `DeadLetterPublishingRecoverer` (read from Kafka by `DeadLetter::from_message`).

use super::headers::DeadLetterInfo;

/// One record of a dead-letter topic: where it sits, the original record's key, value and
/// headers, and what the dead-letter headers say about its origin and its failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter topic.
    pub topic: String,
    /// The dead letter's partition.
    pub partition: i32,
    /// The dead letter's offset.
    pub offset: i64,
    /// The original record's key.
    pub key: Option<Vec<u8>>,
    /// The original record's value, byte for byte.
    pub value: Option<Vec<u8>>,
    /// The original record's headers, without those the dead-letter writer added.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Where the record came from and why it was given up.
    pub info: DeadLetterInfo,
}

impl DeadLetter {
    /// The key as UTF-8 text, when it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
    }
}
