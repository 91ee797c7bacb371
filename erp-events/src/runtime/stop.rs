//! A worker's stop signal (shutdown, or its partition revoked), and the waits that give way to
//! it.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::core::retry::Backoff;
use crate::runtime::stats::ListenerStats;

/// The worker was told to stop before finishing a record.
#[derive(Debug)]
pub(crate) struct Stopped;

/// Waiting on an unreachable store or dead-letter topic, or on another holder's claim.
pub(crate) const WAIT: Backoff = Backoff {
    initial: Duration::from_millis(50),
    multiplier: 2.0,
    max: Duration::from_secs(2),
};

/// `future`'s output, unless `stop` fires first.
pub(crate) async fn unless_stopped<T>(
    stop: &CancellationToken,
    future: impl Future<Output = T>,
) -> Result<T, Stopped> {
    tokio::select! {
        biased;
        _ = stop.cancelled() => Err(Stopped),
        value = future => Ok(value),
    }
}

/// Sleeps for `delay`, unless `stop` fires first.
pub(crate) async fn sleep_unless_stopped(
    stop: &CancellationToken,
    delay: Duration,
) -> Result<(), Stopped> {
    unless_stopped(stop, tokio::time::sleep(delay)).await
}

/// Failures in a row after which a wait is reported as a stall (about 10 s with [`WAIT`]).
pub(crate) const STALL_AFTER: u32 = 10;

/// How a partition waits on something failing: given up when it stops, and reported once
/// (logged at error level, and counted) if it lasts [`STALL_AFTER`] failures.
pub(crate) struct Waiting<'a> {
    /// The partition's stop signal.
    pub(crate) stop: &'a CancellationToken,
    /// Where: group, topic, partition and the offset it cannot get past.
    pub(crate) at: (&'static str, &'static str, i32, i64),
    /// The listener's counters.
    pub(crate) stats: &'a ListenerStats,
}

impl Waiting<'_> {
    fn stalled(&self, what: &str) {
        let (group, topic, partition, offset) = self.at;
        self.stats.stalled();
        error!(
            group,
            topic,
            partition,
            offset,
            "the partition cannot progress: {what} has been failing for about 10 s; still trying"
        );
    }
}

/// Calls `call` until it succeeds, backing off ([`WAIT`]) after each failure, which
/// `on_failure` reports with the count so far; the [`STALL_AFTER`]th failure in a row is also
/// reported as a stall on `what`. Returns the value and how many calls failed.
///
/// A stop is obeyed before a call and during the backoff, never during a call: a call once
/// made may have taken effect (claims taken, a dead letter sent), so its answer is awaited
/// (the store's and the producer's own timeouts bound it) for the caller to act on. A claim
/// abandoned in flight would stay taken until its lease ends, and stall whichever member
/// reads that record next.
pub(crate) async fn until_it_works<T, E: Display, F: Future<Output = Result<T, E>>>(
    waiting: &Waiting<'_>,
    what: &str,
    mut call: impl FnMut() -> F,
    mut on_failure: impl FnMut(&E, u32),
) -> Result<(T, u32), Stopped> {
    /// Counts the partition as stalled until the wait ends, however it ends.
    struct Stall<'a>(&'a ListenerStats);
    impl Drop for Stall<'_> {
        fn drop(&mut self) {
            self.0.unstalled();
        }
    }
    let mut failures = 0;
    let mut _stall = None;
    loop {
        if waiting.stop.is_cancelled() {
            return Err(Stopped);
        }
        match call().await {
            Ok(value) => return Ok((value, failures)),
            Err(error) => {
                failures += 1;
                on_failure(&error, failures);
                if failures == STALL_AFTER {
                    waiting.stalled(what);
                    _stall = Some(Stall(waiting.stats));
                }
                sleep_unless_stopped(waiting.stop, WAIT.delay(failures)).await?;
            }
        }
    }
}
