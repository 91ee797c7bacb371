//! One Kafka consumer per group: fetches records and feeds each partition's worker in order.
//!
//! Backpressure: each partition has a small bounded queue. When a queue stays full (its worker
//! is slow, retrying, or waiting on Redis), the partition is paused in librdkafka (which drops
//! what it prefetched and later resumes at the next unconsumed offset), and the one record in
//! hand is held until the worker has drained its queue; other partitions keep flowing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Message, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::kafka::Kafka;
use crate::record::Record;
use crate::sinks::OffsetSink;
use crate::worker::{DrainSignal, Partition, Route};

/// Records queued per partition between the poll loop and its worker.
const QUEUE_CAPACITY: usize = 512;
/// How long the poll loop waits on a full queue before pausing that partition.
const STALL: Duration = Duration::from_millis(20);

type PartitionKey = (&'static str, i32);

/// A running partition worker, seen from the poll loop.
struct ActivePartition {
    queue: mpsc::Sender<Record>,
    stop: CancellationToken,
    paused: Arc<AtomicBool>,
    held: VecDeque<Record>,
    worker: JoinHandle<()>,
}

/// The workers of one consumer, shared with the rebalance callbacks.
#[derive(Default)]
struct Workers {
    active: HashMap<PartitionKey, ActivePartition>,
    /// Workers of revoked partitions finishing their current record.
    retiring: HashMap<PartitionKey, JoinHandle<()>>,
}

/// Rebalance callbacks: stop the workers of revoked partitions and commit what they finished.
struct GroupContext {
    group: &'static str,
    topics: HashMap<String, &'static str>,
    workers: Arc<Mutex<Workers>>,
    offsets: Mutex<FinishedOffsets>,
    /// Bumped by every revocation, so the poll loop knows its cached queue may be stale.
    generation: AtomicU64,
}

/// The queue the poll loop used last: records come in runs from one partition, and reusing it
/// saves a lock per record until a rebalance (a new generation) or a full queue.
struct LastQueue {
    key: PartitionKey,
    generation: u64,
    queue: mpsc::Sender<Record>,
    paused: Arc<AtomicBool>,
}

/// The last finished offset of each partition, so that a commit refused during a rebalance
/// (some brokers, e.g. librdkafka's mock, refuse commits while a group is joining) can be made
/// once the group is stable again, for the partitions this member keeps.
#[derive(Default)]
struct FinishedOffsets {
    finished: HashMap<PartitionKey, i64>,
    refused: HashMap<PartitionKey, i64>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
                let mut workers = self.workers.lock().expect("not poisoned");
                for element in partitions.elements() {
                    let Some(&topic) = self.topics.get(element.topic()) else {
                        continue;
                    };
                    let key = (topic, element.partition());
                    if let Some(active) = workers.active.remove(&key) {
                        active.stop.cancel();
                        workers.retiring.insert(key, active.worker);
                    }
                }
                drop(workers);
                info!(
                    group = self.group,
                    count = partitions.count(),
                    "partitions revoked; committing what is done"
                );
                let mut offsets = self.offsets.lock().expect("not poisoned");
                let finished = std::mem::take(&mut offsets.finished);
                if !commit(consumer, self.group) {
                    offsets.refused = finished;
                }
            }
            Rebalance::Assign(partitions) => {
                info!(
                    group = self.group,
                    count = partitions.count(),
                    "partitions assigned"
                );
            }
            Rebalance::Error(error) => warn!(group = self.group, %error, "rebalance failed"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(partitions) = rebalance else {
            return;
        };
        // librdkafka keeps a partition paused across reassignment; ours start unpaused.
        if let Err(error) = consumer.resume(partitions) {
            debug!(group = self.group, %error, "resume after assignment");
        }
        let refused = std::mem::take(&mut self.offsets.lock().expect("not poisoned").refused);
        let mut kept = TopicPartitionList::new();
        for element in partitions.elements() {
            let offset = self
                .topics
                .get(element.topic())
                .and_then(|&topic| refused.get(&(topic, element.partition())));
            if let Some(offset) = offset {
                let next = rdkafka::Offset::Offset(offset + 1);
                let _ = kept.add_partition_offset(element.topic(), element.partition(), next);
            }
        }
        if kept.count() > 0 {
            match consumer.commit(&kept, CommitMode::Sync) {
                Ok(()) => info!(
                    group = self.group,
                    count = kept.count(),
                    "committed the offsets refused during the rebalance"
                ),
                Err(error) => {
                    warn!(group = self.group, %error, "commit after the rebalance failed; those records will be redelivered")
                }
            }
        }
    }
}

/// Commits the stored offsets; "nothing to commit" is not an error. Returns whether the
/// broker took them.
fn commit<C: ConsumerContext>(consumer: &impl Consumer<C>, group: &str) -> bool {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => true,
        Err(error) => {
            warn!(group, %error, "commit refused; the offsets are kept for after the rebalance");
            false
        }
    }
}

