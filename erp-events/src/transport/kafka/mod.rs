//! Kafka as a transport: the connection (the embedded broker or a real one, as the
//! configuration says) and the settings of every client the framework creates; below it, the
//! group consumers, the dead-letter producer, the embedded broker and provisioning.

pub(crate) mod consumer;
pub(crate) mod dead_letters;
pub mod embedded;
pub mod headers;
mod inbox;
pub mod provision;
mod read_back;
mod record;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use crate::core::catalog::Catalog;
use crate::core::config::Brokers;
use crate::core::properties::KafkaProperties;
use embedded::{EmbeddedBroker, EmbeddedError};

/// The default bound of a consumer's prefetch (`queued.max.messages.kbytes`, 8 MiB), which is
/// also the bound of its records polled but not yet taken by the workers: a consumer holds at
/// most twice this in records, whatever its partition count.
const CONSUMER_BUFFER_KBYTES: &str = "8192";
/// The most one fetch response may bring (`fetch.max.bytes`, 2 MiB): a quarter of the default
/// prefetch bound, so one response does not take all of it.
const FETCH_MAX_BYTES: &str = "2097152";

/// How long one metadata request of the readiness check may take before the client's errors are
/// looked at.
const METADATA_ATTEMPT: Duration = Duration::from_millis(500);

/// Why the cluster could not be used.
#[derive(Debug)]
pub(crate) enum Unreachable {
    /// The client could not be created: its properties are wrong (an unreadable CA file...).
    Misconfigured(KafkaError),
    /// No broker answered in time (librdkafka's last error).
    Silent(KafkaError),
    /// A broker answered and refused the client.
    Refused {
        /// Why, and what to fix.
        refusal: Refusal,
        /// librdkafka's words.
        reason: String,
    },
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::Misconfigured(error) => write!(f, "cannot create a client: {error}"),
            Unreachable::Silent(error) => write!(f, "no broker answered: {error}"),
            Unreachable::Refused { refusal, reason } => write!(f, "{refusal}: {reason}"),
        }
    }
}

/// The readiness check's client: keeps the last connection failure librdkafka logs, which says
/// why in words for every refusal (its error codes do not: a TLS 1.3 server refusing the
/// client's certificate shows as a transport failure).
#[derive(Default)]
struct ReadinessContext {
    failure: std::sync::Mutex<Option<String>>,
}

impl rdkafka::ClientContext for ReadinessContext {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(facility, message, "librdkafka (readiness check)");
        if facility == "FAIL" {
            *self.failure.lock().expect("not poisoned") = Some(message.to_owned());
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReadinessContext {}

impl ReadinessContext {
    /// The refusal the last connection failure reports, if it is one.
    fn refusal(&self) -> Option<(Refusal, String)> {
        let failure = self.failure.lock().expect("not poisoned").clone()?;
        let refusal = if failure.contains("SASL") || failure.contains("uthentication") {
            Refusal::Authentication
        } else if failure.contains("SSL") || failure.contains("certificate") {
            Refusal::Tls
        } else {
            return None;
        };
        Some((refusal, failure))
    }
}

/// Why a broker refused a client, and what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// SASL authentication failed.
    Authentication,
    /// The TLS handshake failed.
    Tls,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Authentication => {
                "SASL authentication failed: check sasl.mechanisms, sasl.username and sasl.password (ERP_KAFKA_SASL_MECHANISMS, ERP_KAFKA_SASL_USERNAME, ERP_KAFKA_SASL_PASSWORD)"
            }
            Refusal::Tls => {
                "the TLS handshake failed: check that ssl.ca.location (ERP_KAFKA_SSL_CA_LOCATION) holds the CA that signed the broker's certificate, that the certificate names the address in KAFKA_BROKERS, and that security.protocol matches the listener"
            }
        })
    }
}

/// A Kafka cluster to publish to and listen on. Cloning shares the cluster (an embedded broker
/// lives until the last clone is dropped).
#[derive(Debug, Clone)]
pub struct Kafka {
    bootstrap: String,
    embedded: Option<Arc<EmbeddedBroker>>,
    catalog: Arc<Catalog>,
    properties: Arc<KafkaProperties>,
}

