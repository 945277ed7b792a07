//! `GET /metrics` of `pitcrew receive` (behind its API token), in Prometheus' text format
//! (version 0.0.4): what an organisation's shared receiver takes, refuses and keeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the store latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];

/// The receiver's counters (atomics: every delivery counts, nothing waits on them).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Callbacks and postbacks taken (authorized, kept, answered).
    pub taken: AtomicU64,
    /// Refused for their credentials (401).
    pub refused: AtomicU64,
    /// Long polls (`/api/callbacks/wait`) waiting now.
    pub waiting: AtomicU64,
    /// How long keeping a delivery took (the store's write, when there is a store), by bucket
    /// (`BUCKETS`, then +Inf), with the count and the sum in microseconds.
    store_buckets: [AtomicU64; BUCKETS.len() + 1],
    store_count: AtomicU64,
    store_sum_us: AtomicU64,
}

impl Metrics {
    /// Counts one keeping that took `took`.
    pub fn stored(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        self.store_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.store_count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.store_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The text `/metrics` answers; `stray`: the receiver's count of strays.
    pub fn render(&self, stray: u64) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "pitcrew_receiver_callbacks_taken_total",
            "counter",
            "Callbacks and postbacks taken: authorized, kept and answered.",
            get(&self.taken),
        );
        metric(
            "pitcrew_receiver_callbacks_refused_total",
            "counter",
            "Callbacks and postbacks refused for their credentials (401).",
            get(&self.refused),
        );
        metric(
            "pitcrew_receiver_callbacks_stray_total",
            "counter",
            "Deliveries that can match no case: refused, unreadable, naming no id, or not kept.",
            stray,
        );
        metric(
            "pitcrew_receiver_long_polls_waiting",
            "gauge",
            "Long polls (/api/callbacks/wait) waiting now.",
            get(&self.waiting),
        );
        let name = "pitcrew_receiver_store_seconds";
        out.push_str(&format!(
            "# HELP {name} How long keeping a taken delivery took (the store's write, with a store).\n# TYPE {name} histogram\n"
        ));
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += get(&self.store_buckets[i]);
            out.push_str(&format!("{name}_bucket{{le=\"{bound}\"}} {cumulative}\n"));
        }
        cumulative += get(&self.store_buckets[BUCKETS.len()]);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {cumulative}\n"));
        let sum = get(&self.store_sum_us) as f64 / 1_000_000.0;
        out.push_str(&format!(
            "{name}_sum {sum}\n{name}_count {}\n",
            get(&self.store_count)
        ));
        out
    }
}

/// Counts a long poll as waiting while it lives.
pub struct Waiting<'a>(&'a Metrics);

impl<'a> Waiting<'a> {
    pub fn new(metrics: &'a Metrics) -> Waiting<'a> {
        metrics.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(metrics)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_prometheus_and_counts_add_up() {
        let m = Metrics::default();
        m.taken.fetch_add(3, Ordering::Relaxed);
        m.stored(Duration::from_micros(300));
        m.stored(Duration::from_secs(5));
        let waiting = Waiting::new(&m);
        let text = m.render(2);
        assert!(text.contains("# TYPE pitcrew_receiver_callbacks_taken_total counter\npitcrew_receiver_callbacks_taken_total 3\n"));
        assert!(text.contains("pitcrew_receiver_callbacks_stray_total 2\n"));
        assert!(text.contains("pitcrew_receiver_long_polls_waiting 1\n"));
        assert!(text.contains("pitcrew_receiver_store_seconds_bucket{le=\"0.0001\"} 0\n"));
        assert!(text.contains("pitcrew_receiver_store_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("pitcrew_receiver_store_seconds_bucket{le=\"2.5\"} 1\n"));
        assert!(text.contains("pitcrew_receiver_store_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("pitcrew_receiver_store_seconds_count 2\n"));
        assert!(
            text.contains("pitcrew_receiver_store_seconds_sum 5.0003\n"),
            "{text}"
        );
        drop(waiting);
        assert!(
            m.render(0)
                .contains("pitcrew_receiver_long_polls_waiting 0\n")
        );
        // Every sample line is `name{labels} value`, every name declared before it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let base = name.split('{').next().unwrap();
            let family = base
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{line}");
        }
    }
}
