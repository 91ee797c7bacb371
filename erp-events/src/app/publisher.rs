//! Publishing events: envelope, key and trace header, through an idempotent producer.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tracing::Span;
use uuid::Uuid;

use crate::app::transports::Transports;
use crate::core::context::EventContext;
use crate::core::envelope::Envelope;
use crate::core::event::Event;
use crate::core::spans;
use crate::core::trace::{TRACEPARENT, TraceContext};
use crate::transport::in_process::InProcessError;
use crate::transport::kafka::Kafka;

/// How many records [`Publisher::publish_all`] keeps unacknowledged at once.
const PIPELINE_WINDOW: usize = 50_000;

/// How long the last clone of a publisher, when dropped, waits for its records still on their
/// way to the broker (librdkafka would otherwise purge them).
const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes events as envelopes. Cheap to clone; clones share one producer.
///
/// The producer is idempotent (`enable.idempotence=true`, `acks=all`): a retried send is never
/// written twice and never reordered within a partition. Topics configured to travel in process
/// go to the in-process bus instead, with the same envelope bytes.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when every topic travels in process.
    producer: Option<FutureProducer>,
    source: String,
    // Keeps an embedded broker alive while this publisher exists.
    transports: Transports,
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
    /// The catalog names another service as the topic's producer: each topic has one owner.
    #[error(
        "`{source_service}` cannot publish to `{topic}`: the catalog names `{producer}` as its producer (publish with `app.publisher(\"{producer}\")`, or change the catalog)"
    )]
    NotTheProducer {
        /// The event's topic.
        topic: &'static str,
        /// The publisher's service.
        source_service: String,
        /// The catalog's producer of the topic.
        producer: &'static str,
    },
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
    /// The in-process bus did not take the record: the application shut down, or a listening
    /// group's worker died.
    #[error("cannot publish the `{topic}` event in process: {source}")]
    InProcess {
        /// The event's topic.
        topic: &'static str,
        /// Why.
        source: InProcessError,
    },
    /// The broker did not acknowledge the record within `message.timeout.ms` (unreachable, or
    /// the partition has no leader); set with [`App::producer_config`](crate::App::producer_config).
    #[error("the `{topic}` record was not acknowledged within `message.timeout.ms`")]
    TimedOut {
        /// The event's topic.
        topic: &'static str,
    },
    /// [`Publisher::flush`] returned with records still unacknowledged.
    #[error("{pending} records were still unacknowledged when the flush timed out")]
    FlushTimedOut {
        /// How many.
        pending: i32,
    },
    /// The producer was shut down before the broker acknowledged the record.
    #[error("the producer shut down before the `{topic}` record was acknowledged")]
    Canceled {
        /// The event's topic.
        topic: &'static str,
    },
}

impl PublishError {
    /// A short, stable name of the kind of failure (the `error_type` of publish metrics).
    pub fn error_type(&self) -> &'static str {
        match self {
            PublishError::Create(_) => "create",
            PublishError::NotTheProducer { .. } => "not_the_producer",
            PublishError::Serialize { .. } => "serialize",
            PublishError::Kafka { .. } => "kafka",
            PublishError::InProcess { .. } => "in_process",
            PublishError::TimedOut { .. } => "timeout",
            PublishError::FlushTimedOut { .. } => "flush_timeout",
            PublishError::Canceled { .. } => "canceled",
        }
    }
}

