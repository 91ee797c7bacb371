//! The connection to Kafka: the embedded broker or a real one, as the configuration says.

use std::sync::Arc;

use rdkafka::ClientConfig;

use crate::catalog::Catalog;
use crate::config::Brokers;
use crate::embedded::{EmbeddedBroker, EmbeddedError};
use crate::publisher::{PublishError, Publisher};
use crate::transport::Transports;

/// A Kafka cluster to publish to and listen on. Cloning shares the cluster (an embedded broker
/// lives until the last clone is dropped).
#[derive(Debug, Clone)]
pub struct Kafka {
    bootstrap: String,
    embedded: Option<Arc<EmbeddedBroker>>,
    catalog: Arc<Catalog>,
}

impl Kafka {
    /// Connects to `brokers`, starting the embedded broker with the catalog's topics when the
    /// configuration asks for it. A real broker is reached lazily, on first use.
    pub fn connect(brokers: &Brokers, catalog: &Catalog) -> Result<Self, EmbeddedError> {
        match brokers {
            Brokers::Embedded => Ok(Self::on_embedded(EmbeddedBroker::start(catalog)?, catalog)),
            Brokers::External(bootstrap) => Ok(Kafka {
                bootstrap: bootstrap.clone(),
                embedded: None,
                catalog: Arc::new(catalog.clone()),
            }),
        }
    }

    /// The cluster of an embedded broker whose topics were created by hand (`catalog` still
    /// names the dead-letter topics).
    pub fn on_embedded(broker: EmbeddedBroker, catalog: &Catalog) -> Self {
        Kafka {
            bootstrap: broker.bootstrap_servers().to_owned(),
            embedded: Some(Arc::new(broker)),
            catalog: Arc::new(catalog.clone()),
        }
    }

    /// Where `topic`'s dead letters go: its dead-letter topic in the catalog.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        self.catalog.dead_letter_topic(topic)
    }

    /// The `bootstrap.servers` of the cluster.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The embedded broker, when this is one (to create topics or simulate outages).
    pub fn embedded(&self) -> Option<&EmbeddedBroker> {
        self.embedded.as_deref()
    }

    /// A client configuration pointing at this cluster, for the framework's own clients and for
    /// hand-written ones.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    /// The configuration of every producer the framework creates: idempotent, acknowledged by
    /// all in-sync replicas, and keyed records on the partition Java's client picks
    /// (`murmur2_random`), so that a Kotlin and a Rust service publishing one key keep its order.
    pub(crate) fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("client.id", client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random");
        config
    }

    /// The consumer configuration the framework's listeners use for `group` (at-least-once:
    /// offsets stored only after handling, committed by librdkafka), for hand-written consumers
    /// that should behave the same.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        crate::consumer::consumer_config(self, group)
    }

    /// A publisher whose envelopes name `source` as the publishing service.
    pub fn publisher(&self, source: &str) -> Result<Publisher, PublishError> {
        Publisher::new(self, source)
    }

    /// A publisher whose producer also gets the librdkafka `properties` (e.g.
    /// `message.timeout.ms`, how long a record may wait for an unreachable broker).
    pub fn publisher_with_config(
        &self,
        source: &str,
        properties: &[(&str, &str)],
    ) -> Result<Publisher, PublishError> {
        Publisher::on(Transports::kafka(self), source, properties)
    }
}
