//! Log compaction (`cleanup.policy=compact`), Kafka's log cleaner for one partition log.
//!
//! A pass has three phases so that the partition lock is held only briefly:
//! 1. [`Log::plan_cleaning`] (under the lock): decides whether the log is due (dirty ratio,
//!    `min.compaction.lag.ms`, tombstones past their horizon) and snapshots the segments to read
//!    as duplicated file handles;
//! 2. [`clean`] (no lock): maps each key of the dirty section to its latest offset, then
//!    rewrites every sealed segment below the end of the dirty section into `.cleaned` files;
//! 3. [`Log::install_cleaned`] (under the lock): checks that retention did not change those
//!    segments meanwhile (else discards the work) and swaps the cleaned segments in (`swap`).
//!
//! The dirty section runs from the cleaner checkpoint (the first offset not yet cleaned, kept in
//! `cleaner-offset-checkpoint` in the partition directory; the log start when absent) to the
//! first uncleanable offset: the active segment's base, or the base of the first segment whose
//! newest record is younger than `min.compaction.lag.ms`. The active segment is never touched,
//! every surviving record keeps its offset, and a batch whose records all survive is copied byte
//! for byte. It never panics on stored bytes: damage aborts the pass with an error.

mod filter;
pub(crate) mod swap;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch::{parse_header, BatchHeader, HEADER_LEN};
use super::segment::Segment;
use super::{recovery, Log, LogError};
use filter::{filter_batch, Filtered, OffsetMap, Rules};
use swap::{CleanedWriter, SwapGroup};

/// Memory the key → offset map of one pass may use (the default of Kafka's
/// `log.cleaner.dedupe.buffer.size`). When the dirty section holds more keys, the pass cleans up
/// to the segment where the map filled (one dirty segment at least) and the next pass goes on
/// from there.
const OFFSET_MAP_BYTES: usize = 128 << 20;

/// Cleaner state of one log kept in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CleanerState {
    /// Offsets below this were cleaned (persisted in the checkpoint file).
    pub(crate) first_dirty_offset: i64,
    /// The earliest time a tombstone kept by the last pass may be removed.
    pub(crate) tombstone_expiry: Option<i64>,
}

/// A sealed (or active, read up to `size`) segment as the cleaner reads it.
#[derive(Debug)]
struct SegmentSnapshot {
    base: i64,
    size: u64,
    path: PathBuf,
    file: File,
}

impl SegmentSnapshot {
    fn of(segment: &Segment) -> Result<Self, LogError> {
        Ok(Self {
            base: segment.base_offset(),
            size: segment.size(),
            path: segment.log_path.clone(),
            file: segment
                .file
                .try_clone()
                .map_err(LogError::io("duplicate handle of", &segment.log_path))?,
        })
    }
}

/// What one cleaning pass reads, taken under the partition lock.
#[derive(Debug)]
pub struct CleanPlan {
    dir: PathBuf,
    /// Sealed segments below the end of the dirty section, oldest first: they are rewritten.
    segments: Vec<SegmentSnapshot>,
    /// The later segments (the active one included): read only to find each producer's last
    /// batch.
    later: Vec<SegmentSnapshot>,
    first_dirty: i64,
    dirty_end: i64,
    segment_bytes: u64,
    index_interval: u32,
    delete_retention_ms: i64,
    /// Memory bound of the offset map.
    map_limit: usize,
    /// Dirty bytes / (clean + dirty bytes) when planned.
    pub dirty_ratio: f64,
}

/// The result of [`clean`], to be installed with [`Log::install_cleaned`].
#[derive(Debug)]
pub struct Cleaned {
    dir: PathBuf,
    groups: Vec<SwapGroup>,
    /// `(base, size)` of every old segment, to check nothing changed before the swap.
    old: Vec<(i64, u64)>,
    dirty_end: i64,
    tombstone_expiry: Option<i64>,
    /// Figures of the pass.
    pub stats: CleanStats,
}

/// Figures of one cleaning pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub batches_rebuilt: u64,
    pub batches_dropped: u64,
    /// Distinct keys in the dirty section.
    pub dirty_keys: usize,
    pub first_dirty: i64,
    pub dirty_end: i64,
}

