//! A histogram of handler durations that partition workers fill without sharing a lock or a
//! cache line: `prometheus_client`'s histogram takes one mutex per observation, so a listener's
//! workers on different cores would pass that lock and its counts between them on every record.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// OpenTelemetry's advisory buckets for messaging durations, in seconds.
pub(crate) const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Shards per histogram: a worker observes into the shard of its partition, so workers on
/// different cores rarely share one.
const SHARDS: usize = 16;

/// A histogram over [`BUCKETS`] (and `+Inf`) whose observations are counted in shards; a scrape
/// adds them up. Cloning shares the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Durations {
    shards: Arc<[Shard; SHARDS]>,
}

/// One shard's counts, on cache lines of its own (two 64-byte lines are prefetched together).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    /// Observations per bucket (not cumulative); the last is `+Inf`'s.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// The observations' sum, in nanoseconds.
    nanos: AtomicU64,
}

impl Durations {
    /// Counts one observation of `took` in the shard of `partition`.
    pub(crate) fn observe(&self, partition: i32, took: Duration) {
        let shard = &self.shards[partition.unsigned_abs() as usize % SHARDS];
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        shard.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl EncodeMetric for Durations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut counts = [0; BUCKETS.len() + 1];
        let mut nanos = 0u64;
        for shard in self.shards.iter() {
            for (count, bucket) in counts.iter_mut().zip(&shard.buckets) {
                *count += bucket.load(Ordering::Relaxed);
            }
            nanos = nanos.wrapping_add(shard.nanos.load(Ordering::Relaxed));
        }
        let bounds = BUCKETS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts).collect();
        let sum = Duration::from_nanos(nanos).as_secs_f64();
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl TypedMetric for Durations {
    const TYPE: MetricType = MetricType::Histogram;
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::{Registry, Unit};

    use super::*;

    fn render(metric: impl EncodeMetric + Send + Sync + std::fmt::Debug + 'static) -> String {
        let mut registry = Registry::default();
        registry.register_with_unit("took", "Durations", Unit::Seconds, metric);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn renders_what_prometheus_clients_histogram_renders_for_the_same_observations() {
        let (sharded, reference) = (Durations::default(), Histogram::new(BUCKETS));
        // On and between bounds, past the last one, from partitions in every shard and beyond.
        let millis = [0, 5, 7, 10, 60, 100, 250, 900, 1_000, 4_000, 10_000, 12_500];
        for (i, millis) in millis.into_iter().enumerate() {
            let took = Duration::from_millis(millis);
            sharded.observe(i as i32 * 7 - 20, took);
            reference.observe(took.as_secs_f64());
        }
        // The sums are added as nanoseconds here and as seconds there: equal in these digits.
        let sum_of = |text: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with("took_seconds_sum"))
                .unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let (ours, theirs) = (render(sharded), render(reference));
        assert!(
            (sum_of(&ours) - sum_of(&theirs)).abs() < 1e-9,
            "{ours}\n{theirs}"
        );
        let without_sum = |text: &str| -> String {
            let lines = text.lines().filter(|l| !l.starts_with("took_seconds_sum"));
            lines.collect::<Vec<_>>().join("\n")
        };
        assert_eq!(without_sum(&ours), without_sum(&theirs));
        assert!(ours.contains("took_seconds_count 12"), "{ours}");
        assert!(
            ours.contains("took_seconds_bucket{le=\"0.005\"} 2"),
            "{ours}"
        );
        assert!(
            ours.contains("took_seconds_bucket{le=\"+Inf\"} 12"),
            "{ours}"
        );
    }
}
