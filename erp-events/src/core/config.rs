//! Configuration from the environment: which Kafka, which topics stay in process, and which
//! idempotency store.

use std::collections::BTreeSet;
use std::fmt;

use crate::core::properties::{KafkaProperties, mask_url_password};

/// Environment variable with the bootstrap servers of a real Kafka-compatible broker.
pub const KAFKA_BROKERS_VAR: &str = "KAFKA_BROKERS";
/// Environment variable with the Redis URL of the idempotency store.
pub const REDIS_URL_VAR: &str = "REDIS_URL";
/// Environment variable with the seed nodes of a Redis Cluster as the idempotency store
/// (comma-separated `redis://host:port` or `rediss://…`), instead of `REDIS_URL`'s one server.
pub const REDIS_CLUSTER_NODES_VAR: &str = "ERP_REDIS_CLUSTER_NODES";
/// Environment variable with a PEM file of the CAs that sign a `rediss://` server's certificate
/// (unset: the system's).
pub const REDIS_CA_VAR: &str = "ERP_REDIS_CA_LOCATION";
/// Environment variable naming the topics that travel in process instead of through Kafka:
/// `*` for all, or a comma-separated list.
pub const IN_PROCESS_TOPICS_VAR: &str = "ERP_IN_PROCESS_TOPICS";
/// Environment variable with the address the health endpoint listens on (`host:port`, e.g.
/// `0.0.0.0:8080`); unset: no endpoint.
pub const HEALTH_ADDR_VAR: &str = "ERP_HEALTH_ADDR";

/// Which broker to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Brokers {
    /// librdkafka's in-process mock cluster, started with the catalog's topics.
    Embedded,
    /// A real broker, by its bootstrap servers (`host:port[,host:port…]`).
    External(String),
}

/// Where the framework's services are. [`Config::from_env`] is the usual source. Its `Debug`
/// output masks passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The Kafka-compatible broker.
    pub brokers: Brokers,
    /// The Redis idempotency store; `None` keeps dedup state in memory.
    pub redis_url: Option<String>,
    /// The seed nodes of a Redis Cluster as the idempotency store (instead of `redis_url`).
    pub redis_cluster_nodes: Vec<String>,
    /// A PEM file of the CAs that sign the Redis server's certificate (`rediss://`); `None`:
    /// the system's.
    pub redis_ca: Option<String>,
    /// The topics that travel in process (the seed's phase before Kafka) instead of through
    /// the broker.
    pub in_process: InProcessTopics,
    /// librdkafka properties for the framework's Kafka clients (security, timeouts...).
    pub kafka: KafkaProperties,
    /// Where the health endpoint listens (`host:port`, from `ERP_HEALTH_ADDR`); `None`: no
    /// endpoint.
    pub health: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("brokers", &self.brokers)
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(mask_url_password),
            )
            .field(
                "redis_cluster_nodes",
                &self
                    .redis_cluster_nodes
                    .iter()
                    .map(|node| mask_url_password(node))
                    .collect::<Vec<_>>(),
            )
            .field("redis_ca", &self.redis_ca)
            .field("in_process", &self.in_process)
            .field("kafka", &self.kafka)
            .field("health", &self.health)
            .finish()
    }
}

/// Which topics travel in process instead of through Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum InProcessTopics {
    /// None: everything goes through Kafka.
    #[default]
    None,
    /// Every topic: no Kafka at all.
    All,
    /// These topics; the others go through Kafka.
    Only(BTreeSet<String>),
}

impl InProcessTopics {
    /// Reads `*` (all), a comma-separated list of topics, or nothing (none).
    pub fn parse(text: &str) -> Self {
        let topics: BTreeSet<String> = text
            .split(',')
            .map(str::trim)
            .filter(|topic| !topic.is_empty())
            .map(str::to_owned)
            .collect();
        if topics.contains("*") {
            InProcessTopics::All
        } else if topics.is_empty() {
            InProcessTopics::None
        } else {
            InProcessTopics::Only(topics)
        }
    }

    /// Whether `topic` travels in process.
    pub fn contains(&self, topic: &str) -> bool {
        match self {
            InProcessTopics::None => false,
            InProcessTopics::All => true,
            InProcessTopics::Only(topics) => topics.contains(topic),
        }
    }
}

impl Config {
    /// Reads `KAFKA_BROKERS` (unset or empty: the embedded broker), `REDIS_URL` or
    /// `ERP_REDIS_CLUSTER_NODES` (both unset or empty: the in-memory store) and `ERP_REDIS_CA_LOCATION`, `ERP_IN_PROCESS_TOPICS` (unset or empty: none) and the
    /// `ERP_KAFKA_*` librdkafka properties ([`KafkaProperties::from_vars`]).
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// [`Config::from_env`] from `vars` instead of the process's environment.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let var = |name: &str| {
            vars.iter()
                .find(|(variable, value)| variable == name && !value.trim().is_empty())
                .map(|(_, value)| value.clone())
        };
        Config {
            brokers: var(KAFKA_BROKERS_VAR).map_or(Brokers::Embedded, Brokers::External),
            redis_url: var(REDIS_URL_VAR),
            redis_cluster_nodes: var(REDIS_CLUSTER_NODES_VAR)
                .map(|nodes| {
                    nodes
                        .split(',')
                        .map(str::trim)
                        .filter(|node| !node.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            redis_ca: var(REDIS_CA_VAR),
            in_process: var(IN_PROCESS_TOPICS_VAR).map_or(InProcessTopics::None, |topics| {
                InProcessTopics::parse(&topics)
            }),
            health: var(HEALTH_ADDR_VAR),
            kafka: KafkaProperties::from_vars(vars),
        }
    }

    /// Everything embedded: the mock cluster and the in-memory store.
    pub fn embedded() -> Self {
        Config {
            brokers: Brokers::Embedded,
            redis_url: None,
            redis_cluster_nodes: Vec::new(),
            redis_ca: None,
            in_process: InProcessTopics::None,
            kafka: KafkaProperties::default(),
            health: None,
        }
    }

    /// No Kafka: every topic in process, dedup state in memory.
    pub fn in_process() -> Self {
        Config {
            in_process: InProcessTopics::All,
            ..Config::embedded()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_topics_are_all_some_or_none() {
        assert_eq!(InProcessTopics::parse(""), InProcessTopics::None);
        assert_eq!(InProcessTopics::parse(" * "), InProcessTopics::All);
        let some = InProcessTopics::parse("erp.audit.events, erp.vma.clinical,");
        assert!(some.contains("erp.audit.events") && some.contains("erp.vma.clinical"));
        assert!(!some.contains("erp.inventory.movements"));
        assert!(InProcessTopics::All.contains("erp.inventory.movements"));
        assert!(!InProcessTopics::None.contains("erp.inventory.movements"));
    }

    #[test]
    fn cluster_nodes_are_a_list_whose_passwords_debug_masks() {
        let config = Config::from_vars([(
            REDIS_CLUSTER_NODES_VAR.to_owned(),
            "redis://:hunter2@10.0.0.1:6379, redis://:hunter2@10.0.0.2:6379,".to_owned(),
        )]);
        assert_eq!(
            config.redis_cluster_nodes,
            [
                "redis://:hunter2@10.0.0.1:6379",
                "redis://:hunter2@10.0.0.2:6379"
            ]
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://:***@10.0.0.2:6379"), "{shown}");
    }
}
