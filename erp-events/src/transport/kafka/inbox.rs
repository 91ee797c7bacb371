//! A partition's records between its consumer's poll and its worker, within one memory budget
//! for the whole consumer.
//!
//! The consumer polls one queue for all its partitions (librdkafka bounds that queue's
//! prefetch as a whole, `queued.max.messages.kbytes`) and hands each record to its partition's
//! inbox. The inboxes of one consumer share a [`Budget`] of the same size, split evenly between
//! the partitions it owns. Once the inboxes hold more than the budget, a partition holding more
//! than its share (its worker is slower than its fetches, or stuck) is paused in librdkafka
//! until its worker has taken half of it, so that what a consumer holds stays within about the
//! budget however many partitions it owns, and one slow partition takes nothing from the
//! others. A partition is not paused merely for being ahead of its share while the budget has
//! room: pausing drops what librdkafka prefetched for it, and one fetch from a real broker
//! (up to `max.partition.fetch.bytes`) may be more than a share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;

use crate::runtime::record::Record;
use crate::runtime::worker::RecordSource;

/// The bytes one consumer's partitions may hold between its poll and their workers.
pub(crate) struct Budget {
    limit: usize,
    /// Each partition's share of `limit`.
    share: AtomicUsize,
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

    /// Whether the inboxes hold more than the whole budget.
    fn spent(&self) -> bool {
        self.held.get() as usize > self.limit
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
        }
    }

    /// Hands `records` (consecutive records of the partition, in order) to the worker in one
    /// go, pausing the partition once it holds more than its share and the budget is spent.
    /// Records for a partition given up are dropped (its next owner reads them again).
    pub(crate) fn push(&self, records: Vec<Record>) {
        let bytes: usize = records.iter().map(Record::size).sum();
        let shared = &*self.shared;
        let mut held = shared.held.lock().expect("not poisoned");
        if held.closed || self.sender.send(records).is_err() {
            return;
        }
        held.bytes += bytes;
        shared.budget.held.inc_by(bytes as i64);
        if !held.paused && held.bytes > shared.budget.share() && shared.budget.spent() {
            held.paused = true;
            shared.budget.paused.inc();
            shared.valve.pause();
        }
    }
}

/// The worker's end of an [`inbox`]: its partition's records, in order. A run of records
/// handed over together leaves the budget when the worker takes its first.
pub(crate) struct Inbox {
    receiver: mpsc::UnboundedReceiver<Vec<Record>>,
    /// The rest of the run taken last.
    taken: std::vec::IntoIter<Record>,
    shared: Arc<Shared>,
}

impl Inbox {
    /// Takes `records` out of the budget, resuming the partition at half its share, and
    /// returns the first.
    fn take(&mut self, records: Vec<Record>) -> Option<Record> {
        let bytes: usize = records.iter().map(Record::size).sum();
        let shared = &*self.shared;
        let mut held = shared.held.lock().expect("not poisoned");
        held.bytes -= bytes;
        shared.budget.held.dec_by(bytes as i64);
        if held.paused && held.bytes <= shared.budget.share() / 2 {
            held.paused = false;
            shared.budget.paused.dec();
            shared.valve.resume();
        }
        self.taken = records.into_iter();
        self.taken.next()
    }
}

impl Drop for Inbox {
    /// Records left unread are no longer held (their partition was given up).
    fn drop(&mut self) {
        self.receiver.close();
        let mut held = self.shared.held.lock().expect("not poisoned");
        let budget = &self.shared.budget;
        budget.held.dec_by(std::mem::take(&mut held.bytes) as i64);
        if std::mem::take(&mut held.paused) {
            budget.paused.dec();
        }
    }
}

impl RecordSource for Inbox {
    async fn next_record(&mut self) -> Option<Record> {
        if let Some(record) = self.taken.next() {
            return Some(record);
        }
        let records = self.receiver.recv().await?;
        self.take(records)
    }

    fn ready_record(&mut self) -> Option<Record> {
        if let Some(record) = self.taken.next() {
            return Some(record);
        }
        let records = self.receiver.try_recv().ok()?;
        self.take(records)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

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

    #[test]
    fn a_partition_over_its_share_is_paused_once_the_budget_is_spent_until_half_of_it_is_taken() {
        let budget = Arc::new(Budget::new(1000, (Gauge::default(), Gauge::default())));
        budget.share_between(4);
        let (ahead, other) = (Switch::default(), Switch::default());
        let (sender, mut ahead_inbox) = inbox(budget.clone(), ahead.clone());
        let (other_sender, _other_inbox) = inbox(budget.clone(), other.clone());
        for offset in 0..3 {
            sender.push(vec![record(offset, 250)]);
        }
        assert!(
            !ahead.0.load(Ordering::SeqCst),
            "ahead of its share, but the budget has room"
        );
        other_sender.push(vec![record(0, 250)]);
        sender.push(vec![record(3, 250)]);
        assert!(ahead.0.load(Ordering::SeqCst), "paused past its share");
        assert!(!other.0.load(Ordering::SeqCst), "within its share");
        assert_eq!((budget.held.get(), budget.paused.get()), (1250, 1));
        let taken: Vec<i64> = (0..3)
            .map(|_| ahead_inbox.ready_record().unwrap().offset)
            .collect();
        assert_eq!(taken, [0, 1, 2]);
        assert!(ahead.0.load(Ordering::SeqCst), "250 of its 250 held");
        assert_eq!(ahead_inbox.ready_record().unwrap().offset, 3);
        assert!(!ahead.0.load(Ordering::SeqCst), "resumed at half its share");
        assert_eq!((budget.held.get(), budget.paused.get()), (250, 0));
        sender.push(vec![record(4, 250)]);
        drop(ahead_inbox);
        assert_eq!(budget.held.get(), 250, "the unread are no longer held");
        sender.push(vec![record(5, 250)]);
        assert_eq!(budget.held.get(), 250, "dropped, not held");
    }

    #[test]
    fn an_inbox_closed_while_paused_no_longer_resumes_its_partition() {
        let budget = Arc::new(Budget::new(100, (Gauge::default(), Gauge::default())));
        let paused = Switch::default();
        let (sender, mut inbox) = inbox(budget.clone(), paused.clone());
        sender.push(vec![record(0, 200)]);
        assert!(paused.0.load(Ordering::SeqCst));
        sender.close();
        assert_eq!(budget.paused.get(), 0);
        inbox.ready_record().unwrap();
        assert!(
            paused.0.load(Ordering::SeqCst),
            "left to the partition's next assignment"
        );
    }
}
