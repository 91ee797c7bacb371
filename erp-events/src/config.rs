//! Configuration from the environment: which Kafka and which idempotency store.

/// Environment variable with the bootstrap servers of a real Kafka-compatible broker.
pub const KAFKA_BROKERS_VAR: &str = "KAFKA_BROKERS";
/// Environment variable with the Redis URL of the idempotency store.
pub const REDIS_URL_VAR: &str = "REDIS_URL";

/// Which broker to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Brokers {
    /// librdkafka's in-process mock cluster, started with the catalog's topics.
    Embedded,
    /// A real broker, by its bootstrap servers (`host:port[,host:port…]`).
    External(String),
}

/// Where the framework's services are. [`Config::from_env`] is the usual source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Kafka-compatible broker.
    pub brokers: Brokers,
    /// The Redis idempotency store; `None` keeps dedup state in memory.
    pub redis_url: Option<String>,
}

impl Config {
    /// Reads `KAFKA_BROKERS` (unset or empty: the embedded broker) and `REDIS_URL` (unset or
    /// empty: the in-memory store).
    pub fn from_env() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        Config {
            brokers: var(KAFKA_BROKERS_VAR).map_or(Brokers::Embedded, Brokers::External),
            redis_url: var(REDIS_URL_VAR),
        }
    }

    /// Everything embedded: the mock cluster and the in-memory store.
    pub fn embedded() -> Self {
        Config {
            brokers: Brokers::Embedded,
            redis_url: None,
        }
    }
}
