//! A partition's records between its consumer's poll and its worker, within one memory budget
//! for the whole consumer.
//!
//! The consumer polls one queue for all its partitions (librdkafka bounds that queue's
//! prefetch as a whole, `queued.max.messages.kbytes`) and hands each record to its partition's
//! inbox. The inboxes of one consumer share a [`Budget`] of the same size. While they hold
//! more than the budget, the consumer polls nothing and waits for a worker to take records
//! ([`Budget::wait_for_room`]): backpressure that keeps what librdkafka prefetched. Only when
//! the budget stays spent (a worker stuck or far slower than the others) does the consumer poll
//! anyway, and then a partition holding more than its share (the budget split evenly between
//! the partitions) is paused in librdkafka until its worker has taken half of it. Pausing
//! drops what librdkafka prefetched for the partition, so it is kept for that case. A paused
//! partition's records no longer count against the budget, so one stuck partition takes
//! nothing from the others, and what a consumer holds stays within about twice the budget
//! however many partitions it owns.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;

use crate::runtime::record::{RUN_RECORDS, Record};
use crate::runtime::worker::{MAX_BATCH, RecordSource};

/// The bytes one consumer's partitions may hold between its poll and their workers.
pub(crate) struct Budget {
    limit: usize,
    /// Each partition's share of `limit`.
    share: AtomicUsize,
    /// The bytes held by paused partitions (not counted against `limit`).
    parked: AtomicI64,
    /// Set while the budget stayed spent past a wait: partitions past their share are paused.
    stalled: AtomicBool,
    /// The polling thread (known from the first time it waits for room), and whether it
    /// waits now.
    waiter: OnceLock<Thread>,
    waiting: AtomicBool,
    /// The bytes held now, for the metrics.
    held: Gauge,
    /// The partitions paused now, for the metrics.
    paused: Gauge,
}

impl Budget {
    /// A budget of `limit` bytes, reporting what is held and paused to the two gauges.
    pub(crate) fn new(limit: usize, (held, paused): (Gauge, Gauge)) -> Self {
        Budget {
            limit,
            share: AtomicUsize::new(limit),
            parked: AtomicI64::new(0),
            stalled: AtomicBool::new(false),
            waiter: OnceLock::new(),
            waiting: AtomicBool::new(false),
            held,
            paused,
        }
    }

    /// Splits the budget between `partitions` partitions.
    pub(crate) fn share_between(&self, partitions: usize) {
        let share = self.limit / partitions.max(1);
        self.share.store(share, Ordering::Relaxed);
    }

    fn share(&self) -> usize {
        self.share.load(Ordering::Relaxed)
    }

    /// Whether the partitions that are not paused hold more than the budget.
    pub(crate) fn spent(&self) -> bool {
        self.held.get() - self.parked.load(Ordering::Relaxed) > self.limit as i64
    }

    fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// Called by the polling thread before it polls: while the budget is spent, waits (up to
    /// `patience`) for a worker to take records. Returns whether there is room; if not, the
    /// budget counts as stalled until there is, and partitions past their share are paused as
    /// records come for them.
    pub(crate) fn wait_for_room(&self, patience: Duration) -> bool {
        if self.spent() && !self.stalled() {
            let _ = self.waiter.set(std::thread::current());
            self.waiting.store(true, Ordering::SeqCst);
            if self.spent() {
                std::thread::park_timeout(patience);
            }
            self.waiting.store(false, Ordering::SeqCst);
        }
        let room = !self.spent();
        self.stalled.store(!room, Ordering::Relaxed);
        room
    }

    /// Wakes the polling thread if it waits and there is room now.
    fn made_room(&self) {
        if self.waiting.load(Ordering::SeqCst)
            && !self.spent()
            && let Some(waiter) = self.waiter.get()
        {
            waiter.unpark();
        }
    }

    fn park(&self, bytes: usize) {
        self.parked.fetch_add(bytes as i64, Ordering::Relaxed);
    }

    fn unpark(&self, bytes: usize) {
        self.parked.fetch_sub(bytes as i64, Ordering::Relaxed);
    }
}

