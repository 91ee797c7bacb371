//! A partition's queue of owned records (the in-process transport's): bounded for publishers
//! that can wait, and never a wait for a handler, so that a handler publishing to its own topic,
//! or two listeners publishing to each other, cannot wait on themselves.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use crate::runtime::record::Record;
use crate::runtime::worker::RecordSource;

/// A queue holding up to `capacity` records from publishers that wait for room (and any number
/// from those that may not wait).
pub(crate) fn queue(capacity: usize) -> (QueueSender, QueueReceiver) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(capacity));
    (
        QueueSender {
            sender,
            room: room.clone(),
        },
        QueueReceiver { receiver, room },
    )
}

/// A record in the queue, and whether it holds one unit of the queue's room.
type Queued = (Record, bool);

/// The publishing end of a [`queue`].
#[derive(Clone)]
pub(crate) struct QueueSender {
    sender: mpsc::UnboundedSender<Queued>,
    room: Arc<Semaphore>,
}

/// Room for one record, reserved by [`QueueSender::reserve`].
pub(crate) struct Slot {
    counted: bool,
}

/// The worker stopped reading (its group left, or it died).
#[derive(Debug)]
pub(crate) struct Closed;

impl QueueSender {
    /// Reserves room for one record: waits while the queue is full, unless `may_wait` is false
    /// (a handler publishing), when the record goes in over the bound.
    pub(crate) async fn reserve(&self, may_wait: bool) -> Slot {
        let permit = if may_wait {
            self.room.acquire().await.ok()
        } else {
            self.room.try_acquire().ok()
        };
        let counted = permit.is_some_and(|permit| {
            permit.forget();
            true
        });
        Slot { counted }
    }

    /// Puts `record` in the room `slot` reserved.
    pub(crate) fn send(&self, record: Record, slot: Slot) -> Result<(), Closed> {
        let counted = slot.counted;
        self.sender.send((record, counted)).map_err(|_| {
            if counted {
                self.room.add_permits(1);
            }
            Closed
        })
    }

    /// Whether the worker stopped reading.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// The worker's end of a [`queue`].
pub(crate) struct QueueReceiver {
    receiver: mpsc::UnboundedReceiver<Queued>,
    room: Arc<Semaphore>,
}

impl QueueReceiver {
    fn take(&self, (record, counted): Queued) -> Record {
        if counted {
            self.room.add_permits(1);
        }
        record
    }
}

impl RecordSource for QueueReceiver {
    async fn next_record(&mut self) -> Option<Record> {
        let queued = self.receiver.recv().await?;
        Some(self.take(queued))
    }

    fn ready_record(&mut self) -> Option<Record> {
        let queued = self.receiver.try_recv().ok()?;
        Some(self.take(queued))
    }
}
