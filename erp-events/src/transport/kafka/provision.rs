//! Creating the catalog's topics on a broker: each topic with its partition count, and its
//! dead-letter twin with as many partitions (so a dead letter keeps its partition). A broker's
//! auto-creation would give each a default partition count; this is idempotent.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::core::catalog::Catalog;
use crate::transport::kafka::Kafka;
use crate::transport::kafka::embedded::EmbeddedError;

/// How long provisioning waits for the broker.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Kafka::provision`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Topics created.
    pub created: Vec<String>,
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
    /// A topic exists with fewer partitions than the catalog declares (the others were
    /// provisioned). Partitions are not added behind the operator's back: that moves keys.
    #[error(
        "`{topic}` has {found} partitions, fewer than the {wanted} the catalog declares; add partitions to it (kafka-topics --alter), then provision again"
    )]
    TooFewPartitions {
        /// The topic.
        topic: String,
        /// Its partitions.
        found: i32,
        /// The catalog's partitions.
        wanted: i32,
    },
}

impl Kafka {
    /// Creates every catalog topic with its partition count and its dead-letter twin with as many,
    /// with `replication_factor` replicas. Topics that exist are kept; one with fewer partitions
    /// than declared is reported ([`ProvisionError::TooFewPartitions`]) once the others are
    /// created. Idempotent.
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
                    (topic.dead_letter_topic(), topic.partitions),
                ]
            })
            .collect();
        let existing = self.partition_counts().await?;
        let mut provisioned = Provisioned::default();
        let mut to_create = Vec::new();
        let mut too_small = None;
        for (topic, wanted) in wanted {
            match existing.get(&topic) {
                None => to_create.push((topic, wanted)),
                Some(&found) if found < wanted => {
                    too_small.get_or_insert(ProvisionError::TooFewPartitions {
                        topic,
                        found,
                        wanted,
                    });
                }
                Some(_) => provisioned.existing.push(topic),
            }
        }
        if let Some(embedded) = self.embedded() {
            for (topic, partitions) in &to_create {
                embedded.create_topic(topic, *partitions)?;
            }
        } else if !to_create.is_empty() {
            let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
            let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
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
        provisioned.created = to_create.into_iter().map(|(topic, _)| topic).collect();
        match too_small {
            Some(error) => Err(error),
            None => Ok(provisioned),
        }
    }

    /// The partition count of every topic the cluster has (read on the blocking pool).
    pub async fn partition_counts(&self) -> Result<HashMap<String, i32>, KafkaError> {
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
