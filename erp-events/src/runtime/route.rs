//! A listener's runtime behind a trait object, for the transports, which route records by
//! topic without knowing the listener's types.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::core::event::Event;
use crate::core::listener::Listener;
use crate::runtime::queue::QueueReceiver;
use crate::runtime::stats::ListenerStats;
use crate::runtime::worker::{ListenerRuntime, Partition};

/// Type-erased access to a listener's runtime, for transports that route by topic.
pub(crate) trait Route: Send + Sync + 'static {
    /// The listener's topic.
    fn topic(&self) -> &'static str;
    /// The listener's consumer group.
    fn group(&self) -> &'static str;
    /// The handler's name.
    fn name(&self) -> &'static str;
    /// Its counters.
    fn stats(&self) -> Arc<ListenerStats>;
    /// Starts a worker for one partition fed through a queue.
    fn start_partition(
        self: Arc<Self>,
        partition: Partition,
        queue: QueueReceiver,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<L: Listener> Route for ListenerRuntime<L> {
    fn topic(&self) -> &'static str {
        <L::Event as Event>::TOPIC
    }

    fn group(&self) -> &'static str {
        L::GROUP
    }

    fn name(&self) -> &'static str {
        L::NAME
    }

    fn stats(&self) -> Arc<ListenerStats> {
        self.stats.clone()
    }

    fn start_partition(
        self: Arc<Self>,
        partition: Partition,
        queue: QueueReceiver,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_partition(partition, queue))
    }
}
