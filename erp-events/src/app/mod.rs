//! Assembling an application: the listeners, their store, the transports each topic travels
//! on, and running until a signal.

pub(crate) mod health;
#[cfg(feature = "otlp")]
pub mod otlp;
pub(crate) mod publisher;
pub(crate) mod transports;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::health::{HealthError, Probes};
use crate::app::publisher::{PublishError, Publisher};
use crate::app::transports::Transports;
use crate::core::catalog::Catalog;
use crate::core::config::{Brokers, Config, InProcessTopics};
use crate::core::event::Event;
use crate::core::listener::{IntoListener, Listener};
use crate::core::properties::{ConflictingProperty, KafkaProperties};
use crate::idempotency::{
    IdempotencySettings, IdempotencyStore, MemoryStore, RedisStore, StoreError,
};
use crate::runtime::claims::Idempotency;
use crate::runtime::route::Route;
use crate::runtime::sinks::DeadLetterSink;
use crate::runtime::stats::{CountsChanged, ListenerCounts, ListenerStats};
use crate::runtime::worker::ListenerRuntime;
use crate::transport::in_process::InProcessBus;
use crate::transport::kafka::Kafka;
use crate::transport::kafka::consumer::{GroupConsumer, KafkaRoute};
use crate::transport::kafka::dead_letters::KafkaDeadLetters;
use crate::transport::kafka::embedded::EmbeddedError;
use crate::transport::kafka::{Refusal, Unreachable};

/// An application's listeners, ready to run.
///
/// ```no_run
/// # use erp_events::{App, Config};
/// # async fn run() -> Result<(), erp_events::AppError> {
/// let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
/// // app.listener(on_movement.with_state(index)).listener(on_audit)
/// app.run_until_signal().await?;
/// # Ok(()) }
/// ```
pub struct App {
    transports: Transports,
    store: Arc<dyn IdempotencyStore>,
    settings: IdempotencySettings,
    pending: Vec<BuildRoute>,
    overrides: Vec<(String, String)>,
    producer_overrides: Vec<(String, String)>,
    shutdown_timeout: Duration,
    ready_timeout: Duration,
    changed: Arc<CountsChanged>,
    health: Option<String>,
    hung_after: Duration,
}

/// Builds a listener's runtime once the application starts.
type BuildRoute = Box<dyn FnOnce(&Wiring) -> Arc<dyn KafkaRoute>>;

/// What every listener runtime is built with.
struct Wiring {
    store: Arc<dyn IdempotencyStore>,
    settings: IdempotencySettings,
    transports: Transports,
    kafka_dead_letters: Option<Arc<KafkaDeadLetters>>,
    changed: Arc<CountsChanged>,
}

impl Wiring {
    /// Where `topic`'s dead letters go: its `.DLT` topic on the transport it travels on.
    fn dead_letters(&self, topic: &str) -> Arc<dyn DeadLetterSink> {
        match &self.kafka_dead_letters {
            Some(kafka) if !self.transports.is_in_process(topic) => kafka.clone(),
            _ => Arc::new(self.transports.bus.clone()),
        }
    }
}

/// Why an application could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The embedded broker did not start.
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// The Redis URL is invalid.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A Kafka client could not be created.
    #[error("cannot create a Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Two listeners of one group listen to the same topic.
    #[error(
        "listeners `{first}` and `{second}` both consume `{topic}` in group `{group}`; a group has one listener per topic"
    )]
    DuplicateListener {
        /// The group.
        group: &'static str,
        /// The topic.
        topic: &'static str,
        /// The listener added first.
        first: &'static str,
        /// The listener added second.
        second: &'static str,
    },
    /// `ERP_IN_PROCESS_TOPICS` names a topic the catalog does not declare.
    #[error(
        "`{topic}` is to travel in process, but the catalog declares no such topic (declared: {declared})"
    )]
    UnknownInProcessTopic {
        /// The topic named.
        topic: String,
        /// The catalog's topics.
        declared: String,
    },
    /// A librdkafka property would override one the framework relies on.
    #[error(transparent)]
    ConflictingProperty(#[from] ConflictingProperty),
    /// No broker of the cluster answered within the ready timeout.
    #[error(
        "no Kafka broker at `{brokers}` answered within {timeout:?} (is KAFKA_BROKERS right?): {source}"
    )]
    BrokerUnreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long it waited.
        timeout: Duration,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// A broker answered and refused this client: its TLS or SASL settings are wrong.
    #[error("the Kafka broker at `{brokers}` refused this client ({reason}): {refusal}")]
    BrokerRefused {
        /// The bootstrap servers.
        brokers: String,
        /// Why, and what to fix.
        refusal: Refusal,
        /// librdkafka's words.
        reason: String,
    },
    /// The idempotency store did not answer within the ready timeout.
    #[error(
        "the idempotency store did not answer within {timeout:?} (is REDIS_URL, or ERP_REDIS_CLUSTER_NODES, right?): {source}"
    )]
    StoreUnreachable {
        /// How long it waited.
        timeout: Duration,
        /// The store's error.
        source: StoreError,
    },
    /// The health endpoint could not start.
    #[error(transparent)]
    Health(#[from] HealthError),
    /// A second SIGINT/SIGTERM arrived while shutting down: handlers in progress were not
    /// waited for (their records are redelivered).
    #[error("interrupted while shutting down; handlers in progress were not waited for")]
    Interrupted,
    /// Waiting for SIGINT/SIGTERM failed.
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(std::io::Error),
}

