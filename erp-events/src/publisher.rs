//! Publishing events: envelope, key and trace header, through an idempotent producer.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::context::EventContext;
use crate::envelope::Envelope;
use crate::event::Event;
use crate::ids::new_event_id;
use crate::kafka::Kafka;
use crate::trace::{TRACEPARENT, TraceContext};

/// How many records [`Publisher::publish_all`] keeps unacknowledged at once.
const PIPELINE_WINDOW: usize = 50_000;

/// Publishes events as envelopes. Cheap to clone; clones share one producer.
///
/// The producer is idempotent (`enable.idempotence=true`, `acks=all`): a retried send is never
/// written twice and never reordered within a partition.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    producer: FutureProducer,
    source: String,
    // Keeps an embedded broker alive while this publisher exists.
    _kafka: Kafka,
}

/// Where the broker stored a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The topic.
    pub topic: &'static str,
    /// The partition.
    pub partition: i32,
    /// The record's offset in the partition.
    pub offset: i64,
    /// The envelope's `eventId`.
    pub event_id: Uuid,
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer could not be created (bad configuration).
    #[error("cannot create the Kafka producer: {0}")]
    Create(KafkaError),
    /// The event could not be written as JSON.
    #[error("cannot serialize a `{topic}` event: {source}")]
    Serialize {
        /// The event's topic.
        topic: &'static str,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// Kafka did not accept or acknowledge the record (e.g. `message.timeout.ms` elapsed while
    /// the broker was unreachable).
    #[error("Kafka did not take the `{topic}` record: {source}")]
    Kafka {
        /// The event's topic.
        topic: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The producer was shut down before the broker acknowledged the record.
    #[error("the producer shut down before the `{topic}` record was acknowledged")]
    Canceled {
        /// The event's topic.
        topic: &'static str,
    },
}

impl Publisher {
    /// A publisher on `kafka` whose envelopes name `source` as the publishing service.
    pub fn new(kafka: &Kafka, source: &str) -> Result<Self, PublishError> {
        let producer = kafka
            .client_config()
            .set("client.id", source)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()
            .map_err(PublishError::Create)?;
        Ok(Publisher {
            inner: Arc::new(Inner {
                producer,
                source: source.to_owned(),
                _kafka: kafka.clone(),
            }),
        })
    }

    /// The service named in the envelopes' `source`.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Publishes `event` and resolves once the broker has acknowledged it.
    ///
    /// Awaiting each publish in turn waits out librdkafka's batching delay every time; to
    /// publish many events, use [`Publisher::publish_all`] or [`Publisher::send`].
    pub async fn publish<E: Event>(&self, event: &E) -> Result<Delivery, PublishError> {
        self.send(event).await?.await
    }

    /// Publishes every event, pipelined, and resolves once all are acknowledged, in order.
    /// On error, events before the failed one are published; later ones may be too.
    pub async fn publish_all<'a, E: Event>(
        &self,
        events: impl IntoIterator<Item = &'a E>,
    ) -> Result<Vec<Delivery>, PublishError> {
        let mut deliveries = Vec::new();
        let mut pending = VecDeque::new();
        for event in events {
            if pending.len() == PIPELINE_WINDOW {
                let oldest: PendingDelivery = pending.pop_front().expect("window is full");
                deliveries.push(oldest.await?);
            }
            pending.push_back(self.send(event).await?);
        }
        for delivery in pending {
            deliveries.push(delivery.await?);
        }
        Ok(deliveries)
    }

    /// Hands `event` to the producer and returns at once with its pending acknowledgement: the
    /// pipelined form. Waits only while the producer's local queue is full.
    pub async fn send<E: Event>(&self, event: &E) -> Result<PendingDelivery, PublishError> {
        let context = EventContext::current();
        let trace = context
            .trace()
            .map_or_else(TraceContext::new_root, TraceContext::child);
        let now = OffsetDateTime::now_utc();
        let event_id = new_event_id((now.unix_timestamp_nanos() / 1_000_000) as u64);
        let envelope = Envelope {
            event_id,
            event_type: event.event_type().to_owned(),
            source: self.inner.source.clone(),
            timestamp: now,
            trace_id: Some(trace.trace_id_hex()),
            user_id: context.user_id().map(str::to_owned),
            version: E::VERSION,
            payload: event,
        };
        let topic = E::TOPIC;
        let value = envelope
            .to_json()
            .map_err(|source| PublishError::Serialize { topic, source })?;
        let key = event.key();
        let traceparent = trace.to_traceparent();
        loop {
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: TRACEPARENT,
                value: Some(traceparent.as_str()),
            });
            let record = FutureRecord::to(topic)
                .key(key.as_ref())
                .payload(&value)
                .headers(headers);
            match self.inner.producer.send_result(record) {
                Ok(future) => {
                    return Ok(PendingDelivery {
                        future,
                        topic,
                        event_id,
                    });
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // librdkafka's queue drains as the broker acknowledges; wait for room.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((source, _)) => return Err(PublishError::Kafka { topic, source }),
            }
        }
    }

    /// Waits until every record handed to the producer is acknowledged or failed.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.producer.flush(timeout))
            .await
            .expect("flush does not panic")
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

/// The broker's acknowledgement of one record handed over by [`Publisher::send`].
#[must_use = "the record may still fail; await the delivery to know"]
pub struct PendingDelivery {
    future: DeliveryFuture,
    topic: &'static str,
    event_id: Uuid,
}

impl PendingDelivery {
    /// The envelope's `eventId`.
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }
}

impl Future for PendingDelivery {
    type Output = Result<Delivery, PublishError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let topic = self.topic;
        Poll::Ready(match ready!(self.future.poll_unpin(cx)) {
            Ok(Ok(delivery)) => Ok(Delivery {
                topic,
                partition: delivery.partition,
                offset: delivery.offset,
                event_id: self.event_id,
            }),
            Ok(Err((source, _))) => Err(PublishError::Kafka { topic, source }),
            Err(_) => Err(PublishError::Canceled { topic }),
        })
    }
}
