//! Counting handled events so a demo can wait until its listeners are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// A counter that can be awaited: listeners tick it, the demo waits for a target.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    count: AtomicUsize,
    changed: Notify,
}

impl Progress {
    /// Counts one more handled event.
    pub fn tick(&self) {
        self.inner.count.fetch_add(1, Ordering::AcqRel);
        self.inner.changed.notify_waiters();
    }

    /// How many events were handled.
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Waits until at least `target` events were handled.
    pub async fn wait_for(&self, target: usize) {
        loop {
            let changed = self.inner.changed.notified();
            if self.count() >= target {
                return;
            }
            changed.await;
        }
    }
}
