//! What a benchmark side reports: throughput, latency percentiles and peak memory.

use std::time::Duration;

/// The result of one measured side, printed by the child as one JSON line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measurement {
    /// Events per second.
    pub throughput: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Peak resident memory of the measuring process, MiB.
    pub peak_rss_mib: f64,
    /// The measuring process's CPU time (every thread, user and system) over the measured
    /// events, in microseconds per event: what a side costs, whatever else the machine runs.
    pub cpu_us_per_event: f64,
}

impl Measurement {
    /// As the JSON line a child prints.
    pub fn to_json(self) -> String {
        serde_json::json!({
            "throughput": self.throughput,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "peak_rss_mib": self.peak_rss_mib,
            "cpu_us_per_event": self.cpu_us_per_event,
        })
        .to_string()
    }

    /// Reads a child's JSON line.
    pub fn from_json(line: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let field = |name: &str| value.get(name)?.as_f64();
        Some(Measurement {
            throughput: field("throughput")?,
            p50_ms: field("p50_ms")?,
            p99_ms: field("p99_ms")?,
            peak_rss_mib: field("peak_rss_mib")?,
            // The Spring peer and the faststream script do not report it.
            cpu_us_per_event: field("cpu_us_per_event").unwrap_or(0.0),
        })
    }
}

/// Events per second.
pub fn throughput(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The `p`-th percentile (0–100) of `samples`, in the samples' unit; 0 when empty.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// This process's peak resident set size (VmHWM), MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The CPU time this process has used (every thread, user and system), seconds; Linux
/// counts it in ticks of 10 ms.
pub fn cpu_seconds() -> f64 {
    const TICKS_PER_SECOND: f64 = 100.0;
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // The fields after the command (which may hold spaces), from the state on:
            // utime and stime are the 14th and 15th fields of the line.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
            Some(ticks(11)? + ticks(12)?)
        })
        .map_or(0.0, |ticks| ticks / TICKS_PER_SECOND)
}

/// Microseconds of CPU per event, from the CPU seconds at the start and the end.
pub fn cpu_us_per_event(events: usize, (start, end): (f64, f64)) -> f64 {
    (end - start) * 1e6 / events.max(1) as f64
}

/// Milliseconds since the Unix epoch, as a float (record timestamps have millisecond precision).
pub fn now_millis() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn percentiles_and_round_trip() {
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut samples, 50.0), 51.0);
        assert_eq!(percentile(&mut samples, 99.0), 99.0);
        let m = Measurement {
            throughput: 1.5,
            p50_ms: 2.0,
            p99_ms: 3.0,
            peak_rss_mib: 4.0,
            cpu_us_per_event: 5.0,
        };
        assert_eq!(Measurement::from_json(&m.to_json()), Some(m));
        let peer = r#"{"throughput":1.5,"p50_ms":2.0,"p99_ms":3.0,"peak_rss_mib":4.0}"#;
        let peer = Measurement::from_json(peer).expect("a peer's line without CPU");
        assert_eq!(peer.cpu_us_per_event, 0.0);
        assert!(peak_rss_mib() > 0.0);
        let start = cpu_seconds();
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(());
        }
        let spent = cpu_seconds() - start;
        assert!((0.02..1.0).contains(&spent), "{spent} s of CPU");
        assert_eq!(cpu_us_per_event(1000, (1.0, 1.5)), 500.0);
    }
}