/// Calls `f(position, header, batch bytes)` for every batch of a snapshot, reading windows of
/// at least 1 MiB. Damage ends the walk with `LogError::Corrupt`.
fn for_each_batch(
    seg: &SegmentSnapshot,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    const WINDOW: u64 = 1 << 20;
    let corrupt = |pos: u64, what: String| {
        LogError::Corrupt(format!("{} at position {pos}: {what}", seg.path.display()))
    };
    let mut pos = 0u64;
    let mut want = WINDOW;
    let mut buf = Vec::new();
    while pos < seg.size {
        let len = want.min(seg.size - pos) as usize;
        buf.resize(len, 0);
        seg.file
            .read_exact_at(&mut buf, pos)
            .map_err(LogError::io("read", &seg.path))?;
        let mut used = 0usize;
        while let Some(rest) = buf.get(used..).filter(|r| !r.is_empty()) {
            let header = match parse_header(rest) {
                Ok(h) => h,
                Err(_) if rest.len() < HEADER_LEN && (len as u64) < seg.size - pos => break,
                Err(e) => return Err(corrupt(pos + used as u64, e.to_string())),
            };
            let Some(batch) = rest.get(..header.total_len()) else {
                break;
            };
            f(&header, batch)?;
            used += header.total_len();
        }
        if used == 0 {
            // One batch larger than the window: read again with room for it.
            let needed = parse_header(&buf).map_or(HEADER_LEN, |h| h.total_len()) as u64;
            if needed <= len as u64 || pos + needed > seg.size {
                return Err(corrupt(pos, "torn batch".into()));
            }
            want = needed;
            continue;
        }
        pos += used as u64;
        want = WINDOW;
    }
    Ok(())
}

impl Log {
    /// Whether a cleaning pass is due at `now_ms` and, if so, what it reads. Also returns the
    /// log's dirty ratio (0 when the log is not compacted).
    pub fn plan_cleaning(&self, now_ms: i64) -> Result<(f64, Option<CleanPlan>), LogError> {
        self.plan_cleaning_below(now_ms, i64::MAX)
    }