/// Stores offsets in the consumer; librdkafka commits them (periodically, on rebalance, on close).
struct KafkaOffsets {
    consumer: Arc<StreamConsumer<GroupContext>>,
}

impl OffsetSink for KafkaOffsets {
    fn store(&self, topic: &'static str, partition: i32, offset: i64) {
        match self.consumer.store_offset(topic, partition, offset) {
            Ok(()) => {
                let context = self.consumer.context();
                let mut offsets = context.offsets.lock().expect("not poisoned");
                offsets.finished.insert((topic, partition), offset);
            }
            // The partition was revoked meanwhile: its new owner redelivers from the commit.
            Err(error) => debug!(topic, partition, offset, %error, "offset not stored"),
        }
    }
}

/// Consumer settings the framework relies on; the application's overrides come after them.
pub(crate) fn consumer_config(kafka: &Kafka, group: &str) -> rdkafka::ClientConfig {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("client.id", format!("erp-{group}"))
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "250")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        // A bounded prefetch (memory) without librdkafka's 1 s pause once it is full.
        .set("queued.max.messages.kbytes", "8192")
        .set("fetch.queue.backoff.ms", "20")
        .set("fetch.message.max.bytes", "16777216");
    if kafka.embedded().is_some() {
        // The mock coordinator makes every rebalance after the first (a member leaving, a
        // restart) wait `session.timeout.ms - 1 s`, even for an empty group; and it holds an
        // empty fetch for the whole `fetch.wait.max.ms`, not waking when a record arrives.
        config
            .set("session.timeout.ms", "2500")
            .set("heartbeat.interval.ms", "500")
            .set("fetch.wait.max.ms", "10");
    }
    config
}

/// The poll loop of one group.
pub(crate) struct GroupConsumer {
    group: &'static str,
    routes: HashMap<&'static str, Arc<dyn Route>>,
    consumer: Arc<StreamConsumer<GroupContext>>,
    workers: Arc<Mutex<Workers>>,
    offsets: Arc<KafkaOffsets>,
    stop: CancellationToken,
    resume_tx: mpsc::UnboundedSender<PartitionKey>,
    shutdown_timeout: Duration,
}

impl GroupConsumer {
    /// Creates the group's consumer and subscribes it to every route's topic.
    pub(crate) fn new(
        config: rdkafka::ClientConfig,
        group: &'static str,
        routes: Vec<Arc<dyn Route>>,
        stop: CancellationToken,
        shutdown_timeout: Duration,
    ) -> Result<(Self, mpsc::UnboundedReceiver<PartitionKey>), KafkaError> {
        let workers = Arc::new(Mutex::new(Workers::default()));
        let routes: HashMap<&'static str, Arc<dyn Route>> = routes
            .into_iter()
            .map(|route| (route.topic(), route))
            .collect();
        let context = GroupContext {
            group,
            topics: routes
                .keys()
                .map(|&topic| (topic.to_owned(), topic))
                .collect(),
            workers: workers.clone(),
            offsets: Mutex::new(FinishedOffsets::default()),
            generation: AtomicU64::new(0),
        };
        let consumer: Arc<StreamConsumer<GroupContext>> =
            Arc::new(config.create_with_context(context)?);
        let topics: Vec<&str> = routes.keys().copied().collect();
        consumer.subscribe(&topics)?;
        let (resume_tx, resume_rx) = mpsc::unbounded_channel();
        let offsets = Arc::new(KafkaOffsets {
            consumer: consumer.clone(),
        });
        let group_consumer = GroupConsumer {
            group,
            routes,
            consumer,
            workers,
            offsets,
            stop,
            resume_tx,
            shutdown_timeout,
        };
        Ok((group_consumer, resume_rx))
    }

