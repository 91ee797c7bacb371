//! The in-process transport: the seed's early phase (Spring's `ApplicationEvent`), where the
//! modules of one process exchange events without Kafka.
//!
//! The same listeners run on it, on the same envelope bytes, with the same ordering, retries,
//! dead letters and idempotency; moving a topic to Kafka is configuration
//! (`ERP_IN_PROCESS_TOPICS`), not code. Like an `ApplicationEvent`, an event reaches the groups
//! listening in this process when it is published; there is no log to replay, so an event
//! published while no group listens to its topic reaches nobody (counted by
//! [`InProcessBus::unreceived`]). Publishing waits while a listener's queue is full
//! (backpressure), except from inside a handler, which never waits for a queue (a handler
//! publishing to its own topic, or two listeners publishing to each other, would wait on
//! themselves); no lock is held while a publisher waits. At shutdown the queued events are
//! handled before the workers stop (within the shutdown timeout); publishing after it is an
//! error. The newest dead letters of each topic are kept in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::core::catalog::Catalog;
use crate::core::context::EventContext;
use crate::runtime::dlt::{DeadLetterReason, dead_letter_headers};
use crate::runtime::queue::{QueueSender, queue};
use crate::runtime::record::{Record, Timestamp};
use crate::runtime::route::Route;
use crate::runtime::sinks::{DeadLetterFuture, DeadLetterSink, OffsetSink};
use crate::runtime::worker::Partition;

/// Records queued per partition and group between a publisher and the group's worker.
const QUEUE_CAPACITY: usize = 512;

/// Dead letters kept per topic; older ones are dropped (a process's life must not grow them
/// without bound).
pub(crate) const DEAD_LETTERS_KEPT: usize = 10_000;

/// The events of one process's in-process topics, and what became of them. Cheap to clone;
/// clones share the bus.
#[derive(Clone, Default)]
pub struct InProcessBus {
    inner: Arc<Bus>,
}

#[derive(Default)]
struct Bus {
    partition_counts: HashMap<String, i32>,
    lanes: Mutex<HashMap<String, Arc<[Lane]>>>,
    /// The newest dead letters by original topic.
    dead_letters: Mutex<HashMap<String, VecDeque<Record>>>,
    committed: Mutex<HashMap<(String, String), BTreeMap<i32, i64>>>,
    /// Events published while no group listened, by topic.
    unreceived: Mutex<HashMap<&'static str, u64>>,
    /// Set when the application shut down.
    stopped: AtomicBool,
}

/// One partition of one topic: its next offset, and the queue of each group listening to it.
#[derive(Default)]
struct Lane {
    /// Held (never across an await) while a record is handed to every group, so that offsets
    /// and queue order agree.
    next_offset: Mutex<i64>,
    subscribers: Mutex<Vec<(&'static str, QueueSender)>>,
}

/// Why the bus did not take a record.
#[derive(Debug, thiserror::Error)]
pub enum InProcessError {
    /// The application shut down.
    #[error("the application shut down")]
    Stopped,
    /// A group listening in this process stopped reading (its worker died).
    #[error("group `{group}` no longer receives events in this process (its worker stopped)")]
    ListenerGone {
        /// The group.
        group: &'static str,
    },
}

impl InProcessBus {
    /// A bus whose topics have the catalog's partition counts (other topics have one).
    pub fn new(catalog: &Catalog) -> Self {
        let partition_counts = catalog
            .topics()
            .iter()
            .map(|topic| (topic.name.clone(), topic.partitions.max(1)))
            .collect();
        InProcessBus {
            inner: Arc::new(Bus {
                partition_counts,
                ..Bus::default()
            }),
        }
    }

    fn lanes(&self, topic: &str) -> Arc<[Lane]> {
        let mut lanes = self.inner.lanes.lock().expect("not poisoned");
        lanes
            .entry(topic.to_owned())
            .or_insert_with(|| {
                let count = self.inner.partition_counts.get(topic).copied().unwrap_or(1);
                (0..count).map(|_| Lane::default()).collect()
            })
            .clone()
    }