    /// [`Log::plan_cleaning`] that leaves alone every segment holding an offset at or above
    /// `limit` (a replica's high watermark: what is above it may still be truncated).
    pub fn plan_cleaning_below(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<(f64, Option<CleanPlan>), LogError> {
        let config = &self.config;
        if !config.cleanup_compact {
            return Ok((0.0, None));
        }
        let first_dirty = self.cleaner.first_dirty_offset.max(self.log_start_offset());
        let lag = config.min_compaction_lag_ms;
        let dirty_end = self
            .sealed
            .values()
            .find(|s| lag > 0 && s.max_timestamp() > now_ms.saturating_sub(lag))
            .map_or(self.active.base_offset(), Segment::base_offset);
        // The base of the segment holding `limit`: the segments before it are wholly below.
        let limit_end = self
            .sealed
            .values()
            .map(Segment::base_offset)
            .chain(std::iter::once(self.active.base_offset()))
            .filter(|&base| base <= limit)
            .max()
            .unwrap_or(i64::MIN);
        let dirty_end = dirty_end.min(limit_end);
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        for s in self.sealed.range(..dirty_end).map(|(_, s)| s) {
            if s.base_offset() < first_dirty {
                clean_bytes += s.size();
            } else {
                dirty_bytes += s.size();
            }
        }
        let total = clean_bytes + dirty_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let tombstones_due = self.cleaner.tombstone_expiry.is_some_and(|at| at <= now_ms);
        let ratio_due = dirty_bytes > 0 && ratio >= config.min_cleanable_dirty_ratio;
        if total == 0 || !(ratio_due || tombstones_due) {
            return Ok((ratio, None));
        }
        let mut segments = Vec::new();
        let mut later = Vec::new();
        for s in self.sealed.values() {
            if s.base_offset() < dirty_end {
                segments.push(SegmentSnapshot::of(s)?);
            } else {
                later.push(SegmentSnapshot::of(s)?);
            }
        }
        later.push(SegmentSnapshot::of(&self.active)?);
        Ok((
            ratio,
            Some(CleanPlan {
                dir: self.dir.clone(),
                segments,
                later,
                first_dirty,
                dirty_end,
                segment_bytes: config.segment_bytes.min(super::MAX_SEGMENT_BYTES),
                index_interval: config.index_interval_bytes,
                delete_retention_ms: config.delete_retention_ms,
                map_limit: OFFSET_MAP_BYTES,
                dirty_ratio: ratio,
            }),
        ))
    }

    /// Swaps in what [`clean`] wrote, unless the segments it read changed meanwhile (retention
    /// deleted some): then the work is discarded and this returns false.
    pub fn install_cleaned(&mut self, cleaned: Cleaned) -> Result<bool, LogError> {
        let unchanged = cleaned.old.iter().all(|&(base, size)| {
            self.sealed
                .get(&base)
                .is_some_and(|s| s.size() == size && still_on_disk(s))
        });
        let first = cleaned.old.first().map(|o| o.0);
        let last = cleaned.old.last().map(|o| o.0);
        let same_set = match (first, last) {
            (Some(first), Some(last)) => {
                self.sealed.range(first..=last).count() == cleaned.old.len()
            }
            _ => false,
        };
        if !unchanged || !same_set || cleaned.dir != self.dir {
            swap::discard(&cleaned.dir, &cleaned.groups);
            tracing::info!(dir = %self.dir.display(), "segments changed during cleaning; pass discarded");
            return Ok(false);
        }
        self.ensure_writable()?;
        let next_bases = self.next_bases(&cleaned.groups);
        swap::commit(&self.dir, &cleaned.groups)?;
        swap::complete(&self.dir, &cleaned.groups, usize::MAX)?;
        for &(base, _) in &cleaned.old {
            self.sealed.remove(&base);
        }
        for (group, next) in cleaned.groups.iter().zip(next_bases) {
            let segment = recovery::open_segment(
                &self.dir,
                group.new_base,
                Some(next),
                false,
                self.config.index_interval_bytes,
            )?;
            self.sealed.insert(group.new_base, segment);
        }
        self.cleaner = CleanerState {
            first_dirty_offset: cleaned.dirty_end,
            tombstone_expiry: cleaned.tombstone_expiry,
        };
        if let Err(e) = swap::write_checkpoint(&self.dir, cleaned.dirty_end) {
            // The next pass then cleans the same section again: only wasted work.
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the cleaner checkpoint");
        }
        Ok(true)
    }

    /// For each group, the base offset of the segment after it.
    fn next_bases(&self, groups: &[SwapGroup]) -> Vec<i64> {
        groups
            .iter()
            .map(|g| {
                let last = g.old_bases.last().copied().unwrap_or(g.new_base);
                self.sealed
                    .range(last.saturating_add(1)..)
                    .next()
                    .map_or(self.active.base_offset(), |(base, _)| *base)
            })
            .collect()
    }
}

/// Whether the segment's file is still the one at its path (not deleted, nor replaced by a
/// topic re-created under the same name while the pass ran).
fn still_on_disk(segment: &Segment) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(&segment.log_path),
        segment.file.metadata(),
    ) {
        (Ok(on_disk), Ok(open)) => on_disk.dev() == open.dev() && on_disk.ino() == open.ino(),
        _ => false,
    }
}

/// Last batch (its last offset) of each producer id in the whole log.
fn last_batch_per_producer(plan: &CleanPlan) -> Result<HashMap<i64, i64>, LogError> {
    let mut last = HashMap::new();
    for seg in plan.segments.iter().chain(&plan.later) {
        for_each_batch(seg, |h, _| {
            if h.has_producer_id() && !h.is_control() {
                last.insert(h.producer_id, h.last_offset());
            }
            Ok(())
        })?;
    }
    Ok(last)
}

/// Consecutive segments whose sizes add up to at most `max_bytes` (one at least), as Kafka
/// groups segments before cleaning them into one.
fn group_segments(segments: &[SegmentSnapshot], max_bytes: u64) -> Vec<&[SegmentSnapshot]> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut size = 0u64;
    for (i, s) in segments.iter().enumerate() {
        if i > start && size.saturating_add(s.size) > max_bytes {
            groups.push(segments.get(start..i).unwrap_or_default());
            start = i;
            size = 0;
        }
        size = size.saturating_add(s.size);
    }
    if start < segments.len() {
        groups.push(segments.get(start..).unwrap_or_default());
    }
    groups
}

