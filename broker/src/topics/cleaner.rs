//! The background log cleaner over every compacted partition: plan under the partition lock,
//! clean without it, swap in under it again (see `crate::log::compact`), count and log.
//!
//! It never holds a partition lock while reading or writing segment data, and a failed or
//! discarded pass leaves the partition as it was.

use std::time::Instant;

use super::{Partition, TopicRegistry};
use crate::log::compact::{self, CleanStats};
use crate::log::LogError;
use crate::metrics::CleanerMetrics;

impl TopicRegistry {
    /// Runs one cleaner round: every partition whose log is due is cleaned once. Returns the
    /// number of passes swapped in.
    pub fn clean_logs(&self, now_ms: i64) -> usize {
        let metrics = &self.metrics.cleaner;
        let mut max_ratio = 0.0f64;
        let mut passes = 0;
        let clustered = self.is_clustered();
        for p in self.all_partitions() {
            match clean_partition(&p, clustered, now_ms, metrics, &mut max_ratio) {
                Ok(true) => passes += 1,
                Ok(false) => {}
                Err(e) => {
                    metrics.aborted.inc();
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "log cleaning failed");
                }
            }
        }
        metrics.max_dirty_ratio.set(max_ratio);
        passes
    }
}

/// One pass over one partition, if due. True when a pass was swapped in. In a cluster only
/// segments wholly below the high watermark are cleaned, as in Kafka: records above it may still
/// be truncated when leadership moves.
fn clean_partition(
    p: &Partition,
    clustered: bool,
    now_ms: i64,
    metrics: &CleanerMetrics,
    max_ratio: &mut f64,
) -> Result<bool, LogError> {
    let limit = if clustered {
        p.high_watermark()
    } else {
        i64::MAX
    };
    let (ratio, plan) = p.log.lock().plan_cleaning_below(now_ms, limit)?;
    *max_ratio = max_ratio.max(ratio);
    let Some(plan) = plan else {
        return Ok(false);
    };
    let started = Instant::now();
    let cleaned = compact::clean(plan, now_ms)?;
    let stats = cleaned.stats;
    let installed = {
        let mut log = p.log.lock();
        let installed = log.install_cleaned(cleaned)?;
        p.update_gauges(&log);
        installed
    };
    if !installed {
        metrics.aborted.inc();
        return Ok(false);
    }
    let elapsed = started.elapsed();
    record(metrics, &stats, elapsed.as_secs_f64());
    tracing::info!(
        topic = %p.topic, partition = p.index,
        segments_before = stats.segments_before, segments_after = stats.segments_after,
        bytes_before = stats.bytes_before, bytes_after = stats.bytes_after,
        records_removed = stats.records_removed, batches_rebuilt = stats.batches_rebuilt,
        batches_dropped = stats.batches_dropped, dirty_keys = stats.dirty_keys,
        first_dirty_offset = stats.first_dirty, dirty_end_offset = stats.dirty_end,
        dirty_ratio = ratio, duration_ms = elapsed.as_millis() as u64,
        "cleaned log"
    );
    Ok(true)
}

fn record(metrics: &CleanerMetrics, stats: &CleanStats, seconds: f64) {
    metrics.passes.inc();
    metrics.bytes_read.inc_by(stats.bytes_before);
    metrics.bytes_written.inc_by(stats.bytes_after);
    metrics
        .bytes_removed
        .inc_by(stats.bytes_before.saturating_sub(stats.bytes_after));
    metrics.records_removed.inc_by(stats.records_removed);
    metrics.last_pass_seconds.set(seconds);
}
