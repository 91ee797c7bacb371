//! Where each topic's events travel: through Kafka, or through the in-process bus.

use std::sync::Arc;

use crate::core::config::InProcessTopics;
use crate::runtime::metrics::Metrics;
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
    /// The application's metrics, which publishers report into.
    pub(crate) metrics: Arc<Metrics>,
}

impl Transports {
    /// Everything through `kafka`.
    pub(crate) fn kafka(kafka: &Kafka) -> Self {
        Transports {
            kafka: Some(kafka.clone()),
            bus: InProcessBus::default(),
            in_process: InProcessTopics::None,
            metrics: Arc::default(),
        }
    }

    /// `messaging.system` for `topic`'s transport.
    pub(crate) fn system(&self, topic: &str) -> &'static str {
        if self.is_in_process(topic) {
            "erp_in_process"
        } else {
            "kafka"
        }
    }

    /// Whether `topic` travels in process (every topic does when there is no Kafka).
    pub(crate) fn is_in_process(&self, topic: &str) -> bool {
        self.kafka.is_none() || self.in_process.contains(topic)
    }
}