impl App {
    /// An application on `kafka` with the in-memory idempotency store.
    #[doc(hidden)]
    pub fn new(kafka: &Kafka) -> Self {
        Self::on(Transports::kafka(kafka))
    }

    /// An application without Kafka: every topic travels in process (the seed's phase before
    /// Kafka, Spring's `ApplicationEvent`), with the catalog's partition counts.
    #[doc(hidden)]
    pub fn in_process(catalog: &Catalog) -> Self {
        Self::on(Transports {
            kafka: None,
            bus: InProcessBus::new(catalog),
            in_process: InProcessTopics::All,
            metrics: Arc::default(),
        })
    }

    fn on(transports: Transports) -> Self {
        App {
            transports,
            store: Arc::new(MemoryStore::new()),
            settings: IdempotencySettings::default(),
            pending: Vec::new(),
            overrides: Vec::new(),
            producer_overrides: Vec::new(),
            shutdown_timeout: Duration::from_secs(30),
            ready_timeout: Duration::from_secs(10),
            changed: Arc::default(),
            health: None,
            hung_after: Duration::from_secs(60),
        }
    }

    /// An application as the configuration says: `KAFKA_BROKERS` or the embedded broker with
    /// `catalog`'s topics (none when every topic travels in process), the in-process topics of
    /// `ERP_IN_PROCESS_TOPICS`, and `REDIS_URL` or the in-memory store.
    pub fn from_config(config: &Config, catalog: &Catalog) -> Result<Self, AppError> {
        if let Some(conflict) = config.kafka.conflicts().into_iter().next() {
            return Err(conflict.into());
        }
        if let InProcessTopics::Only(topics) = &config.in_process
            && let Some(unknown) = topics.iter().find(|topic| catalog.topic(topic).is_none())
        {
            let declared: Vec<&str> = catalog.topics().iter().map(|t| t.name.as_str()).collect();
            return Err(AppError::UnknownInProcessTopic {
                topic: unknown.clone(),
                declared: declared.join(", "),
            });
        }
        let kafka = match config.in_process {
            InProcessTopics::All => None,
            _ => Some(
                Kafka::connect(&config.brokers, catalog)?.with_properties(config.kafka.clone()),
            ),
        };
        let mut app = Self::on(Transports {
            kafka,
            bus: InProcessBus::new(catalog),
            in_process: config.in_process.clone(),
            metrics: Arc::default(),
        });
        app.health = config.health.clone();
        let nodes: Vec<&str> = config
            .redis_cluster_nodes
            .iter()
            .map(String::as_str)
            .collect();
        let ca = config.redis_ca.as_deref();
        let redis = match (&config.redis_url, nodes.as_slice()) {
            (Some(_), [_, ..]) => {
                return Err(AppError::Store(StoreError::Address {
                    source: "both REDIS_URL and ERP_REDIS_CLUSTER_NODES are set: set REDIS_URL for one Redis server or ERP_REDIS_CLUSTER_NODES for a Redis Cluster".into(),
                }));
            }
            (Some(url), []) => Some(match ca {
                Some(ca) => RedisStore::with_ca(url, ca)?,
                None => RedisStore::new(url)?,
            }),
            (None, [_, ..]) if ca.is_some() => {
                return Err(AppError::Store(StoreError::Address {
                    source: "ERP_REDIS_CA_LOCATION applies to REDIS_URL's server only: a Redis Cluster's rediss:// nodes are verified against the system's CAs (SSL_CERT_FILE names another PEM file of them)".into(),
                }));
            }
            (None, [_, ..]) => Some(RedisStore::cluster(&nodes)?),
            (None, []) => None,
        };
        Ok(match (redis, &config.brokers) {
            (Some(store), _) => app.idempotency_store(store),
            (None, Brokers::External(_)) => {
                warn!(
                    capacity = MemoryStore::DEFAULT_CAPACITY,
                    "REDIS_URL is not set: deduplication is in this process's memory (the latest events only, lost at restart, not shared with other members); set REDIS_URL to share it"
                );
                app
            }
            (None, Brokers::Embedded) => app,
        })
    }

