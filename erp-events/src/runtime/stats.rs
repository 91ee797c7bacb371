//! Counters of what each listener did, for reports, examples and tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

use tokio::sync::Notify;

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

/// The live counters behind [`ListenerCounts`]; every change wakes the application's waiters.
#[derive(Debug)]
pub(crate) struct ListenerStats {
    handled: AtomicU64,
    retries: AtomicU64,
    dead_lettered: AtomicU64,
    duplicates: AtomicU64,
    stalls: AtomicU64,
    changed: Arc<CountsChanged>,
}

impl ListenerStats {
    /// Counters that notify `changed` on every change.
    pub(crate) fn new(changed: Arc<CountsChanged>) -> Self {
        ListenerStats {
            handled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            changed,
        }
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.changed.notify();
    }

    pub(crate) fn handled(&self) {
        self.count(&self.handled);
    }

    pub(crate) fn retried(&self) {
        self.count(&self.retries);
    }

    pub(crate) fn dead_lettered(&self) {
        self.count(&self.dead_lettered);
    }

    pub(crate) fn duplicate(&self) {
        self.count(&self.duplicates);
    }

    pub(crate) fn stalled(&self) {
        self.count(&self.stalls);
    }

    pub(crate) fn snapshot(&self) -> ListenerCounts {
        ListenerCounts {
            handled: self.handled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
        }
    }
}
