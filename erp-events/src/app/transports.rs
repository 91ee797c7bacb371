//! Where each topic's events travel: through Kafka, or through the in-process bus.

use crate::core::config::InProcessTopics;
use crate::transport::in_process::InProcessBus;
use crate::transport::kafka::Kafka;

/// The transports of one application and which topics use which.
#[derive(Debug, Clone)]
pub(crate) struct Transports {
    /// Kafka, unless every topic travels in process.
    pub(crate) kafka: Option<Kafka>,
    /// The in-process bus (idle when no topic uses it).
    pub(crate) bus: InProcessBus,
    /// The topics that travel in process.
    pub(crate) in_process: InProcessTopics,
}

impl Transports {
    /// Everything through `kafka`.
    pub(crate) fn kafka(kafka: &Kafka) -> Self {
        Transports {
            kafka: Some(kafka.clone()),
            bus: InProcessBus::default(),
            in_process: InProcessTopics::None,
        }
    }

    /// Whether `topic` travels in process (every topic does when there is no Kafka).
    pub(crate) fn is_in_process(&self, topic: &str) -> bool {
        self.kafka.is_none() || self.in_process.contains(topic)
    }
}