    /// The Kafka cluster, unless every topic travels in process.
    pub fn kafka(&self) -> Option<&Kafka> {
        self.transports.kafka.as_ref()
    }

    /// The in-process bus, e.g. to read the dead letters of in-process topics.
    pub fn in_process_bus(&self) -> &InProcessBus {
        &self.transports.bus
    }

    /// A publisher whose envelopes name `source` as the publishing service; each topic goes
    /// through the transport the configuration chose for it.
    pub fn publisher(&self, source: &str) -> Result<Publisher, PublishError> {
        let properties: Vec<(&str, &str)> = self
            .producer_overrides
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        Publisher::on(self.transports.clone(), source, &properties)
    }

    /// Sets a librdkafka property on the producers of the publishers made after this call
    /// (e.g. `message.timeout.ms`: how long a record may wait for an unreachable broker before
    /// its publish fails with [`PublishError::TimedOut`]).
    pub fn producer_config(mut self, key: &str, value: &str) -> Self {
        self.producer_overrides
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// Uses `store` for idempotent listeners.
    pub fn idempotency_store(mut self, store: impl IdempotencyStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// Sets the `done` TTL and the claim lease.
    pub fn idempotency_settings(mut self, settings: IdempotencySettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets a librdkafka property on every consumer (e.g. `session.timeout.ms`).
    pub fn consumer_config(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_owned(), value.to_owned()));
        self
    }

    /// How long [`App::ready`] waits for the broker and the idempotency store (10 s by default).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Checks that the Kafka cluster (when a topic uses it) and the idempotency store answer,
    /// waiting at most the ready timeout: a wrong address is an error at start, not a service
    /// that silently handles nothing. [`App::run_until_signal`] calls it.
    pub async fn ready(&self) -> Result<(), AppError> {
        let timeout = self.ready_timeout;
        if let Some(kafka) = &self.transports.kafka {
            let brokers = kafka.bootstrap_servers().to_owned();
            kafka
                .reachable(timeout)
                .await
                .map_err(|error| match error {
                    Unreachable::Misconfigured(source) => AppError::Kafka(source),
                    Unreachable::Silent(source) => AppError::BrokerUnreachable {
                        brokers,
                        timeout,
                        source,
                    },
                    Unreachable::Refused { refusal, reason } => AppError::BrokerRefused {
                        brokers,
                        refusal,
                        reason,
                    },
                })?;
        }
        let unanswered = || StoreError::unavailable("no answer");
        tokio::time::timeout(timeout, self.store.ping())
            .await
            .unwrap_or_else(|_| Err(unanswered()))
            .map_err(|source| AppError::StoreUnreachable { timeout, source })
    }

    /// Serves `/metrics`, `/health/live` and `/health/ready` on `address` (`host:port`, e.g.
    /// `0.0.0.0:8080`) while the application runs; [`HEALTH_ADDR_VAR`](crate::HEALTH_ADDR_VAR)
    /// sets it from the environment. A taken port is an error at start.
    pub fn health_endpoint(mut self, address: &str) -> Self {
        self.health = Some(address.to_owned());
        self
    }

    /// How long a handler attempt may run before `/health/ready` reports it (60 s by default).
    pub fn hung_handler_after(mut self, limit: Duration) -> Self {
        self.hung_after = limit;
        self
    }

    /// How long shutdown waits for handlers in progress (30 s by default).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Adds a listener: `app.listener(handler)`, or `app.listener(handler.with_state(s))` for
    /// a handler that takes `State<S>`.
    pub fn listener<I: IntoListener>(mut self, listener: I) -> Self {
        let (listener, state) = listener.into_parts();
        self.pending.push(Box::new(move |wiring: &Wiring| {
            let options = listener.options();
            let topic = <<I::Listener as Listener>::Event as Event>::TOPIC;
            let (group, name) = (I::Listener::GROUP, I::Listener::NAME);
            let transports = &wiring.transports;
            let system = transports.system(topic);
            let metrics = transports.metrics.listener(system, group, topic, name);
            let runtime = ListenerRuntime {
                idempotency: options
                    .idempotent
                    .then(|| Idempotency::new(wiring.store.clone(), wiring.settings, &options)),
                concurrency: Arc::new(Semaphore::new(options.concurrency.max(1))),
                dead_letters: wiring.dead_letters(topic),
                stats: Arc::new(ListenerStats::new(wiring.changed.clone(), metrics)),
                options,
                state,
                listener,
            };
            Arc::new(runtime) as Arc<dyn KafkaRoute>
        }));
        self
    }

    /// Starts one consumer per group and returns at once.
    pub fn start(self) -> Result<Running, AppError> {
        let overrides = KafkaProperties {
            consumer: self.overrides.clone(),
            ..KafkaProperties::default()
        };
        if let Some(conflict) = overrides.conflicts().into_iter().next() {
            return Err(conflict.into());
        }
        let health = self
            .health
            .as_deref()
            .map(health::parse_address)
            .transpose()?;
        let store = self.store.clone();
        let wiring = Wiring {
            store: self.store,
            settings: self.settings,
            kafka_dead_letters: self
                .transports
                .kafka
                .as_ref()
                .map(|kafka| Arc::new(KafkaDeadLetters::new(kafka))),
            transports: self.transports.clone(),
            changed: self.changed.clone(),
        };
        let mut groups: BTreeMap<&'static str, Vec<Arc<dyn KafkaRoute>>> = BTreeMap::new();
        for build in self.pending {
            let route = build(&wiring);
            let routes = groups.entry(route.group()).or_default();
            if let Some(first) = routes.iter().find(|r| r.topic() == route.topic()) {
                return Err(AppError::DuplicateListener {
                    group: route.group(),
                    topic: route.topic(),
                    first: first.name(),
                    second: route.name(),
                });
            }
            routes.push(route);
        }
        let stop = CancellationToken::new();
        let mut listeners = Vec::new();
        let mut tasks = Vec::new();
        let mut joined = Vec::new();
        for (group, routes) in groups {
            listeners.extend(routes.iter().map(|route| ListenerHandle {
                group,
                name: route.name(),
                topic: route.topic(),
                stats: route.stats(),
            }));
            let (in_process, on_kafka): (Vec<_>, Vec<_>) = routes
                .into_iter()
                .partition(|route| self.transports.is_in_process(route.topic()));
            if !in_process.is_empty() {
                let in_process: Vec<Arc<dyn Route>> =
                    in_process.into_iter().map(|route| route as _).collect();
                let bus = &self.transports.bus;
                let task = bus.start_group(group, &in_process, stop.clone(), self.shutdown_timeout);
                tasks.push((group, task));
            }
            if let (Some(kafka), false) = (&self.transports.kafka, on_kafka.is_empty()) {
                let mut config = kafka.consumer_config(group, &self.overrides);
                if health.is_some() && config.get("statistics.interval.ms").is_none() {
                    config.set("statistics.interval.ms", LAG_INTERVAL_MS);
                }
                let consumer = GroupConsumer::new(
                    config,
                    group,
                    on_kafka,
                    // Its own: a group whose worker died stops alone.
                    stop.child_token(),
                    self.shutdown_timeout,
                    self.transports.metrics.clone(),
                );
                match consumer {
                    Ok(consumer) => {
                        joined.push((group, consumer.joined()));
                        tasks.push((group, tokio::spawn(consumer.run())));
                    }
                    Err(error) => {
                        // The groups started so far stop too: a failed start runs nothing.
                        stop.cancel();
                        self.transports.bus.stop();
                        return Err(error.into());
                    }
                }
            }
        }
        let server_stop = CancellationToken::new();
        let server = match health {
            Some(address) => {
                let probes = Probes {
                    metrics: self.transports.metrics.clone(),
                    listeners: listeners
                        .iter()
                        .map(|l| (l.name, l.stats.clone()))
                        .collect(),
                    groups: joined,
                    tasks: tasks.iter().map(|(g, t)| (*g, t.abort_handle())).collect(),
                    kafka: self.transports.kafka.clone(),
                    store,
                    hung_after: self.hung_after,
                    stop: stop.clone(),
                };
                match health::serve(address, probes, server_stop.clone()) {
                    Ok(server) => Some(server),
                    Err(error) => {
                        stop.cancel();
                        self.transports.bus.stop();
                        return Err(error.into());
                    }
                }
            }
            None => None,
        };
        Ok(Running {
            stop,
            tasks: tasks.into_iter().map(|(_, task)| task).collect(),
            listeners,
            changed: self.changed,
            bus: self.transports.bus.clone(),
            server: server.map(|(address, task)| HealthServer {
                address,
                stop: server_stop,
                task,
            }),
        })
    }

    /// Starts, then runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<Vec<ListenerReport>, AppError> {
        // Listening from before the start: a signal that arrives between two waits counts.
        let mut signals = ShutdownSignals::listen().map_err(AppError::Signal)?;
        self.ready().await?;
        let running = self.start()?;
        signals.recv().await;
        info!("shutdown signal received; a second one stops at once");
        tokio::select! {
            reports = running.shutdown() => Ok(reports),
            () = signals.recv() => {
                warn!("second shutdown signal: not waiting for handlers in progress");
                Err(AppError::Interrupted)
            }
        }
    }
}

