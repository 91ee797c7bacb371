//! Creating the catalog's topics on a broker: each topic with its partition count, and its
//! `.DLT` twin with at least as many partitions (so a dead letter keeps its partition).
//! Brokers such as tansu create no topics by themselves; this is idempotent.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::catalog::{Catalog, dead_letter_topic};
use crate::embedded::EmbeddedError;
use crate::kafka::Kafka;

/// How long provisioning waits for the broker.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Kafka::provision`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Topics created.
    pub created: Vec<String>,
    /// Dead-letter topics given more partitions, to match their topic.
    pub grown: Vec<String>,
    /// Topics that were there already, with enough partitions.
    pub existing: Vec<String>,
}

/// Why the catalog's topics could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The broker did not answer or refused.
    #[error("cannot provision topics: {0}")]
    Kafka(#[from] KafkaError),
    /// The broker refused to create or grow one topic.
    #[error("cannot provision `{topic}`: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// The embedded broker refused to create a topic.
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
}

impl Kafka {
    /// Creates every catalog topic with its partition count and its `.DLT` twin with at least
    /// as many, with `replication_factor` replicas; topics that exist are kept (a dead-letter
    /// topic with fewer partitions than its topic is grown). Idempotent.
    pub async fn provision(
        &self,
        catalog: &Catalog,
        replication_factor: i32,
    ) -> Result<Provisioned, ProvisionError> {
        let wanted: Vec<(String, i32)> = catalog
            .topics()
            .iter()
            .flat_map(|topic| {
                [
                    (topic.name.clone(), topic.partitions),
                    (dead_letter_topic(&topic.name), topic.partitions),
                ]
            })
            .collect();
        let existing = self.partition_counts().await?;
        let mut provisioned = Provisioned::default();
        let mut to_create = Vec::new();
        let mut to_grow = Vec::new();
        for (topic, partitions) in wanted {
            match existing.get(&topic) {
                None => to_create.push((topic, partitions)),
                Some(&found) if found < partitions => to_grow.push((topic, partitions)),
                Some(_) => provisioned.existing.push(topic),
            }
        }
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        if let Some(embedded) = self.embedded() {
            for (topic, partitions) in &to_create {
                embedded.create_topic(topic, *partitions)?;
            }
        } else if !to_create.is_empty() {
            let new_topics: Vec<NewTopic<'_>> = to_create
                .iter()
                .map(|(topic, partitions)| {
                    NewTopic::new(
                        topic,
                        *partitions,
                        TopicReplication::Fixed(replication_factor),
                    )
                })
                .collect();
            check(admin.create_topics(&new_topics, &options).await?)?;
        }
        if !to_grow.is_empty() {
            let growth: Vec<NewPartitions<'_>> = to_grow
                .iter()
                .map(|(topic, partitions)| NewPartitions::new(topic, *partitions as usize))
                .collect();
            check(admin.create_partitions(&growth, &options).await?)?;
        }
        provisioned.created = to_create.into_iter().map(|(topic, _)| topic).collect();
        provisioned.grown = to_grow.into_iter().map(|(topic, _)| topic).collect();
        Ok(provisioned)
    }

    /// The partition count of every topic the broker has (read on the blocking pool).
    async fn partition_counts(&self) -> Result<HashMap<String, i32>, KafkaError> {
        let config = self.client_config();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = config.create()?;
            let metadata = client.fetch_metadata(None, TIMEOUT)?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|topic| topic.error().is_none())
                .map(|topic| (topic.name().to_owned(), topic.partitions().len() as i32))
                .collect())
        })
        .await
        .expect("reading metadata does not panic")
    }
}

/// Fails on the first topic the broker refused; "already exists" is success (another process
/// provisioned it meanwhile).
fn check(results: Vec<Result<String, (String, RDKafkaErrorCode)>>) -> Result<(), ProvisionError> {
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(ProvisionError::Topic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
