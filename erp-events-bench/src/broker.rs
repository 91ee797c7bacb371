//! The broker of one measurement, owned by the benchmark and fresh for each side: the embedded
//! one, or Apache Kafka (`scripts/kafka`, in a folder of its own) for the pairs whose peer the
//! mock cluster does not serve: Java's client gets no answer from it.

use std::time::Duration;

use erp_demo::apache_kafka::ApacheKafka;
use erp_events::{Brokers, EmbeddedBroker, Kafka};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// Which broker a pair measures on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// librdkafka's mock cluster, in this process.
    Embedded,
    /// Apache Kafka, started for the measurement.
    Apache,
}

/// A broker holding the measured topics and their dead-letter topics.
pub struct Broker {
    /// The cluster.
    pub kafka: Kafka,
    _apache: Option<ApacheKafka>,
}

impl Broker {
    /// Starts a fresh broker of `kind` with `topics` and their dead-letter topics, of
    /// `partitions` partitions each.
    pub async fn start(kind: BrokerKind, topics: &[&str], partitions: i32) -> Self {
        let catalog = erp_events::catalog!();
        let names: Vec<String> = topics
            .iter()
            .flat_map(|topic| [topic.to_string(), catalog.dead_letter_topic(topic)])
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match kind {
            BrokerKind::Embedded => {
                let broker = EmbeddedBroker::new(1).expect("embedded broker");
                for name in &names {
                    broker.create_topic(name, partitions).expect("topic");
                }
                Broker {
                    kafka: Kafka::on_embedded(broker, catalog),
                    _apache: None,
                }
            }
            BrokerKind::Apache => {
                let apache = ApacheKafka::start("kafka-bench");
                let kafka = Kafka::connect(&Brokers::External(apache.bootstrap()), catalog)
                    .expect("connect");
                create_topics(&kafka, &names, partitions).await;
                Broker {
                    kafka,
                    _apache: Some(apache),
                }
            }
        }
    }
}

async fn create_topics(kafka: &Kafka, names: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config().create().expect("admin client");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .create_topics(&topics, &options)
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
}
