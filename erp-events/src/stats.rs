//! Counters of what each listener did, for reports, examples and tests.

use std::sync::atomic::{AtomicU64, Ordering};

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
}

/// The live counters behind [`ListenerCounts`].
#[derive(Debug, Default)]
pub(crate) struct ListenerStats {
    handled: AtomicU64,
    retries: AtomicU64,
    dead_lettered: AtomicU64,
    duplicates: AtomicU64,
}

impl ListenerStats {
    pub(crate) fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ListenerCounts {
        ListenerCounts {
            handled: self.handled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
        }
    }
}