/// The latest offset of each key of the dirty section, and where the section ends: the
/// planned end, or earlier where the map reached its memory bound (at a segment boundary,
/// after one dirty segment at least).
fn build_offset_map(plan: &CleanPlan) -> Result<(OffsetMap, i64), LogError> {
    let mut map = OffsetMap::default();
    let dirty = plan.segments.iter().filter(|s| s.base >= plan.first_dirty);
    for (mapped, seg) in dirty.enumerate() {
        if mapped > 0 && map.bytes() >= plan.map_limit {
            return Ok((map, seg.base));
        }
        for_each_batch(seg, |h, batch| {
            map.add_batch(batch, h);
            Ok(())
        })?;
    }
    Ok((map, plan.dirty_end))
}

/// Phase 2 of a pass (see the module doc): reads the planned segments without any lock and
/// writes the cleaned ones as `.cleaned` files.
pub fn clean(plan: CleanPlan, now_ms: i64) -> Result<Cleaned, LogError> {
    let (map, dirty_end) = build_offset_map(&plan)?;
    let rewritten = plan
        .segments
        .iter()
        .take_while(|s| s.base < dirty_end)
        .count();
    let segments = plan.segments.get(..rewritten).unwrap_or_default();
    let producers = last_batch_per_producer(&plan)?;
    let rules = Rules {
        map: &map,
        now_ms,
        delete_retention_ms: plan.delete_retention_ms,
    };
    let mut stats = CleanStats {
        segments_before: segments.len(),
        dirty_keys: map.len(),
        first_dirty: plan.first_dirty,
        dirty_end,
        ..CleanStats::default()
    };
    let mut groups = Vec::new();
    let mut expiry: Option<i64> = None;
    let written = (|| {
        for group in group_segments(segments, plan.segment_bytes) {
            let Some(first) = group.first() else {
                continue;
            };
            groups.push(SwapGroup {
                new_base: first.base,
                old_bases: group.iter().map(|s| s.base).collect(),
            });
            let mut writer = CleanedWriter::create(&plan.dir, first.base, plan.index_interval)?;
            for seg in group {
                stats.bytes_before += seg.size;
                for_each_batch(seg, |h, batch| {
                    let keep_empty = producers.get(&h.producer_id) == Some(&h.last_offset());
                    let outcome = filter_batch(batch, h, &rules, keep_empty);
                    stats.records_removed += outcome.removed_records;
                    if let Some(at) = outcome.tombstone_expiry {
                        expiry = Some(expiry.map_or(at, |e: i64| e.min(at)));
                    }
                    match outcome.filtered {
                        Filtered::Unchanged => writer.append(batch),
                        Filtered::Rebuilt(bytes) => {
                            stats.batches_rebuilt += 1;
                            writer.append(&bytes)
                        }
                        Filtered::Dropped => {
                            stats.batches_dropped += 1;
                            Ok(())
                        }
                    }
                })?;
            }
            stats.bytes_after += writer.finish()?;
        }
        Ok::<(), LogError>(())
    })();
    if let Err(e) = written {
        swap::discard(&plan.dir, &groups);
        return Err(e);
    }
    stats.segments_after = groups.len();
    Ok(Cleaned {
        dir: plan.dir.clone(),
        old: segments.iter().map(|s| (s.base, s.size)).collect(),
        groups,
        dirty_end,
        tombstone_expiry: expiry,
        stats,
    })
}

/// The cleaner state of a log opened from `dir`: its checkpoint, clamped to the log. A log
/// cleaned before may hold tombstones whose horizon is not known after a restart: one pass is
/// due at once to learn it again.
pub(crate) fn load_state(dir: &Path, log_start: i64, log_end: i64) -> CleanerState {
    let checkpoint = swap::read_checkpoint(dir);
    CleanerState {
        first_dirty_offset: checkpoint
            .unwrap_or(log_start)
            .clamp(log_start, log_end.max(log_start)),
        tombstone_expiry: checkpoint.map(|_| i64::MIN),
    }
}