impl Kafka {
    /// Connects to `brokers`, starting the embedded broker with the catalog's topics when the
    /// configuration asks for it. A real broker is reached lazily, on first use.
    #[doc(hidden)]
    pub fn connect(brokers: &Brokers, catalog: &Catalog) -> Result<Self, EmbeddedError> {
        match brokers {
            Brokers::Embedded => Ok(Self::on_embedded(EmbeddedBroker::start(catalog)?, catalog)),
            Brokers::External(bootstrap) => Ok(Kafka {
                bootstrap: bootstrap.clone(),
                embedded: None,
                catalog: Arc::new(catalog.clone()),
                properties: Arc::default(),
            }),
        }
    }

    /// The cluster of an embedded broker whose topics were created by hand (`catalog` still
    /// names the dead-letter topics).
    #[doc(hidden)]
    pub fn on_embedded(broker: EmbeddedBroker, catalog: &Catalog) -> Self {
        Kafka {
            bootstrap: broker.bootstrap_servers().to_owned(),
            embedded: Some(Arc::new(broker)),
            catalog: Arc::new(catalog.clone()),
            properties: Arc::default(),
        }
    }

    /// The same cluster, its clients configured with `properties` too.
    pub(crate) fn with_properties(mut self, properties: KafkaProperties) -> Self {
        self.properties = Arc::new(properties);
        self
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
        for (name, value) in &self.properties.common {
            config.set(name, value);
        }
        config
    }

    /// Answers once a broker of the cluster does (its metadata, within `within`). A broker that
    /// refuses the client (TLS or SASL) is reported at once: that does not heal by waiting.
    pub(crate) async fn reachable(&self, within: Duration) -> Result<(), Unreachable> {
        let config = self.client_config();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer<ReadinessContext> = config
                .create_with_context(ReadinessContext::default())
                .map_err(Unreachable::Misconfigured)?;
            let deadline = Instant::now() + within;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let error = match client.fetch_metadata(None, left.min(METADATA_ATTEMPT)) {
                    Ok(_) => return Ok(()),
                    Err(error) => error,
                };
                // The client's logs (why it could not connect) arrive as events.
                while client.poll(Duration::ZERO).is_some() {}
                if let Some((refusal, reason)) = client.context().refusal() {
                    return Err(Unreachable::Refused { refusal, reason });
                }
                if left.is_zero() {
                    return Err(Unreachable::Silent(error));
                }
            }
        })
        .await
        .expect("reading metadata does not panic")
    }

    /// The configuration of every producer the framework creates: idempotent, acknowledged by
    /// all in-sync replicas, and keyed records on the partition Java's client picks
    /// (`murmur2_random`), so that a Kotlin and a Rust service publishing one key keep its order;
    /// then the `ERP_KAFKA_PRODUCER_*` properties. For hand-written producers and the operator's
    /// tool, which should behave the same.
    pub fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("client.id", client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random");
        for (name, value) in &self.properties.producer {
            config.set(name, value);
        }
        config
    }

    /// The consumer configuration the framework's listeners use for `group` (at-least-once:
    /// offsets stored only after handling, committed by librdkafka), for hand-written consumers
    /// that should behave the same; `overrides` (the application's) come after it. With
    /// `group.protocol=consumer` (KIP-848) the session settings are the broker's, and left out.
    pub fn consumer_config(&self, group: &str, overrides: &[(String, String)]) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("client.id", format!("erp-{group}"))
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "250")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // One bound for the whole consumer's prefetch (its partitions share one queue); the
            // records polled and not yet taken by workers get as much again. No librdkafka 1 s
            // pause once the queue is full.
            .set("queued.max.messages.kbytes", CONSUMER_BUFFER_KBYTES)
            .set("fetch.max.bytes", FETCH_MAX_BYTES)
            .set("fetch.queue.backoff.ms", "20")
            .set("fetch.message.max.bytes", "524288");
        if self.embedded().is_some() {
            // The mock coordinator makes every rebalance after the first (a member leaving, a
            // restart) wait `session.timeout.ms - 1 s`, even for an empty group; and it holds an
            // empty fetch for the whole `fetch.wait.max.ms`, not waking when a record arrives.
            config
                .set("session.timeout.ms", "2500")
                .set("heartbeat.interval.ms", "500")
                .set("fetch.wait.max.ms", "10");
        }
        for (key, value) in self.properties.consumer.iter().chain(overrides) {
            config.set(key, value);
        }
        if config.get("group.protocol") == Some("consumer") {
            // KIP-848: the broker owns the session and the assignment.
            for key in ["session.timeout.ms", "heartbeat.interval.ms"] {
                if !overrides.iter().any(|(set, _)| set == key) {
                    config.remove(key);
                }
            }
        }
        config
    }
}