/// Pauses and resumes fetching one partition.
pub(crate) trait Valve: Send + Sync + 'static {
    /// Stops fetching the partition; what librdkafka prefetched for it is dropped and fetched
    /// again after [`Valve::resume`], from the record after the last one polled.
    fn pause(&self);
    /// Fetches the partition again.
    fn resume(&self);
}

/// What one inbox holds, and whether its partition is paused for it.
#[derive(Default)]
struct Held {
    bytes: usize,
    paused: bool,
    /// Its partition was given up: what comes for it is dropped.
    closed: bool,
}

struct Shared {
    budget: Arc<Budget>,
    valve: Box<dyn Valve>,
    held: Mutex<Held>,
}

/// An inbox for one partition of a consumer with `budget`; `valve` pauses and resumes it.
pub(crate) fn inbox(budget: Arc<Budget>, valve: impl Valve) -> (InboxSender, Inbox) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        budget,
        valve: Box::new(valve),
        held: Mutex::new(Held::default()),
    });
    (
        InboxSender {
            sender,
            shared: shared.clone(),
        },
        Inbox {
            receiver,
            taken: Vec::new().into_iter(),
            taken_held: 0,
            shared,
        },
    )
}

/// The consumer's end of an [`inbox`].
#[derive(Clone)]
pub(crate) struct InboxSender {
    sender: mpsc::UnboundedSender<Vec<Record>>,
    shared: Arc<Shared>,
}

impl InboxSender {
    /// Closes the inbox for a partition given up: what is pushed from now on is dropped, and
    /// its worker, finishing, no longer resumes the partition (which may be paused for a
    /// newer inbox by then).
    pub(crate) fn close(&self) {
        let mut held = self.shared.held.lock().expect("not poisoned");
        held.closed = true;
        if std::mem::take(&mut held.paused) {
            self.shared.budget.paused.dec();
            self.shared.budget.unpark(held.bytes);
        }
    }

    /// Hands `records` (consecutive records of the partition, in order) to the worker in one
    /// go, pausing the partition once it holds more than its share while the budget is
    /// stalled. Records for a partition given up are dropped (its next owner reads them again).
    pub(crate) fn push(&self, records: Vec<Record>) {
        let bytes: usize = records.iter().map(Record::size).sum();
        let shared = &*self.shared;
        let budget = &shared.budget;
        let mut held = shared.held.lock().expect("not poisoned");
        if held.closed || self.sender.send(records).is_err() {
            return;
        }
        held.bytes += bytes;
        budget.held.inc_by(bytes as i64);
        if held.paused {
            budget.park(bytes);
        } else if held.bytes > budget.share() && budget.stalled() {
            held.paused = true;
            budget.paused.inc();
            budget.park(held.bytes);
            shared.valve.pause();
        }
    }
}

// A worker's batch takes a whole run: a run's records after the first leave the budget when
// the batch takes them, and a longer run would leave its rest outside the budget while its
// worker waits for its next turn.
const _: () = assert!(RUN_RECORDS <= MAX_BATCH);

/// The worker's end of an [`inbox`]: its partition's records, in order. A run of records
/// handed over together leaves the budget in two steps: its first record when the worker takes
/// it (to wait for a concurrency permit with), the rest when the worker takes them into its
/// batch. Its buffer is freed once the worker has handled its last.
pub(crate) struct Inbox {
    receiver: mpsc::UnboundedReceiver<Vec<Record>>,
    /// The rest of the run taken last.
    taken: std::vec::IntoIter<Record>,
    /// The bytes of `taken` still counted against the budget.
    taken_held: usize,
    shared: Arc<Shared>,
}

impl Inbox {
    /// Takes the run `records` from the inbox, its first record out of the budget, and
    /// returns that record.
    fn take(&mut self, records: Vec<Record>) -> Option<Record> {
        let first = records.first().map_or(0, Record::size);
        let bytes: usize = records.iter().map(Record::size).sum();
        self.release(first);
        self.taken_held = bytes - first;
        self.taken = records.into_iter();
        self.taken.next()
    }

