//! Prometheus metrics of one application: what its listeners, publishers and consumers report,
//! rendered on a scrape. Named after OpenTelemetry's messaging conventions where they name the
//! quantity (`messaging_*`, with their attribute names as labels, dots as underscores), and
//! `erp_events_*` for what is the framework's own.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::runtime::durations::{BUCKETS, Durations};

/// A series' labels, e.g. `[("messaging_destination_name", "erp.inventory.movements")]`.
pub(crate) type Labels = Vec<(&'static str, String)>;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The metric families of one application.
pub(crate) struct Metrics {
    registry: Registry,
    consumed: Family<Labels, Counter>,
    handled: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    stalls: Family<Labels, Counter>,
    store_errors: Family<Labels, Counter>,
    stalled: Family<Labels, Gauge>,
    process: Family<Labels, Durations>,
    send: Histograms,
    sent: Family<Labels, Counter>,
    lag: Family<Labels, Gauge>,
    buffered: Family<Labels, Gauge>,
    paused: Family<Labels, Gauge>,
    /// The lag series set per group, so that given-up partitions are removed.
    lag_series: Mutex<HashMap<String, Vec<Labels>>>,
    /// The publish series by system, topic and error type: a publish looks them up by pointer.
    sends: RwLock<HashMap<SendKey, (Histogram, Counter)>>,
}

type SendKey = (&'static str, &'static str, Option<&'static str>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            consumed: Family::default(),
            handled: Family::default(),
            retries: Family::default(),
            dead_lettered: Family::default(),
            duplicates: Family::default(),
            stalls: Family::default(),
            store_errors: Family::default(),
            stalled: Family::default(),
            process: Family::default(),
            send: Histograms::new_with_constructor(histogram as fn() -> Histogram),
            sent: Family::default(),
            lag: Family::default(),
            buffered: Family::default(),
            paused: Family::default(),
            lag_series: Mutex::default(),
            sends: RwLock::default(),
        };
        let registry = &mut metrics.registry;
        let counters = [
            (
                "messaging_client_consumed_messages",
                "Records delivered to a listener",
                &metrics.consumed,
            ),
            (
                "erp_events_records_handled",
                "Records whose handler succeeded",
                &metrics.handled,
            ),
            (
                "erp_events_retries",
                "Handler attempts that failed and were retried",
                &metrics.retries,
            ),
            (
                "erp_events_records_dead_lettered",
                "Records sent to the dead-letter topic",
                &metrics.dead_lettered,
            ),
            (
                "erp_events_records_duplicate",
                "Records skipped because the group had handled their event already",
                &metrics.duplicates,
            ),
            (
                "erp_events_stalls",
                "Times a partition could not progress for about 10 s",
                &metrics.stalls,
            ),
            (
                "erp_events_store_errors",
                "Idempotency store calls that failed",
                &metrics.store_errors,
            ),
            (
                "messaging_client_sent_messages",
                "Records published (error_type set when the publish failed)",
                &metrics.sent,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        let gauges = [
            (
                "erp_events_stalled_partitions",
                "Partitions that cannot progress now (the store or the dead-letter topic failing)",
                &metrics.stalled,
            ),
            (
                "messaging_kafka_consumer_lag",
                "Records between a partition's committed offset and its end (librdkafka's consumer_lag)",
                &metrics.lag,
            ),
            (
                "erp_events_consumer_buffered_bytes",
                "Bytes of records a group's consumer has polled and its workers not yet taken",
                &metrics.buffered,
            ),
            (
                "erp_events_paused_partitions",
                "Partitions paused past their share of the consumer's buffer while it stayed full",
                &metrics.paused,
            ),
        ];
        for (name, help, family) in gauges {
            registry.register(name, help, family.clone());
        }
        registry.register_with_unit(
            "messaging_process_duration",
            "Duration of one handler attempt (error_type set when it failed)",
            Unit::Seconds,
            metrics.process.clone(),
        );
        registry.register_with_unit(
            "messaging_client_operation_duration",
            "Duration of a publish, from the send to the broker's acknowledgement",
            Unit::Seconds,
            metrics.send.clone(),
        );
        metrics
    }
}

impl Metrics {
    /// The handles one listener counts with.
    pub(crate) fn listener(
        &self,
        system: &'static str,
        group: &'static str,
        topic: &'static str,
        name: &'static str,
    ) -> ListenerMetrics {
        let labels: Labels = vec![
            ("messaging_consumer_group_name", group.to_owned()),
            ("messaging_destination_name", topic.to_owned()),
            ("erp_listener", name.to_owned()),
        ];
        let mut consumed = labels.clone();
        consumed.push(("messaging_system", system.to_owned()));
        consumed.push(("messaging_operation_name", "consume".to_owned()));
        let mut process = labels.clone();
        process.push(("messaging_system", system.to_owned()));
        process.push(("messaging_operation_name", "process".to_owned()));
        ListenerMetrics {
            consumed: self.consumed.get_or_create_owned(&consumed),
            handled: self.handled.get_or_create_owned(&labels),
            retries: self.retries.get_or_create_owned(&labels),
            dead_lettered: self.dead_lettered.get_or_create_owned(&labels),
            duplicates: self.duplicates.get_or_create_owned(&labels),
            stalls: self.stalls.get_or_create_owned(&labels),
            store_errors: self.store_errors.get_or_create_owned(&labels),
            stalled: self.stalled.get_or_create_owned(&labels),
            succeeded: self.process.get_or_create_owned(&process),
            failed: (self.process.clone(), process),
        }
    }

    /// Records one publish to `topic` that took `took` and failed with `error_type`, if it did.
    pub(crate) fn published(
        &self,
        system: &'static str,
        topic: &'static str,
        took: Duration,
        error_type: Option<&'static str>,
    ) {
        let key = (system, topic, error_type);
        let known = self.sends.read().expect("not poisoned").get(&key).cloned();
        let (duration, count) = known.unwrap_or_else(|| {
            let mut labels: Labels = vec![
                ("messaging_system", system.to_owned()),
                ("messaging_destination_name", topic.to_owned()),
                ("messaging_operation_name", "send".to_owned()),
            ];
            labels.extend(error_type.map(|error_type| ("error_type", error_type.to_owned())));
            let series = (
                self.send.get_or_create_owned(&labels),
                self.sent.get_or_create_owned(&labels),
            );
            let mut sends = self.sends.write().expect("not poisoned");
            sends.insert(key, series.clone());
            series
        });
        duration.observe(took.as_secs_f64());
        count.inc();
    }

    /// The gauges of `group`'s consumer buffer: the bytes it holds, the partitions it paused.
    pub(crate) fn consumer_buffer(&self, group: &str) -> (Gauge, Gauge) {
        let labels = vec![("messaging_consumer_group_name", group.to_owned())];
        (
            self.buffered.get_or_create(&labels).clone(),
            self.paused.get_or_create(&labels).clone(),
        )
    }

    /// Sets the lag of `group` on each `(topic, partition)`, forgetting partitions not listed
    /// (given up since).
    pub(crate) fn set_lag(&self, group: &str, lags: &[(String, i32, i64)]) {
        let labels = |topic: &str, partition: i32| -> Labels {
            vec![
                ("messaging_consumer_group_name", group.to_owned()),
                ("messaging_destination_name", topic.to_owned()),
                ("messaging_destination_partition_id", partition.to_string()),
            ]
        };
        let current: Vec<Labels> = lags
            .iter()
            .map(|(topic, partition, _)| labels(topic, *partition))
            .collect();
        let mut known = self.lag_series.lock().expect("not poisoned");
        let previous = known.insert(group.to_owned(), current.clone());
        for gone in previous.iter().flatten().filter(|s| !current.contains(s)) {
            self.lag.remove(gone);
        }
        for ((_, _, lag), series) in lags.iter().zip(&current) {
            self.lag.get_or_create(series).set(*lag);
        }
    }

    /// The text exposition format (OpenMetrics 1.0), as `/metrics` serves it.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String does not fail");
        text
    }
}

/// One listener's series. Cloning shares them.
#[derive(Clone)]
pub(crate) struct ListenerMetrics {
    pub(crate) consumed: Counter,
    pub(crate) handled: Counter,
    pub(crate) retries: Counter,
    pub(crate) dead_lettered: Counter,
    pub(crate) duplicates: Counter,
    pub(crate) stalls: Counter,
    pub(crate) store_errors: Counter,
    pub(crate) stalled: Gauge,
    succeeded: Durations,
    failed: (Family<Labels, Durations>, Labels),
}

impl ListenerMetrics {
    /// Records a handler attempt on `partition` that took `took` and failed with `error_type`,
    /// if it did.
    pub(crate) fn attempt(&self, partition: i32, took: Duration, error_type: Option<&'static str>) {
        match error_type {
            None => self.succeeded.observe(partition, took),
            Some(error_type) => {
                let (family, labels) = &self.failed;
                let mut labels = labels.clone();
                labels.push(("error_type", error_type.to_owned()));
                family.get_or_create(&labels).observe(partition, took);
            }
        }
    }
}
