//! One Kafka consumer per group, polled on a thread of its own, and a worker per assigned
//! partition that its records are handed to, in order.
//!
//! The consumer's partitions share its one queue, so librdkafka bounds their prefetch as a
//! whole (`queued.max.messages.kbytes`), whatever the number of partitions, and one poll serves
//! them all: the cost of a wake-up does not grow with the partitions a member owns. Each record
//! is copied once (see [`record`](super::record)) into its partition's inbox
//! ([`inbox`](super::inbox)), within a budget of the same size for the whole consumer: while
//! it is spent the consumer polls nothing, and if that lasts, a partition whose worker is stuck
//! is paused while it holds more than its share.
//!
//! A revoked partition is given up only once its worker has finished the record in hand
//! (within the shutdown timeout) and stored its offset, and what is done is committed: its
//! next owner starts after the last handled record, never beside a handler still running.
//! That wait blocks the rebalance callback, which runs in the consumer's poll, on its thread.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::core::listener::Listener;
use crate::runtime::metrics::Metrics;
use crate::runtime::record::RunBuffer;
use crate::runtime::route::Route;
use crate::runtime::sinks::OffsetSink;
use crate::runtime::worker::{ListenerRuntime, Partition};
use crate::transport::kafka::inbox::{Budget, Inbox, InboxSender, Valve, inbox};
use crate::transport::kafka::record::copy_into;

