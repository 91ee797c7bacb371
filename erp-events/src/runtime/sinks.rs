//! What a partition worker hands back to its transport: progress and dead letters.

use std::future::Future;
use std::pin::Pin;

use crate::runtime::dlt::DeadLetterReason;
use crate::runtime::record::Record;

/// Where a worker reports that every record up to `offset` is handled or dead-lettered.
pub(crate) trait OffsetSink: Send + Sync + 'static {
    /// Records that `offset` (and everything before it in the partition) is done.
    fn store(&self, topic: &'static str, partition: i32, offset: i64);
}

/// A boxed dead-letter publication.
pub(crate) type DeadLetterFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), DeadLetterError>> + Send + 'a>>;

/// Publishing a dead letter failed; the worker keeps the record and tries again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeadLetterError {
    /// The dead-letter topic does not exist.
    #[error("dead-letter topic `{topic}` does not exist; provision the catalog's topics first")]
    MissingTopic { topic: String },
    /// The transport refused or failed the publication (its client's error is the source).
    #[error("cannot publish to `{topic}`: {source}")]
    Transport {
        topic: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DeadLetterError {
    /// The transport failed to publish to `topic`.
    pub(crate) fn transport(
        topic: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DeadLetterError::Transport {
            topic: topic.to_owned(),
            source: source.into(),
        }
    }
}

/// Where dead letters go: `<topic>.DLT` on Kafka, a list in process.
pub(crate) trait DeadLetterSink: Send + Sync + 'static {
    /// The transport, as OpenTelemetry's `messaging.system` names it.
    fn system(&self) -> &'static str;

    /// Publishes `record` to the dead-letter topic of `record.topic`, with its own headers
    /// and the dead-letter ones saying that `group` gave it up for `reason`.
    fn publish<'a>(
        &'a self,
        record: &'a Record,
        group: &'a str,
        reason: &'a DeadLetterReason,
    ) -> DeadLetterFuture<'a>;
}