    /// Hands a record to every group listening to `topic`, waiting while a queue is full
    /// (unless called from a handler); returns its partition (chosen by key) and offset.
    pub(crate) async fn publish(
        &self,
        topic: &'static str,
        key: &str,
        value: &[u8],
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<(i32, i64), InProcessError> {
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(InProcessError::Stopped);
        }
        let lanes = self.lanes(topic);
        let partition = partition_for(key, lanes.len());
        let lane = &lanes[partition];
        let subscribers = lane.subscribers.lock().expect("not poisoned").clone();
        if let Some((group, _)) = subscribers.iter().find(|(_, queue)| queue.is_closed()) {
            return Err(InProcessError::ListenerGone { group });
        }
        // Room first, with no lock held: a publisher waiting here blocks nobody else.
        let may_wait = !EventContext::in_handler();
        let mut slots = Vec::with_capacity(subscribers.len());
        for (_, queue) in &subscribers {
            slots.push(queue.reserve(may_wait).await);
        }
        let mut next_offset = lane.next_offset.lock().expect("not poisoned");
        let offset = *next_offset;
        *next_offset += 1;
        let record = Record::new(
            (topic, partition as i32, offset),
            Some(key.as_bytes()),
            Some(value),
            headers.iter().copied(),
            Timestamp::CreateTime(now_millis()),
        );
        if subscribers.is_empty() {
            tracing::debug!(topic, "no group listens to this topic in this process");
            *self
                .inner
                .unreceived
                .lock()
                .expect("not poisoned")
                .entry(topic)
                .or_default() += 1;
        }
        for ((group, queue), slot) in subscribers.iter().zip(slots) {
            if queue.send(record.clone(), slot).is_err() {
                return Err(InProcessError::ListenerGone { group });
            }
        }
        Ok((partition as i32, offset))
    }

