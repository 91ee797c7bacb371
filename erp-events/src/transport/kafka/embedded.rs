//! The embedded broker: librdkafka's in-process mock cluster, ready for the catalog's topics.

use rdkafka::ClientConfig;
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::types::RDKafkaType;

use crate::core::catalog::Catalog;

/// An in-process Kafka cluster for examples and tests, reachable on loopback by other clients
/// and other processes through [`EmbeddedBroker::bootstrap_servers`].
///
/// Known limits of the mock: no admin CreateTopics (use [`EmbeddedBroker::create_topic`]), only a
/// few MiB kept per partition, and rebalances that wait for `session.timeout.ms`.
pub struct EmbeddedBroker {
    client: Client<DefaultClientContext>,
    bootstrap: String,
}

/// The mock cluster could not be started or changed.
#[derive(Debug, thiserror::Error)]
#[error("embedded broker: {action}: {source}")]
pub struct EmbeddedError {
    action: String,
    source: KafkaError,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster holding every catalog topic and its dead-letter twin.
    pub fn start(catalog: &Catalog) -> Result<Self, EmbeddedError> {
        let broker = Self::new(1)?;
        for topic in catalog.topics() {
            broker.create_topic(&topic.name, topic.partitions)?;
            broker.create_topic(&topic.dead_letter_topic(), topic.partitions)?;
        }
        Ok(broker)
    }

    /// Starts a cluster of `count` brokers without topics.
    pub fn new(count: u16) -> Result<Self, EmbeddedError> {
        let failed = |action: &str| {
            let action = action.to_owned();
            move |source| EmbeddedError { action, source }
        };
        let mut config = ClientConfig::new();
        config.set("test.mock.num.brokers", count.to_string());
        let native = config.create_native_config().map_err(failed("configure"))?;
        let client = Client::new(
            &config,
            native,
            RDKafkaType::RD_KAFKA_PRODUCER,
            DefaultClientContext,
        )
        .map_err(failed("create the mock cluster"))?;
        let bootstrap = {
            let cluster = mock_cluster(&client);
            // The mock's default is a 3 s delay before the first group join; tests and examples
            // start many groups. SAFETY: the pointer is the live cluster owned by `client`.
            unsafe {
                let native = rdkafka_sys::rd_kafka_handle_mock_cluster(client.native_ptr());
                rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(native, 0);
            }
            cluster.bootstrap_servers()
        };
        Ok(EmbeddedBroker { client, bootstrap })
    }

    /// The `bootstrap.servers` value for clients of this cluster (loopback addresses).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a topic with `partitions` partitions (replication factor 1).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), EmbeddedError> {
        mock_cluster(&self.client)
            .create_topic(name, partitions, 1)
            .map_err(|source| EmbeddedError {
                action: format!("create topic `{name}`"),
                source,
            })
    }
}

/// Fault injection, for tests (the `test-util` feature).
#[cfg(feature = "test-util")]
impl EmbeddedBroker {
    /// Makes `topic` unavailable (metadata answers "not authorized") or available again, to
    /// simulate a topic a client cannot use.
    pub fn set_topic_available(&self, topic: &str, available: bool) -> Result<(), EmbeddedError> {
        let error = if available {
            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        } else {
            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
        };
        mock_cluster(&self.client)
            .topic_error(topic, error)
            .map_err(|source| EmbeddedError {
                action: format!("make topic `{topic}` available={available}"),
                source,
            })
    }

    /// Takes broker `id` (1-based) down: its connections close and it stops answering.
    pub fn broker_down(&self, id: i32) -> Result<(), EmbeddedError> {
        mock_cluster(&self.client)
            .broker_down(id)
            .map_err(|source| EmbeddedError {
                action: format!("take broker {id} down"),
                source,
            })
    }

    /// Brings broker `id` (1-based) back up.
    pub fn broker_up(&self, id: i32) -> Result<(), EmbeddedError> {
        mock_cluster(&self.client)
            .broker_up(id)
            .map_err(|source| EmbeddedError {
                action: format!("bring broker {id} up"),
                source,
            })
    }
}

fn mock_cluster(client: &Client<DefaultClientContext>) -> MockCluster<'_, DefaultClientContext> {
    client
        .mock_cluster()
        .expect("a client created with test.mock.num.brokers owns a mock cluster")
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}