    /// The next record of the run taken last; the run's rest leaves the budget with it.
    fn next_taken(&mut self) -> Option<Record> {
        let record = self.taken.next()?;
        let rest = std::mem::take(&mut self.taken_held);
        if rest > 0 {
            self.release(rest);
        }
        Some(record)
    }

    /// Takes `bytes` out of the budget, resuming the partition at half its share.
    fn release(&self, bytes: usize) {
        let shared = &*self.shared;
        let budget = &shared.budget;
        let mut held = shared.held.lock().expect("not poisoned");
        held.bytes -= bytes;
        budget.held.dec_by(bytes as i64);
        if held.paused {
            budget.unpark(bytes);
            if held.bytes <= budget.share() / 2 {
                held.paused = false;
                budget.paused.dec();
                budget.unpark(held.bytes);
                shared.valve.resume();
            }
        }
        drop(held);
        budget.made_room();
    }
}

impl Drop for Inbox {
    /// Records left unread are no longer held (their partition was given up).
    fn drop(&mut self) {
        self.receiver.close();
        let mut held = self.shared.held.lock().expect("not poisoned");
        let budget = &self.shared.budget;
        let bytes = std::mem::take(&mut held.bytes);
        budget.held.dec_by(bytes as i64);
        if std::mem::take(&mut held.paused) {
            budget.paused.dec();
            budget.unpark(bytes);
        }
        drop(held);
        budget.made_room();
    }
}

impl RecordSource for Inbox {
    async fn next_record(&mut self) -> Option<Record> {
        if let Some(record) = self.next_taken() {
            return Some(record);
        }
        let records = self.receiver.recv().await?;
        self.take(records)
    }

