//! Counters of what each listener did, for reports, examples, tests and metrics; and which of
//! its handler attempts are running, for the health probes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use crate::runtime::metrics::ListenerMetrics;

/// What one listener did since it started. Snapshots come from [`crate::Running::reports`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounts {
    /// Records whose handler succeeded.
    pub handled: u64,
    /// Handler attempts that failed and were retried.
    pub retries: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Records skipped because their event was already handled by this group.
    pub duplicates: u64,
    /// Times a partition could not progress for about 10 s, because the idempotency store or
    /// the dead-letter topic kept failing (each also logged at error level).
    pub stalls: u64,
}

impl ListenerCounts {
    /// Records finished one way or another: handled, dead-lettered or skipped as duplicates.
    pub fn finished(&self) -> u64 {
        self.handled + self.dead_lettered + self.duplicates
    }
}

/// Wakes those waiting for the counts to change; costs a fence, not a lock, when nobody waits.
#[derive(Debug, Default)]
pub(crate) struct CountsChanged {
    notify: Notify,
    waiters: AtomicUsize,
}

impl CountsChanged {
    fn notify(&self) {
        // Pairs with the waiter's registration: either it sees the new count, or we see it.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Waits until `condition` holds, checking it after every change.
    pub(crate) async fn wait_until(&self, condition: impl Fn() -> bool) {
        struct Registered<'a>(&'a AtomicUsize);
        impl Drop for Registered<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let _registered = Registered(&self.waiters);
        loop {
            let changed = self.notify.notified();
            fence(Ordering::SeqCst);
            if condition() {
                return;
            }
            changed.await;
        }
    }
}

/// The live counters behind [`ListenerCounts`], which are also the listener's Prometheus
/// series; every change wakes the application's waiters.
pub(crate) struct ListenerStats {
    metrics: ListenerMetrics,
    changed: Arc<CountsChanged>,
    busy: Mutex<Vec<Weak<Busy>>>,
}

impl std::fmt::Debug for ListenerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ListenerStats")
            .field(&self.snapshot())
            .finish()
    }
}

/// When a partition worker's handler attempt started, if one runs: set and read on every
/// attempt, so an atomic rather than a lock.
#[derive(Debug)]
pub(crate) struct Busy {
    partition: i32,
    /// When this clock was made; `since` counts from it.
    epoch: Instant,
    /// Nanoseconds from `epoch` to the running attempt's start, plus one; 0 between attempts.
    since: AtomicU64,
}

impl Busy {
    /// An attempt starts.
    pub(crate) fn start(&self) {
        let since = self.epoch.elapsed().as_nanos() as u64 + 1;
        self.since.store(since, Ordering::Relaxed);
    }

    /// The attempt ended; returns how long it ran.
    pub(crate) fn end(&self) -> Duration {
        let since = self.since.swap(0, Ordering::Relaxed);
        self.running(since).unwrap_or_default()
    }

    /// How long the attempt that started `since` has run (`None` for 0: no attempt).
    fn running(&self, since: u64) -> Option<Duration> {
        let started = Duration::from_nanos(since.checked_sub(1)?);
        Some(self.epoch.elapsed().saturating_sub(started))
    }
}

impl ListenerStats {
    /// Counters that report into `metrics` and notify `changed` on every change.
    pub(crate) fn new(changed: Arc<CountsChanged>, metrics: ListenerMetrics) -> Self {
        ListenerStats {
            metrics,
            changed,
            busy: Mutex::default(),
        }
    }

    fn count(&self, counter: &Counter) {
        counter.inc();
        self.changed.notify();
    }

    /// `count` records were handed to the listener's workers.
    pub(crate) fn received(&self, count: usize) {
        self.metrics.consumed.inc_by(count as u64);
    }

    pub(crate) fn handled(&self) {
        self.count(&self.metrics.handled);
    }

    pub(crate) fn retried(&self) {
        self.count(&self.metrics.retries);
    }

    pub(crate) fn dead_lettered(&self) {
        self.count(&self.metrics.dead_lettered);
    }

    pub(crate) fn duplicate(&self) {
        self.count(&self.metrics.duplicates);
    }

    /// A partition could not progress for a while (it is stalled until [`Self::unstalled`]).
    pub(crate) fn stalled(&self) {
        self.metrics.stalled.inc();
        self.count(&self.metrics.stalls);
    }

    /// A stalled partition progresses again, or stopped.
    pub(crate) fn unstalled(&self) {
        self.metrics.stalled.dec();
    }

    /// A call to the idempotency store failed.
    pub(crate) fn store_error(&self) {
        self.metrics.store_errors.inc();
    }

    /// A handler attempt on `partition` ended after `took`, failed with `error_type` if it did.
    pub(crate) fn attempted(
        &self,
        partition: i32,
        took: Duration,
        error_type: Option<&'static str>,
    ) {
        self.metrics.attempt(partition, took, error_type);
    }

    /// A partition worker's attempt clock, watched by [`Self::longest_attempt`].
    pub(crate) fn busy(&self, partition: i32) -> Arc<Busy> {
        let busy = Arc::new(Busy {
            partition,
            epoch: Instant::now(),
            since: AtomicU64::new(0),
        });
        let mut watched = self.busy.lock().expect("not poisoned");
        watched.retain(|slot| slot.strong_count() > 0);
        watched.push(Arc::downgrade(&busy));
        busy
    }

    /// The partition whose handler attempt has been running longest, and for how long.
    pub(crate) fn longest_attempt(&self) -> Option<(i32, Duration)> {
        let watched = self.busy.lock().expect("not poisoned");
        watched
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|busy| {
                let running = busy.running(busy.since.load(Ordering::Relaxed))?;
                Some((busy.partition, running))
            })
            .max_by_key(|(_, running)| *running)
    }

    /// Partitions that cannot progress now.
    pub(crate) fn stalled_now(&self) -> i64 {
        self.metrics.stalled.get()
    }

    pub(crate) fn snapshot(&self) -> ListenerCounts {
        let metrics = &self.metrics;
        ListenerCounts {
            handled: metrics.handled.get(),
            retries: metrics.retries.get(),
            dead_lettered: metrics.dead_lettered.get(),
            duplicates: metrics.duplicates.get(),
            stalls: metrics.stalls.get(),
        }
    }
}