    /// Polls until stopped, then shuts down gracefully: in-flight records finish (within the
    /// timeout), stored offsets are committed, and the consumer leaves the group.
    pub(crate) async fn run(self, mut resume_rx: mpsc::UnboundedReceiver<PartitionKey>) {
        info!(group = self.group, topics = ?self.routes.keys().collect::<Vec<_>>(), "listening");
        let consumer = self.consumer.clone();
        let mut messages = consumer.stream();
        let stopped = self.stop.clone().cancelled_owned();
        tokio::pin!(stopped);
        let mut last = None;
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                Some(key) = resume_rx.recv() => self.resume(key),
                message = messages.next() => match message.expect("Kafka streams never end") {
                    Ok(message) => self.dispatch(message, &mut last).await,
                    Err(error) => warn!(group = self.group, %error, "consumer error; librdkafka retries"),
                },
            }
        }
        drop(messages);
        self.shut_down().await;
    }

    async fn dispatch(&self, message: BorrowedMessage<'_>, last: &mut Option<LastQueue>) {
        if let Some(cached) = last.as_ref().filter(|cached| {
            cached.key.1 == message.partition()
                && cached.key.0 == message.topic()
                && cached.generation == self.consumer.context().generation.load(Ordering::Acquire)
                && !cached.paused.load(Ordering::Acquire)
        }) {
            let record = Record::from_kafka(cached.key.0, &message);
            match cached.queue.try_send(record) {
                Ok(()) => return,
                // Full (or gone): the careful path below decides.
                Err(_) => *last = None,
            }
        }
        let Some(route) = self.routes.get(message.topic()) else {
            warn!(
                topic = message.topic(),
                "record of a topic no listener handles"
            );
            return;
        };
        let record = Record::from_kafka(route.topic(), &message);
        drop(message);
        let key = (route.topic(), record.partition);
        let (queue, paused, record) = {
            let mut workers = self.workers.lock().expect("not poisoned");
            if !workers.active.contains_key(&key) {
                let started = self.start_worker(route, key, &mut workers);
                workers.active.insert(key, started);
            }
            let active = workers.active.get_mut(&key).expect("just ensured");
            if active.held.is_empty() {
                *last = Some(LastQueue {
                    key,
                    generation: self.consumer.context().generation.load(Ordering::Acquire),
                    queue: active.queue.clone(),
                    paused: active.paused.clone(),
                });
            }
            if !active.held.is_empty() {
                // Paused already: librdkafka does not deliver more, but never lose one if it does.
                active.held.push_back(record);
                return;
            }
            match active.queue.try_send(record) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(record)) => {
                    (active.queue.clone(), active.paused.clone(), record)
                }
            }
        };
        if let Ok(Ok(permit)) = tokio::time::timeout(STALL, queue.reserve()).await {
            permit.send(record);
            return;
        }
        paused.store(true, Ordering::Release);
        let record = match queue.try_send(record) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(record)) => record,
        };
        debug!(
            topic = key.0,
            partition = key.1,
            "queue full; pausing the partition"
        );
        if let Err(error) = self.consumer.pause(&partition_list(key)) {
            warn!(%error, "pause failed");
        }
        let mut workers = self.workers.lock().expect("not poisoned");
        match workers.active.get_mut(&key) {
            Some(active) if Arc::ptr_eq(&active.paused, &paused) => active.held.push_back(record),
            // Revoked meanwhile: the record is uncommitted, and its new owner will read it.
            _ => {}
        }
    }

    fn start_worker(
        &self,
        route: &Arc<dyn Route>,
        key: PartitionKey,
        workers: &mut Workers,
    ) -> ActivePartition {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let stop = self.stop.child_token();
        let paused = Arc::new(AtomicBool::new(false));
        let partition = Partition {
            topic: key.0,
            partition: key.1,
            offsets: self.offsets.clone(),
            stop: stop.clone(),
            drained: Some(DrainSignal {
                paused: paused.clone(),
                low_water: QUEUE_CAPACITY / 2,
                resume: self.resume_tx.clone(),
            }),
        };
        let run = route.clone().start_partition(partition, receiver);
        // A revoked worker of the same partition finishes its record before the new one starts,
        // so that one key's events are never handled concurrently or out of order.
        let previous = workers.retiring.remove(&key);
        let worker = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            run.await;
        });
        workers.retiring.retain(|_, handle| !handle.is_finished());
        ActivePartition {
            queue,
            stop,
            paused,
            held: VecDeque::new(),
            worker,
        }
    }

    fn resume(&self, key: PartitionKey) {
        let mut workers = self.workers.lock().expect("not poisoned");
        let Some(active) = workers.active.get_mut(&key) else {
            return;
        };
        while let Some(record) = active.held.pop_front() {
            match active.queue.try_send(record) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(record)) => {
                    active.held.push_front(record);
                    active.paused.store(true, Ordering::Release);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        debug!(
            topic = key.0,
            partition = key.1,
            "queue drained; resuming the partition"
        );
        if let Err(error) = self.consumer.resume(&partition_list(key)) {
            warn!(%error, "resume failed");
        }
    }

    async fn shut_down(self) {
        info!(
            group = self.group,
            "stopping: finishing the records in hand"
        );
        let handles: Vec<JoinHandle<()>> = {
            let mut workers = self.workers.lock().expect("not poisoned");
            let active = std::mem::take(&mut workers.active);
            let retiring = std::mem::take(&mut workers.retiring);
            active
                .into_values()
                .map(|active| active.worker)
                .chain(retiring.into_values())
                .collect()
        };
        let aborts: Vec<_> = handles.iter().map(JoinHandle::abort_handle).collect();
        let finished = tokio::time::timeout(
            self.shutdown_timeout,
            futures_util::future::join_all(handles),
        )
        .await;
        if finished.is_err() {
            warn!(group = self.group, timeout = ?self.shutdown_timeout, "handlers still running at the shutdown timeout; abandoning them (their records are redelivered)");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
        let GroupConsumer {
            group,
            consumer,
            offsets,
            ..
        } = self;
        drop(offsets);
        // Commit and close (leaving the group) block on the broker: off the async threads.
        tokio::task::spawn_blocking(move || {
            commit(consumer.as_ref(), group);
            consumer.unsubscribe();
            drop(consumer);
        })
        .await
        .expect("closing the consumer does not panic");
        info!(group, "stopped");
    }
}

fn partition_list((topic, partition): PartitionKey) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    list
}