    /// The next record of the run being read. A batch ends where a run does, even if another
    /// run is ready: the runs' records share a buffer, so a worker then keeps at most one run
    /// alive beyond the budget.
    fn ready_record(&mut self) -> Option<Record> {
        self.next_taken()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use futures_util::FutureExt;

    use super::*;
    use crate::runtime::record::Timestamp;

    #[derive(Clone, Default)]
    struct Switch(Arc<AtomicBool>);

    impl Valve for Switch {
        fn pause(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
        fn resume(&self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }

    fn record(offset: i64, size: usize) -> Record {
        let value = vec![b'x'; size];
        let headers: [(&str, Option<&[u8]>); 0] = [];
        Record::new(
            ("t", 0, offset),
            None,
            Some(&value),
            headers.into_iter(),
            Timestamp::NotAvailable,
        )
    }

    /// The inbox's next record, if one is there now.
    fn next_now(inbox: &mut Inbox) -> Option<Record> {
        inbox.next_record().now_or_never().flatten()
    }

    fn paused(switch: &Switch) -> bool {
        switch.0.load(Ordering::SeqCst)
    }

    #[test]
    fn a_spent_budget_holds_polling_back_and_only_a_stall_pauses_a_partition_past_its_share() {
        let budget = Arc::new(Budget::new(1000, (Gauge::default(), Gauge::default())));
        budget.share_between(4);
        let (ahead, other) = (Switch::default(), Switch::default());
        let (sender, mut ahead_inbox) = inbox(budget.clone(), ahead.clone());
        let (other_sender, _other_inbox) = inbox(budget.clone(), other.clone());
        for offset in 0..4 {
            sender.push(vec![record(offset, 250)]);
        }
        other_sender.push(vec![record(0, 250)]);
        assert!(budget.spent(), "1250 held against 1000");
        assert!(
            !paused(&ahead),
            "spent, not stalled: the poll waits, nothing is dropped"
        );
        assert!(
            !budget.wait_for_room(Duration::ZERO),
            "no worker took anything"
        );
        sender.push(vec![record(4, 250)]);
        assert!(paused(&ahead), "past its share while stalled");
        assert!(!paused(&other), "within its share");
        assert_eq!((budget.held.get(), budget.paused.get()), (1500, 1));
        assert!(
            budget.wait_for_room(Duration::ZERO),
            "a paused partition's 1250 do not count against the budget"
        );
        let taken: Vec<i64> = (0..4)
            .map(|_| next_now(&mut ahead_inbox).unwrap().offset)
            .collect();
        assert_eq!(taken, [0, 1, 2, 3]);
        assert!(paused(&ahead), "250 of its 250 held");
        assert_eq!(next_now(&mut ahead_inbox).unwrap().offset, 4);
        assert!(!paused(&ahead), "resumed at half its share");
        assert_eq!((budget.held.get(), budget.paused.get()), (250, 0));
        assert_eq!(budget.parked.load(Ordering::Relaxed), 0);
        sender.push(vec![record(5, 250)]);
        drop(ahead_inbox);
        assert_eq!(budget.held.get(), 250, "the unread are no longer held");
        sender.push(vec![record(6, 250)]);
        assert_eq!(budget.held.get(), 250, "dropped, not held");
    }

    #[test]
    fn the_polling_thread_waiting_for_room_wakes_when_a_worker_takes_records() {
        let budget = Arc::new(Budget::new(100, (Gauge::default(), Gauge::default())));
        let (sender, mut inbox) = inbox(budget.clone(), Switch::default());
        sender.push(vec![record(0, 200)]);
        let (done, waited) = std::sync::mpsc::channel();
        let polling = budget.clone();
        std::thread::spawn(move || {
            let _ = done.send(polling.wait_for_room(Duration::from_secs(600)));
        });
        // The waiting thread registers itself before it parks; a take before that finds the
        // budget unspent when it checks again.
        next_now(&mut inbox).unwrap();
        let room = waited
            .recv_timeout(Duration::from_secs(60))
            .expect("woken by the take, not by the 600 s patience");
        assert!(room);
    }

    #[test]
    fn an_inbox_closed_while_paused_no_longer_resumes_its_partition() {
        let budget = Arc::new(Budget::new(100, (Gauge::default(), Gauge::default())));
        let paused_switch = Switch::default();
        let (sender, mut inbox) = inbox(budget.clone(), paused_switch.clone());
        sender.push(vec![record(0, 200)]);
        assert!(!budget.wait_for_room(Duration::ZERO));
        sender.push(vec![record(1, 10)]);
        assert!(paused(&paused_switch));
        sender.close();
        assert_eq!(budget.paused.get(), 0);
        assert_eq!(budget.parked.load(Ordering::Relaxed), 0);
        next_now(&mut inbox).unwrap();
        assert!(
            paused(&paused_switch),
            "left to the partition's next assignment"
        );
    }

    #[test]
    fn a_run_leaves_the_budget_as_the_worker_takes_it_into_its_batch() {
        let budget = Arc::new(Budget::new(1000, (Gauge::default(), Gauge::default())));
        let (sender, mut inbox) = inbox(budget.clone(), Switch::default());
        sender.push(vec![record(0, 100), record(1, 100), record(2, 100)]);
        assert_eq!(budget.held.get(), 300);
        next_now(&mut inbox).unwrap();
        assert_eq!(
            budget.held.get(),
            200,
            "a worker waiting for its permit holds one record outside the budget"
        );
        inbox.ready_record().unwrap();
        assert_eq!(budget.held.get(), 0, "its batch takes the rest of the run");
        inbox.ready_record().unwrap();
        assert!(inbox.ready_record().is_none());
        sender.push(vec![record(3, 100), record(4, 100)]);
        next_now(&mut inbox).unwrap();
        drop(inbox);
        assert_eq!(budget.held.get(), 0, "the untaken rest of a run is let go");
    }

    #[test]
    fn a_batch_ends_where_a_run_does() {
        let budget = Arc::new(Budget::new(1000, (Gauge::default(), Gauge::default())));
        let (sender, mut inbox) = inbox(budget, Switch::default());
        sender.push(vec![record(0, 10), record(1, 10)]);
        sender.push(vec![record(2, 10)]);
        assert_eq!(next_now(&mut inbox).unwrap().offset, 0);
        assert_eq!(inbox.ready_record().unwrap().offset, 1);
        assert!(
            inbox.ready_record().is_none(),
            "the next run waits for the next batch"
        );
        assert_eq!(next_now(&mut inbox).unwrap().offset, 2);
    }
}
