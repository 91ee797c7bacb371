//! What the modules' demos share: waiting until listeners are done, and printing their reports.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use erp_events::{App, Config, Kafka, ListenerReport, Publisher, Running};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

/// State a listener shares with whoever reads it (a stand-in for a database or a search
/// index): a value behind a lock, cheap to clone. A handler that panicked while holding it
/// leaves it usable.
#[derive(Debug, Default)]
pub struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Shared<T> {
    /// The value, locked.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Clone> Shared<T> {
    /// A copy of the value.
    pub fn get(&self) -> T {
        self.lock().clone()
    }
}

/// Any error a demo can meet (starting the app, publishing).
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// Waits until every listener has finished (handled, dead-lettered or skipped) as many records
/// as `published` says were published to its topic.
pub async fn until_finished(running: &Running, published: &[(&str, u64)]) {
    running
        .wait_until(|reports| {
            reports.iter().all(|report| {
                let expected = published
                    .iter()
                    .filter(|(topic, _)| *topic == report.topic)
                    .map(|(_, count)| count)
                    .sum();
                report.counts.finished() >= expected
            })
        })
        .await;
}

/// The listeners' reports as an aligned table.
pub struct ReportTable<'a>(pub &'a [ListenerReport]);

impl fmt::Display for ReportTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for report in self.0 {
            let counts = &report.counts;
            writeln!(
                f,
                "  {:<24} {:<12} {:<26} handled {:>3}  retries {}  dead-lettered {}  duplicates {}",
                report.topic,
                report.group,
                report.name,
                counts.handled,
                counts.retries,
                counts.dead_lettered,
                counts.duplicates
            )?;
        }
        Ok(())
    }
}

/// A module of the demo ERP: its listeners, the events it publishes, and what they did.
pub trait Module: Default {
    /// The topic the module publishes.
    const TOPIC: &'static str;
    /// The service that publishes it (the envelopes' `source`).
    const PRODUCER: &'static str;
    /// What the module's listeners did, for the example to print and the tests to check.
    type Summary: fmt::Display;

    /// Adds the module's listeners, sharing this module's state, to `app`.
    fn listen(&self, app: App) -> App;

    /// Publishes the module's scripted events; returns how many.
    fn publish(&self, publisher: &Publisher)
    -> impl Future<Output = Result<u64, DemoError>> + Send;

    /// What the listeners did, given the reports of (at least) the module's listeners.
    fn summary(&self, reports: &[ListenerReport]) -> Self::Summary;
}

/// Runs one module on `app`: its listeners start, it publishes its events, and once every
/// listener has finished them, the application shuts down and the summary is returned.
pub async fn run<M: Module>(app: App) -> Result<M::Summary, DemoError> {
    let module = M::default();
    let app = module.listen(app);
    let publisher = app.publisher(M::PRODUCER)?;
    let running = app.start()?;
    let published = module.publish(&publisher).await?;
    until_finished(&running, &[(M::TOPIC, published)]).await;
    let reports = running.shutdown().await;
    Ok(module.summary(&reports))
}

/// The reports of `topic`'s listeners.
pub fn reports_of(topic: &str, reports: &[ListenerReport]) -> Vec<ListenerReport> {
    reports
        .iter()
        .filter(|report| report.topic == topic)
        .cloned()
        .collect()
}

/// The `main` of a module's example: runs the module on the configured transports (with no
/// configuration, the embedded broker and the in-memory store), logging warnings (retries,
/// dead letters), and prints its summary.
pub fn main<M: Module>() -> Result<(), DemoError> {
    log_warnings();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
        println!("{}", run::<M>(app).await?);
        Ok(())
    })
}

/// Logs warnings (each retry, each dead letter) to stderr, as an example's reader wants them.
pub fn log_warnings() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Reads `topic` from the beginning of every partition, without joining a consumer group (and
/// so without committing), until `count` records for which `keep` holds have arrived or
/// `patience` has passed; returns those that arrived. Blocks: call it off the async threads.
pub fn read_from_start(
    kafka: &Kafka,
    topic: &str,
    count: usize,
    patience: Duration,
    keep: impl Fn(&OwnedMessage) -> bool,
) -> Result<Vec<OwnedMessage>, DemoError> {
    read_from_start_with(kafka, topic, count, patience, |message| {
        Some(message.detach()).filter(&keep)
    })
}

/// [`read_from_start`], keeping what `read` makes of each record while it is borrowed from the
/// consumer (`None`: not one of those wanted).
pub fn read_from_start_with<T>(
    kafka: &Kafka,
    topic: &str,
    count: usize,
    patience: Duration,
    read: impl Fn(&BorrowedMessage<'_>) -> Option<T>,
) -> Result<Vec<T>, DemoError> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "erp-demo-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "16777216")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), patience)?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + patience;
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            records.extend(read(&message?));
        }
    }
    Ok(records)
}
