//! The catalog and the cluster, configured as the applications are.

use std::path::Path;
use std::time::Duration;

use erp_events::{App, AppError, Brokers, Catalog, Config, InProcessTopics, Kafka};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::failure::Failure;

/// How long one request to the cluster may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The catalog in `dir`.
pub fn load_catalog(dir: &Path) -> Result<Catalog, Failure> {
    Catalog::load(dir).map_err(|error| {
        Failure::usage(format!(
            "{error} (say where the catalog is with --schemas or ERP_EVENTS_SCHEMAS)"
        ))
    })
}

/// The cluster of `KAFKA_BROKERS` with the applications' `ERP_KAFKA_*` properties (security
/// included), built the way applications build theirs, once it answers: a broker that refuses
/// the client (TLS, SASL) or stays silent is an error naming it.
pub async fn connect(catalog: &Catalog) -> Result<Kafka, Failure> {
    let mut config = Config::from_env();
    if config.brokers == Brokers::Embedded {
        return Err(Failure::usage(
            "KAFKA_BROKERS is not set: say which cluster (host:port[,host:port...]), with the same ERP_KAFKA_* properties as the applications",
        ));
    }
    // Only Kafka: the tool needs neither the idempotency store nor in-process topics.
    config.redis_url = None;
    config.redis_cluster_nodes.clear();
    config.in_process = InProcessTopics::None;
    let app = App::from_config(&config, catalog)
        .map_err(Failure::usage)?
        .ready_timeout(TIMEOUT);
    app.ready().await.map_err(|error| match error {
        AppError::BrokerRefused { .. } | AppError::BrokerUnreachable { .. } => {
            Failure::Cluster(error.to_string())
        }
        error => Failure::usage(error),
    })?;
    Ok(app
        .kafka()
        .expect("KAFKA_BROKERS is set, so topics travel through Kafka")
        .clone())
}

/// A consumer that reads partitions it is given (no subscription), as `group` (for its
/// committed offsets) or as a group that never commits.
pub fn reader(kafka: &Kafka, group: Option<&str>) -> Result<BaseConsumer, Failure> {
    let mut config: ClientConfig = kafka.client_config();
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        .set("group.id", group.unwrap_or("erp-events-reader"));
    config
        .create()
        .map_err(|error| Failure::usage(format!("cannot create a Kafka client: {error}")))
}

/// The partitions of `topic`, or `None` when the cluster has no such topic.
pub fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<Option<Vec<i32>>, Failure> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|error| Failure::cluster("cannot read the cluster's metadata", error))?;
    let Some(found) = metadata.topics().first() else {
        return Ok(None);
    };
    if found.error().is_some() || found.partitions().is_empty() {
        return Ok(None);
    }
    Ok(Some(found.partitions().iter().map(|p| p.id()).collect()))
}
