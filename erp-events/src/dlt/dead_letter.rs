//! A dead-letter record read back, whoever wrote it: erp-events or Spring's
//! `DeadLetterPublishingRecoverer`.

use rdkafka::Message;
use rdkafka::message::Headers;

use super::headers::{
    DeadLetterHeaderError, DeadLetterInfo, decode_dead_letter_headers, is_dead_letter_header,
};

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
    /// Reads a record consumed from a dead-letter topic; an error when its dead-letter headers
    /// are missing or not in Spring's encoding.
    pub fn from_message(message: &impl Message) -> Result<Self, DeadLetterHeaderError> {
        let headers: Vec<(&str, Option<&[u8]>)> = message
            .headers()
            .map(|headers| headers.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default();
        let info = decode_dead_letter_headers(headers.iter().copied())?;
        Ok(DeadLetter {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: headers
                .into_iter()
                .filter(|(name, _)| !is_dead_letter_header(name))
                .map(|(name, value)| (name.to_owned(), value.map(<[u8]>::to_vec)))
                .collect(),
            info,
        })
    }

    /// The key as UTF-8 text, when it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
    }
}