    /// Marks the bus stopped: publishing fails from now on.
    pub(crate) fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Release);
    }

    /// How many `topic` events were published while no group listened to it in this process
    /// (like a Spring `ApplicationEvent` nobody listens to, they reached nobody).
    pub fn unreceived(&self, topic: &str) -> u64 {
        let unreceived = self.inner.unreceived.lock().expect("not poisoned");
        unreceived.get(topic).copied().unwrap_or(0)
    }

    /// Starts a worker per partition of each route's topic, fed by this bus, and returns the
    /// task that stops them: on `stop`, the group stops receiving, its queued records are
    /// handled, and workers still busy after `shutdown_timeout` are abandoned.
    pub(crate) fn start_group(
        &self,
        group: &'static str,
        routes: &[Arc<dyn Route>],
        stop: CancellationToken,
        shutdown_timeout: Duration,
    ) -> JoinHandle<()> {
        let workers_stop = CancellationToken::new();
        let offsets: Arc<dyn OffsetSink> = Arc::new(GroupOffsets {
            bus: self.clone(),
            group,
        });
        let mut workers = Vec::new();
        for route in routes {
            let lanes = self.lanes(route.topic());
            for (partition, lane) in lanes.iter().enumerate() {
                let (queue, receiver) = queue(QUEUE_CAPACITY);
                lane.subscribers
                    .lock()
                    .expect("not poisoned")
                    .push((group, queue));
                let partition = Partition {
                    topic: route.topic(),
                    partition: partition as i32,
                    offsets: offsets.clone(),
                    stop: workers_stop.clone(),
                };
                let place = (partition.topic, partition.partition);
                let worker = route.clone().start_partition(partition, receiver);
                workers.push(tokio::spawn(watched(group, place, worker)));
            }
        }
        info!(group, topics = ?routes.iter().map(|r| r.topic()).collect::<Vec<_>>(), "listening in process");
        let topics: Vec<&'static str> = routes.iter().map(|route| route.topic()).collect();
        let bus = self.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            for topic in topics {
                for lane in bus.lanes(topic).iter() {
                    let mut subscribers = lane.subscribers.lock().expect("not poisoned");
                    subscribers.retain(|(subscriber, _)| *subscriber != group);
                }
            }
            let aborts: Vec<_> = workers.iter().map(JoinHandle::abort_handle).collect();
            let drained =
                tokio::time::timeout(shutdown_timeout, futures_util::future::join_all(workers))
                    .await;
            if drained.is_err() {
                warn!(group, timeout = ?shutdown_timeout, "in-process events still queued at the shutdown timeout are dropped");
                workers_stop.cancel();
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
            }
            info!(group, "stopped listening in process");
        })
    }

    /// The records dead-lettered from `topic` (what Kafka would hold in its dead-letter topic),
    /// with their dead-letter headers, in the order they were dead-lettered: the newest
    /// 10 000.
    pub fn dead_letters(&self, topic: &str) -> Vec<Record> {
        let dead_letters = self.inner.dead_letters.lock().expect("not poisoned");
        dead_letters
            .get(topic)
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The next offset to handle per partition of `topic` for `group` (Kafka's committed
    /// offsets); partitions where nothing was handled are absent.
    pub fn committed(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        let committed = self.inner.committed.lock().expect("not poisoned");
        committed
            .get(&(group.to_owned(), topic.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

impl DeadLetterSink for InProcessBus {
    fn system(&self) -> &'static str {
        "erp_in_process"
    }

    fn publish<'a>(
        &'a self,
        record: &'a Record,
        group: &'a str,
        reason: &'a DeadLetterReason,
    ) -> DeadLetterFuture<'a> {
        let headers = dead_letter_headers(record.headers(), record, group, reason);
        let dead_letter = Record::new(
            (record.topic, record.partition, record.offset),
            record.key(),
            record.value(),
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_deref())),
            record.timestamp,
        );
        let mut dead_letters = self.inner.dead_letters.lock().expect("not poisoned");
        let kept = dead_letters.entry(record.topic.to_owned()).or_default();
        if kept.len() == DEAD_LETTERS_KEPT {
            kept.pop_front();
        }
        kept.push_back(dead_letter);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBus").finish_non_exhaustive()
    }
}

/// A group's progress on the bus, as Kafka's committed offsets would show it.
struct GroupOffsets {
    bus: InProcessBus,
    group: &'static str,
}

impl OffsetSink for GroupOffsets {
    fn store(&self, topic: &'static str, partition: i32, offset: i64) {
        let mut committed = self.bus.inner.committed.lock().expect("not poisoned");
        committed
            .entry((self.group.to_owned(), topic.to_owned()))
            .or_default()
            .insert(partition, offset + 1);
    }
}

/// Runs a partition's `worker`, reporting at error level if it dies (a bug: handler panics are
/// failed attempts): its queue is then closed, and publishing to it fails rather than losing
/// events.
async fn watched(
    group: &'static str,
    (topic, partition): (&'static str, i32),
    worker: impl std::future::Future<Output = ()>,
) {
    use futures_util::FutureExt;
    if std::panic::AssertUnwindSafe(worker)
        .catch_unwind()
        .await
        .is_err()
    {
        error!(
            group,
            topic, partition, "an in-process partition worker died; publishing to it now fails"
        );
    }
}

/// The partition of `key` among `count` (FNV-1a: stable across runs and platforms).
fn partition_for(key: &str, count: usize) -> usize {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash as usize % count.max(1)
}

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_lands_on_the_same_partition() {
        assert_eq!(partition_for("SKU-1", 6), partition_for("SKU-1", 6));
        let spread: std::collections::HashSet<usize> = (0..100)
            .map(|i| partition_for(&format!("SKU-{i}"), 6))
            .collect();
        assert_eq!(spread.len(), 6, "keys spread over every partition");
        assert_eq!(partition_for("anything", 1), 0);
    }
}