/// librdkafka's statistics interval while the health endpoint serves lag (its default is off).
const LAG_INTERVAL_MS: &str = "5000";

/// SIGINT (Ctrl-C) and, on Unix, SIGTERM, listened to once for the whole run: a listener made
/// after a signal arrived would miss it.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    interrupt: tokio::signal::windows::CtrlC,
}

impl ShutdownSignals {
    #[cfg(unix)]
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn listen() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: tokio::signal::windows::ctrl_c()?,
        })
    }

    /// Resolves on the next signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        self.interrupt.recv().await;
    }
}

struct ListenerHandle {
    group: &'static str,
    name: &'static str,
    topic: &'static str,
    stats: Arc<ListenerStats>,
}

/// What one listener did, as reported by [`Running::reports`] and at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerReport {
    /// The consumer group.
    pub group: &'static str,
    /// The handler's name.
    pub name: &'static str,
    /// The topic.
    pub topic: &'static str,
    /// The counts.
    pub counts: ListenerCounts,
}

/// A started application.
pub struct Running {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    listeners: Vec<ListenerHandle>,
    changed: Arc<CountsChanged>,
    bus: InProcessBus,
    /// The health endpoint, stopped after the shutdown.
    server: Option<HealthServer>,
}

/// The running health endpoint.
struct HealthServer {
    address: std::net::SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// What each listener did so far.
    pub fn reports(&self) -> Vec<ListenerReport> {
        self.listeners
            .iter()
            .map(|l| ListenerReport {
                group: l.group,
                name: l.name,
                topic: l.topic,
                counts: l.stats.snapshot(),
            })
            .collect()
    }

    /// Where the health endpoint listens, when it was asked for (the port is the one the
    /// system chose for a `:0` address).
    pub fn health_address(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(|server| server.address)
    }

    /// Waits until `condition` holds for the listeners' reports (checked after every change),
    /// e.g. until each listener finished the records a demo published.
    pub async fn wait_until(&self, condition: impl Fn(&[ListenerReport]) -> bool) {
        self.changed.wait_until(|| condition(&self.reports())).await;
    }

    /// Stops fetching, lets handlers in progress finish (within the shutdown timeout),
    /// commits, leaves the groups, and reports what each listener did. Publishing in process
    /// fails from then on ([`InProcessError::Stopped`](crate::InProcessError::Stopped)).
    pub async fn shutdown(mut self) -> Vec<ListenerReport> {
        self.stop.cancel();
        for task in std::mem::take(&mut self.tasks) {
            if let Err(error) = task.await {
                tracing::error!(%error, "a consumer task failed");
            }
        }
        self.bus.stop();
        if let Some(server) = self.server.take() {
            server.stop.cancel();
            let _ = server.task.await;
        }
        self.reports()
    }
}