type PartitionKey = (&'static str, i32);

/// How long one poll waits for a record, and so how soon the consumer's thread sees a stop.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long the consumer waits for its workers to take records while their inboxes hold the
/// budget, before it polls anyway (serving rebalances, and pausing the partitions past their
/// share as records come for them).
const STALL_WAIT: Duration = Duration::from_millis(200);

/// The in-flight budget when the configuration does not say (librdkafka's own default prefetch
/// bound, 64 MiB; `Kafka` always says, 8 MiB unless told otherwise).
const DEFAULT_BUDGET: usize = 64 * 1024 * 1024;

/// The consumer of one group.
type GroupKafkaConsumer = BaseConsumer<GroupContext>;

/// A listener's runtime as a Kafka group consumer drives it: each assigned partition read from
/// its inbox.
pub(crate) trait KafkaRoute: Route {
    /// Starts a worker for one partition, reading its inbox.
    fn start_kafka_partition(
        self: Arc<Self>,
        partition: Partition,
        inbox: Inbox,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<L: Listener> KafkaRoute for ListenerRuntime<L> {
    fn start_kafka_partition(
        self: Arc<Self>,
        partition: Partition,
        inbox: Inbox,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_partition(partition, inbox))
    }
}

/// A running partition worker.
struct ActiveWorker {
    stop: CancellationToken,
    worker: JoinHandle<()>,
    /// Disconnected once the worker's task is gone (finished, or dropped by an abort).
    gone: mpsc::Receiver<()>,
    /// Where it stores offsets; closed when its partition is given up.
    offsets: Arc<KafkaOffsets>,
    /// Where the consumer hands it records.
    inbox: InboxSender,
}

/// The workers of one consumer.
#[derive(Default)]
struct Workers {
    active: HashMap<PartitionKey, ActiveWorker>,
    /// Workers of revoked partitions finishing their current record.
    retiring: HashMap<PartitionKey, JoinHandle<()>>,
}

/// The group's listeners and workers, driven by the rebalance callbacks: assigned partitions
/// get a worker, revoked ones lose theirs and have what is done committed.
pub(crate) struct GroupContext {
    group: &'static str,
    routes: HashMap<&'static str, Arc<dyn KafkaRoute>>,
    workers: Mutex<Workers>,
    offsets: Mutex<FinishedOffsets>,
    /// The consumer this context belongs to (set once it exists), to pause partitions.
    consumer: OnceLock<Weak<GroupKafkaConsumer>>,
    /// The bytes of records polled and not yet taken by the workers.
    budget: Arc<Budget>,
    stop: CancellationToken,
    /// Set once the group gave this member its first assignment (empty or not).
    joined: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    runtime: tokio::runtime::Handle,
    /// How long a revoked partition's worker may take to finish its record.
    shutdown_timeout: Duration,
}

/// The last finished offset of each partition, so that a commit refused during a rebalance
/// (some brokers, e.g. librdkafka's mock, refuse commits while a group is joining) can be made
/// once the group is stable again, for the partitions this member keeps.
#[derive(Default)]
struct FinishedOffsets {
    finished: HashMap<PartitionKey, i64>,
    refused: HashMap<PartitionKey, i64>,
}

impl ClientContext for GroupContext {
    /// librdkafka's statistics (when `statistics.interval.ms` is set): each assigned
    /// partition's lag, for the metrics.
    fn stats_raw(&self, statistics: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Statistics {
            topics: HashMap<String, TopicStatistics>,
        }
        #[derive(serde::Deserialize)]
        struct TopicStatistics {
            partitions: HashMap<String, PartitionStatistics>,
        }
        #[derive(serde::Deserialize)]
        struct PartitionStatistics {
            partition: i32,
            consumer_lag: i64,
        }
        let Ok(statistics) = serde_json::from_slice::<Statistics>(statistics) else {
            debug!(group = self.group, "unreadable librdkafka statistics");
            return;
        };
        // -1: not assigned here (or not known yet); partition -1 is librdkafka's internal one.
        let lags: Vec<(String, i32, i64)> = statistics
            .topics
            .into_iter()
            .flat_map(|(topic, stats)| {
                stats
                    .partitions
                    .into_values()
                    .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                    .map(move |p| (topic.clone(), p.partition, p.consumer_lag))
            })
            .collect();
        self.metrics.set_lag(self.group, &lags);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                self.give_up(partitions);
                info!(
                    group = self.group,
                    count = partitions.count(),
                    "partitions revoked; committing what is done"
                );
                let mut offsets = self.offsets.lock().expect("not poisoned");
                let finished = std::mem::take(&mut offsets.finished);
                if let Err(error) = commit(consumer) {
                    warn!(group = self.group, %error, "commit refused; the offsets are kept for after the rebalance");
                    offsets.refused = finished;
                }
            }
            Rebalance::Assign(partitions) => {
                info!(
                    group = self.group,
                    count = partitions.count(),
                    "partitions assigned"
                );
                self.joined.store(true, Ordering::Relaxed);
                // Before librdkafka assigns them: their records must never reach the shared queue.
                self.start_workers(partitions);
            }
            Rebalance::Error(error) => warn!(group = self.group, %error, "rebalance failed"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(partitions) = rebalance else {
            return;
        };
        // A partition paused for an inbox of an earlier assignment starts fetching again.
        if let Err(error) = consumer.resume(partitions) {
            warn!(group = self.group, %error, "cannot resume the assigned partitions");
        }
        let refused = std::mem::take(&mut self.offsets.lock().expect("not poisoned").refused);
        let mut kept = TopicPartitionList::new();
        for element in partitions.elements() {
            let offset = self
                .route_of(element.topic(), element.partition())
                .and_then(|(_, key)| refused.get(&key));
            if let Some(offset) = offset {
                let next = rdkafka::Offset::Offset(offset + 1);
                let _ = kept.add_partition_offset(element.topic(), element.partition(), next);
            }
        }
        let kept = ahead_of_commit(consumer, kept);
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

impl GroupContext {
    fn route_of(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<(&Arc<dyn KafkaRoute>, PartitionKey)> {
        let route = self.routes.get(topic)?;
        Some((route, (route.topic(), partition)))
    }

    /// Stops the workers of revoked `partitions` and waits (within the shutdown timeout) until
    /// each has finished its record and stored its offset; a worker still running then is
    /// aborted and can store nothing more.
    fn give_up(&self, partitions: &TopicPartitionList) {
        let leaving: Vec<(PartitionKey, ActiveWorker)> = {
            let mut workers = self.workers.lock().expect("not poisoned");
            partitions
                .elements()
                .iter()
                .filter_map(|element| self.route_of(element.topic(), element.partition()))
                .filter_map(|(_, key)| Some((key, workers.active.remove(&key)?)))
                .collect()
        };
        leaving.iter().for_each(|(_, active)| active.stop.cancel());
        let deadline = Instant::now() + self.shutdown_timeout;
        for ((topic, partition), active) in &leaving {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = active.gone.recv_timeout(left) {
                error!(
                    group = self.group,
                    topic,
                    partition,
                    timeout = ?self.shutdown_timeout,
                    "a revoked partition's handler is still running; giving the partition up (its next owner may handle that record again)"
                );
            }
        }
        let mut workers = self.workers.lock().expect("not poisoned");
        self.budget.share_between(workers.active.len());
        for (key, active) in leaving {
            active.offsets.close();
            active.inbox.close();
            if !active.worker.is_finished() {
                active.worker.abort();
                workers.retiring.insert(key, active.worker);
            }
        }
    }

    fn start_workers(&self, partitions: &TopicPartitionList) {
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut workers = self.workers.lock().expect("not poisoned");
        workers.retiring.retain(|_, worker| !worker.is_finished());
        for element in partitions.elements() {
            let Some((route, key)) = self.route_of(element.topic(), element.partition()) else {
                continue;
            };
            if workers.active.contains_key(&key) {
                continue;
            }
            let stop = self.stop.child_token();
            let offsets = Arc::new(KafkaOffsets {
                consumer: consumer.clone(),
                open: Mutex::new(true),
            });
            let partition = Partition {
                topic: key.0,
                partition: key.1,
                offsets: offsets.clone(),
                stop: stop.clone(),
            };
            let valve = PartitionValve {
                consumer: Arc::downgrade(&consumer),
                key,
            };
            let (sender, inbox) = inbox(self.budget.clone(), valve);
            let (alive, gone) = mpsc::channel::<()>();
            // A revoked worker of the same partition finishes its record before the new one
            // starts, so that one key's events are never handled concurrently or out of order;
            // the records wait in the inbox meanwhile.
            let previous = workers.retiring.remove(&key);
            let route = route.clone();
            let group = self.group;
            let group_stop = self.stop.clone();
            let worker = self.runtime.spawn(async move {
                let _alive = alive;
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                let work = route.start_kafka_partition(partition, inbox);
                if AssertUnwindSafe(work).catch_unwind().await.is_err() {
                    // A bug (handler panics are failed attempts): the partition would stall
                    // unseen. The group stops instead, so that its partitions move to members
                    // that work, and says why.
                    error!(
                        group,
                        topic = key.0,
                        partition = key.1,
                        "a partition worker died; this group's consumer stops"
                    );
                    group_stop.cancel();
                }
            });
            workers.active.insert(
                key,
                ActiveWorker {
                    stop,
                    worker,
                    gone,
                    offsets,
                    inbox: sender,
                },
            );
        }
        self.budget.share_between(workers.active.len());
    }

    /// Adds a polled record to `run`, handing the run over first when the record is another
    /// partition's or the run is full. A record of a partition given up meanwhile is dropped
    /// (its next owner reads it again).
    fn dispatch(&self, message: &BorrowedMessage<'_>, run: &mut Option<Run>) {
        let (topic, partition) = (message.topic(), message.partition());
        // The common case, a record continuing the run, needs no route lookup.
        if let Some(current) = run
            .as_mut()
            .filter(|current| current.key == (topic, partition) && !current.records.is_full())
        {
            copy_into(&mut current.records, current.key.0, message);
            return;
        }
        let Some((route, key)) = self.route_of(topic, partition) else {
            warn!(
                group = self.group,
                topic, "record of a topic no listener reads"
            );
            return;
        };
        if let Some(full_or_other) = run.take() {
            full_or_other.hand_over();
        }
        let mut records = RunBuffer::new();
        copy_into(&mut records, route.topic(), message);
        let workers = self.workers.lock().expect("not poisoned");
        match workers.active.get(&key) {
            Some(active) => {
                *run = Some(Run {
                    key,
                    inbox: active.inbox.clone(),
                    records,
                });
            }
            None => debug!(
                group = self.group,
                topic = key.0,
                partition = key.1,
                offset = message.offset(),
                "record of a partition given up; not handled here"
            ),
        }
    }
}

/// Consecutive records of one partition, polled one after another, handed to its worker in
/// one go: one hand-over (and at most one wake-up of the worker) per run, not per record, and
/// one buffer for their bytes.
struct Run {
    key: PartitionKey,
    inbox: InboxSender,
    records: RunBuffer,
}

impl Run {
    /// Hands the records to the worker; if their partition was given up since they were
    /// polled, its inbox is closed and they are dropped.
    fn hand_over(self) {
        self.inbox.push(self.records.into_records());
    }
}

/// Pauses and resumes fetching one partition of a group's consumer.
struct PartitionValve {
    consumer: Weak<GroupKafkaConsumer>,
    key: PartitionKey,
}

impl PartitionValve {
    fn switch(&self, pause: bool) {
        let Some(consumer) = self.consumer.upgrade() else {
            return;
        };
        let (topic, partition) = self.key;
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        let switched = if pause {
            consumer.pause(&list)
        } else {
            consumer.resume(&list)
        };
        match switched {
            Ok(()) => debug!(topic, partition, pause, "partition fetching switched"),
            Err(error) => warn!(topic, partition, pause, %error, "cannot pause or resume"),
        }
    }
}

impl Valve for PartitionValve {
    fn pause(&self) {
        self.switch(true);
    }

    fn resume(&self) {
        self.switch(false);
    }
}

/// Polls the consumer until `stop`: records go to their partitions' workers, the rebalance
/// callbacks run here. A run of records is handed over once the queue has nothing more ready
/// at once, another partition's record comes, or it is full. While the inboxes hold the
/// budget, nothing is polled until a worker takes records, or for [`STALL_WAIT`].
fn serve(consumer: &GroupKafkaConsumer, group: &'static str, stop: &CancellationToken) {
    let context = consumer.context();
    let mut run: Option<Run> = None;
    while !stop.is_cancelled() {
        if context.budget.spent()
            && let Some(ready) = run.take()
        {
            ready.hand_over();
        }
        context.budget.wait_for_room(STALL_WAIT);
        let wait = if run.is_some() {
            Duration::ZERO
        } else {
            POLL_INTERVAL
        };
        match consumer.poll(wait) {
            Some(Ok(message)) => context.dispatch(&message, &mut run),
            Some(Err(error)) => warn!(group, %error, "consumer error; librdkafka retries"),
            None => {
                if let Some(ready) = run.take() {
                    ready.hand_over();
                }
            }
        }
    }
}

/// Commits the stored offsets; "nothing to commit" is not an error.
fn commit<C: ConsumerContext>(consumer: &impl Consumer<C>) -> Result<(), KafkaError> {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        result => result,
    }
}

/// `ours` (offsets to commit), kept only where they are ahead of what the group has committed:
/// a commit refused during a rebalance is made later only if no other member has
/// committed further meanwhile (a committed offset never moves backwards).
fn ahead_of_commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    ours: TopicPartitionList,
) -> TopicPartitionList {
    if ours.count() == 0 {
        return ours;
    }
    let Ok(theirs) = consumer.committed_offsets(ours.clone(), Duration::from_secs(10)) else {
        warn!("cannot read the committed offsets; not committing after the rebalance");
        return TopicPartitionList::new();
    };
    let mut ahead = TopicPartitionList::new();
    for element in ours.elements() {
        let committed = theirs
            .find_partition(element.topic(), element.partition())
            .map(|t| t.offset());
        let ahead_of_theirs = match (element.offset(), committed) {
            (Offset::Offset(mine), Some(Offset::Offset(theirs))) => mine > theirs,
            _ => true,
        };
        if ahead_of_theirs {
            let _ =
                ahead.add_partition_offset(element.topic(), element.partition(), element.offset());
        }
    }
    ahead
}

/// Stores offsets in the consumer; librdkafka commits them (periodically, on rebalance, on
/// close). Closed when its partition is given up: a worker still running then stores nothing.
struct KafkaOffsets {
    consumer: Arc<GroupKafkaConsumer>,
    open: Mutex<bool>,
}

impl KafkaOffsets {
    fn close(&self) {
        *self.open.lock().expect("not poisoned") = false;
    }
}

impl OffsetSink for KafkaOffsets {
    fn store(&self, topic: &'static str, partition: i32, offset: i64) {
        let open = self.open.lock().expect("not poisoned");
        if !*open {
            debug!(
                topic,
                partition, offset, "partition given up; offset not stored"
            );
            return;
        }
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

/// The consumer of one group, serving its rebalances until stopped.
pub(crate) struct GroupConsumer {
    group: &'static str,
    consumer: Arc<GroupKafkaConsumer>,
    stop: CancellationToken,
    shutdown_timeout: Duration,
}

impl GroupConsumer {
    /// Creates the group's consumer and subscribes it to every route's topic.
    pub(crate) fn new(
        config: rdkafka::ClientConfig,
        group: &'static str,
        routes: Vec<Arc<dyn KafkaRoute>>,
        stop: CancellationToken,
        shutdown_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, KafkaError> {
        // The in-flight budget is as big as librdkafka's prefetch bound (in KiB).
        let budget = config
            .get("queued.max.messages.kbytes")
            .and_then(|kbytes| kbytes.parse::<usize>().ok())
            .map_or(DEFAULT_BUDGET, |kbytes| kbytes * 1024);
        let context = GroupContext {
            budget: Arc::new(Budget::new(budget, metrics.consumer_buffer(group))),
            joined: Arc::default(),
            metrics,
            group,
            routes: routes
                .into_iter()
                .map(|route| (route.topic(), route))
                .collect(),
            workers: Mutex::new(Workers::default()),
            offsets: Mutex::new(FinishedOffsets::default()),
            consumer: OnceLock::new(),
            stop: stop.clone(),
            runtime: tokio::runtime::Handle::current(),
            shutdown_timeout,
        };
        let consumer: Arc<GroupKafkaConsumer> = Arc::new(config.create_with_context(context)?);
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        let topics: Vec<&str> = consumer.context().routes.keys().copied().collect();
        consumer.subscribe(&topics)?;
        Ok(GroupConsumer {
            group,
            consumer,
            stop,
            shutdown_timeout,
        })
    }

    /// Becomes true once the group gave this member its first assignment (empty or not).
    pub(crate) fn joined(&self) -> Arc<AtomicBool> {
        self.consumer.context().joined.clone()
    }

    /// Serves rebalances until stopped, then shuts down gracefully: in-flight records finish
    /// (within the timeout), stored offsets are committed, and the consumer leaves the group.
    pub(crate) async fn run(self) {
        let topics: Vec<&str> = self.consumer.context().routes.keys().copied().collect();
        info!(group = self.group, ?topics, "listening");
        let (consumer, stop, group) = (self.consumer.clone(), self.stop.clone(), self.group);
        let (served, serving_ended) = tokio::sync::oneshot::channel();
        // The rebalance callbacks run in this loop and block while revoked workers finish.
        let serving = std::thread::Builder::new()
            .name(format!("erp-{group}"))
            .spawn(move || {
                serve(&consumer, group, &stop);
                let _ = served.send(());
            });
        match serving {
            Ok(_) => {
                let _ = serving_ended.await;
            }
            Err(error) => error!(group, %error, "cannot start the consumer's thread"),
        }
        self.shut_down().await;
    }

    async fn shut_down(self) {
        info!(
            group = self.group,
            "stopping: finishing the records in hand"
        );
        let handles: Vec<JoinHandle<()>> = {
            let context = self.consumer.context();
            let mut workers = context.workers.lock().expect("not poisoned");
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
            group, consumer, ..
        } = self;
        // Commit and close (leaving the group) block on the broker: off the async threads.
        tokio::task::spawn_blocking(move || {
            if let Err(error) = commit(consumer.as_ref()) {
                // E.g. the group ended this member's session while the broker was out of reach.
                warn!(group, %error, "the last commit was refused; the records handled since the one before go to their partitions' next owner again");
            }
            consumer.unsubscribe();
            drop(consumer);
        })
        .await
        .expect("closing the consumer does not panic");
        info!(group, "stopped");
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;

    use super::*;
    use crate::transport::kafka::embedded::EmbeddedBroker;

    fn offsets(entries: &[(i32, i64)]) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for &(partition, offset) in entries {
            list.add_partition_offset("t", partition, Offset::Offset(offset))
                .unwrap();
        }
        list
    }

    #[test]
    fn a_commit_refused_in_a_rebalance_and_made_later_never_moves_the_group_back() {
        let broker = EmbeddedBroker::new(1).unwrap();
        broker.create_topic("t", 3).unwrap();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("group.id", "g")
            .create()
            .unwrap();
        // Meanwhile another member handled partition 0 further, and partition 1 less far.
        consumer
            .commit(&offsets(&[(0, 100), (1, 10)]), CommitMode::Sync)
            .unwrap();
        let ours = offsets(&[(0, 50), (1, 20), (2, 5)]);
        let kept: Vec<(i32, Offset)> = ahead_of_commit(&consumer, ours)
            .elements()
            .iter()
            .map(|element| (element.partition(), element.offset()))
            .collect();
        assert_eq!(kept, [(1, Offset::Offset(20)), (2, Offset::Offset(5))]);
    }
}