impl Publisher {
    /// A publisher that sends each topic through the transport `transports` choose for it; its
    /// Kafka producer gets `properties` after the framework's own.
    pub(crate) fn on(
        transports: Transports,
        source: &str,
        properties: &[(&str, &str)],
    ) -> Result<Self, PublishError> {
        let producer = match &transports.kafka {
            Some(kafka) => {
                let mut config = kafka.producer_config(source);
                for (key, value) in properties {
                    config.set(*key, *value);
                }
                Some(config.create().map_err(PublishError::Create)?)
            }
            None => None,
        };
        Ok(Publisher {
            inner: Arc::new(Inner {
                producer,
                source: source.to_owned(),
                transports,
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
    /// pipelined form. Waits only while the producer's local queue is full. Fails at once
    /// ([`PublishError::NotTheProducer`]) unless this publisher's service is the topic's
    /// producer in the catalog (or the catalog says `*`).
    pub async fn send<E: Event>(&self, event: &E) -> Result<PendingDelivery, PublishError> {
        if E::PRODUCER != "*" && E::PRODUCER != self.inner.source {
            return Err(PublishError::NotTheProducer {
                topic: E::TOPIC,
                source_service: self.inner.source.clone(),
                producer: E::PRODUCER,
            });
        }
        let context = EventContext::current();
        let (span, trace) = self.publish_span(E::TOPIC, context.trace());
        let kind = (event.event_type(), E::VERSION);
        let envelope = Envelope::stamped(&self.inner.source, kind, event, &context, &trace);
        self.send_envelope_in::<E, _>(&envelope, trace, span).await
    }

    /// Publishes an existing envelope unchanged (same `eventId`, type, source and time), as a
    /// replay or a re-send after an unknown outcome does: idempotent listeners skip it when its
    /// event was handled already. Resolves once the broker has acknowledged it.
    pub async fn publish_envelope<E: Event>(
        &self,
        envelope: &Envelope<E>,
    ) -> Result<Delivery, PublishError> {
        let parent = EventContext::current().trace().copied().or_else(|| {
            let trace_id = envelope.trace_id.as_deref()?;
            TraceContext::continuing(trace_id)
        });
        let (span, trace) = self.publish_span(E::TOPIC, parent.as_ref());
        self.send_envelope_in::<E, _>(envelope, trace, span)
            .await?
            .await
    }

    /// The span of a publish to `topic`, and the trace position its record carries: the
    /// span's own (with OpenTelemetry), else a child of `parent`, else a new trace.
    fn publish_span(
        &self,
        topic: &'static str,
        parent: Option<&TraceContext>,
    ) -> (Span, TraceContext) {
        let span = spans::send(self.inner.transports.system(topic), topic, None);
        spans::continue_trace(&span, parent);
        let trace = spans::trace_of(&span)
            .unwrap_or_else(|| parent.map_or_else(TraceContext::new_root, TraceContext::child));
        (span, trace)
    }

    async fn send_envelope_in<E: Event, P: std::borrow::Borrow<E> + serde::Serialize>(
        &self,
        envelope: &Envelope<P>,
        trace: TraceContext,
        span: Span,
    ) -> Result<PendingDelivery, PublishError> {
        let topic = E::TOPIC;
        let started = Instant::now();
        let event_id = envelope.event_id;
        span.record("messaging.message.id", tracing::field::display(event_id));
        let value = envelope
            .to_json()
            .map_err(|source| PublishError::Serialize { topic, source })?;
        let key = envelope.payload.borrow().key();
        let traceparent = trace.to_traceparent();
        let producer = match &self.inner.producer {
            Some(producer) if !self.inner.transports.is_in_process(topic) => producer,
            _ => {
                let headers = [(TRACEPARENT, Some(traceparent.as_bytes()))];
                let bus = &self.inner.transports.bus;
                let (partition, offset) = bus
                    .publish(topic, &key, &value, &headers)
                    .await
                    .map_err(|source| PublishError::InProcess { topic, source })?;
                let delivery = Delivery {
                    topic,
                    partition,
                    offset,
                    event_id,
                };
                return Ok(PendingDelivery {
                    state: DeliveryState::Done(delivery),
                    topic,
                    event_id,
                    started,
                    inner: self.inner.clone(),
                    span,
                });
            }
        };
        loop {
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: TRACEPARENT,
                value: Some(traceparent.as_str()),
            });
            let record = FutureRecord::to(topic)
                .key(key.as_ref())
                .payload(&value)
                .headers(headers);
            match producer.send_result(record) {
                Ok(future) => {
                    return Ok(PendingDelivery {
                        state: DeliveryState::Kafka(future),
                        topic,
                        event_id,
                        started,
                        inner: self.inner.clone(),
                        span,
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
    pub async fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.flush(timeout))
            .await
            .expect("flush does not panic")
    }
}

impl Inner {
    fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let Some(producer) = &self.producer else {
            return Ok(());
        };
        producer
            .flush(timeout)
            .map_err(|_| PublishError::FlushTimedOut {
                pending: producer.in_flight_count(),
            })
    }
}

impl Drop for Inner {
    /// Sends what is still queued (an unawaited [`Publisher::send`]) before the producer goes:
    /// librdkafka purges its queue when a producer is destroyed.
    fn drop(&mut self) {
        let Some(producer) = &self.producer else {
            return;
        };
        if producer.in_flight_count() == 0 {
            return;
        }
        // Blocks this thread (librdkafka's threads deliver; nothing here needs the runtime).
        if let Err(error) = self.flush(DROP_FLUSH_TIMEOUT) {
            tracing::error!(%error, source = %self.source, "a dropped publisher lost records");
        }
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
    state: DeliveryState,
    topic: &'static str,
    event_id: Uuid,
    started: Instant,
    inner: Arc<Inner>,
    /// The publish's `send` span, ended with the acknowledgement.
    span: Span,
}

enum DeliveryState {
    /// Waiting for the broker.
    Kafka(DeliveryFuture),
    /// Delivered in process.
    Done(Delivery),
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
        let future = match &mut self.state {
            DeliveryState::Kafka(future) => future,
            DeliveryState::Done(delivery) => {
                let delivery = *delivery;
                self.report(None);
                return Poll::Ready(Ok(delivery));
            }
        };
        let result = match ready!(future.poll_unpin(cx)) {
            Ok(Ok(delivery)) => Ok(Delivery {
                topic,
                partition: delivery.partition,
                offset: delivery.offset,
                event_id: self.event_id,
            }),
            Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _))) => {
                Err(PublishError::TimedOut { topic })
            }
            Ok(Err((source, _))) => Err(PublishError::Kafka { topic, source }),
            Err(_) => Err(PublishError::Canceled { topic }),
        };
        self.report(result.as_ref().err().map(PublishError::error_type));
        Poll::Ready(result)
    }
}

impl PendingDelivery {
    /// Reports the publish's duration and outcome to the application's metrics.
    fn report(&self, error_type: Option<&'static str>) {
        if let Some(error_type) = error_type {
            spans::failed(&self.span, error_type);
        }
        let transports = &self.inner.transports;
        let system = transports.system(self.topic);
        let took = self.started.elapsed();
        transports
            .metrics
            .published(system, self.topic, took, error_type);
    }
}

/// Publishing straight on a cluster, for tests and tools that have no [`crate::App`].
#[doc(hidden)]
impl Kafka {
    /// A publisher whose envelopes name `source` as the publishing service.
    pub fn publisher(&self, source: &str) -> Result<Publisher, PublishError> {
        Publisher::on(Transports::kafka(self), source, &[])
    }

    /// A publisher whose producer also gets the librdkafka `properties` (e.g.
    /// `message.timeout.ms`, how long a record may wait for an unreachable broker).
    pub fn publisher_with_config(
        &self,
        source: &str,
        properties: &[(&str, &str)],
    ) -> Result<Publisher, PublishError> {
        Publisher::on(Transports::kafka(self), source, properties)
    }
}
