//! Metrics of the log cleaner (compaction of `cleanup.policy=compact` topics).

use prometheus::{Gauge, IntCounter, Registry};

/// Counters and gauges of the log cleaner.
#[derive(Clone)]
pub struct CleanerMetrics {
    /// Cleaning passes swapped in.
    pub passes: IntCounter,
    /// Passes discarded because retention changed the segments meanwhile, or that failed.
    pub aborted: IntCounter,
    /// Segment bytes the passes read and rewrote.
    pub bytes_read: IntCounter,
    /// Segment bytes the passes wrote.
    pub bytes_written: IntCounter,
    /// Bytes the passes removed (read minus written).
    pub bytes_removed: IntCounter,
    /// Records the passes removed.
    pub records_removed: IntCounter,
    /// Largest dirty ratio over compacted logs at the last check.
    pub max_dirty_ratio: Gauge,
    /// Duration of the last pass, in seconds.
    pub last_pass_seconds: Gauge,
}

impl CleanerMetrics {
    /// Creates and registers the cleaner metrics.
    pub(super) fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<Gauge> {
            let g = Gauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Self {
            passes: counter(
                "samsa_log_cleaner_passes_total",
                "Log cleaning passes swapped in",
            )?,
            aborted: counter(
                "samsa_log_cleaner_aborted_total",
                "Log cleaning passes discarded or failed",
            )?,
            bytes_read: counter(
                "samsa_log_cleaner_read_bytes_total",
                "Segment bytes read and rewritten by the log cleaner",
            )?,
            bytes_written: counter(
                "samsa_log_cleaner_written_bytes_total",
                "Segment bytes written by the log cleaner",
            )?,
            bytes_removed: counter(
                "samsa_log_cleaner_removed_bytes_total",
                "Segment bytes removed by the log cleaner",
            )?,
            records_removed: counter(
                "samsa_log_cleaner_removed_records_total",
                "Records removed by the log cleaner",
            )?,
            max_dirty_ratio: gauge(
                "samsa_log_cleaner_max_dirty_ratio",
                "Largest dirty ratio of a compacted log at the last cleaner check",
            )?,
            last_pass_seconds: gauge(
                "samsa_log_cleaner_last_pass_seconds",
                "Duration of the last log cleaning pass",
            )?,
        })
    }
}
