//! Per-partition log storage in Kafka's on-disk layout: a directory of segments
//! (`{base_offset:020}.log` + `.index` + `.timeindex`) holding RecordBatch v2 bytes exactly as
//! the producer sent them, with only the assigned base offset and leader epoch (and, under
//! LogAppendTime, the timestamp type and max timestamp) rewritten in the header.
//!
//! [`Log`] owns offset assignment, rolling, reads, timestamp lookups, flush policy, retention
//! and clean shutdown; recovery lives in `recovery`, one segment's files in `segment`, the
//! leader epoch cache in `epochs`, and what followers need (truncation, appending the leader's
//! batches, epoch end offsets) in `replica`.
//! It never buffers acknowledged data in user space, never re-encodes records, and never
//! panics on bytes read from disk or received from the network.

pub mod batch;
pub mod checkpoint;
pub mod compact;
mod epochs;
mod index;
mod records;
mod recovery;
#[cfg(test)]
mod recovery_tests;
mod replica;
#[cfg(test)]
mod replica_model_tests;
#[cfg(test)]
mod replica_tests;
mod segment;
mod slice;
mod start;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use batch::{BatchError, BatchHeader};
pub use checkpoint::CheckpointError;
pub use epochs::{EpochEntry, LEADER_EPOCH_FILE};
pub use slice::FileSlice;

use batch::{log_append_time_header, parse_header, write_offset_and_epoch, HEADER_LEN};
use recovery::CLEAN_SHUTDOWN_FILE;
use segment::Segment;

/// Per-log settings, named after the Kafka topic configs they implement.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this (capped at 2 GiB).
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first append is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older (-1 = unlimited).
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log stays at least this big
    /// without them (-1 = unlimited).
    pub retention_bytes: i64,
    /// `index.interval.bytes`: bytes between offset index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages`: fsync after this many records (`i64::MAX` = never).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the last flush is older than this (`i64::MAX` = never).
    pub flush_ms: i64,
    /// `message.timestamp.type=LogAppendTime`.
    pub log_append_time: bool,
    /// `cleanup.policy` holds `delete`: retention deletes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` holds `compact`: the cleaner keeps the latest record of each key.
    pub cleanup_compact: bool,
    /// `min.cleanable.dirty.ratio`: clean when dirty bytes / (clean + dirty) reach this.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long a tombstone stays after its timestamp.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: segments with records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
}

const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: WEEK_MS,
            retention_ms: WEEK_MS,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            log_append_time: false,
            cleanup_delete: true,
            cleanup_compact: false,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
        }
    }
}

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp as stored (the append time under LogAppendTime).
    pub max_timestamp: i64,
    pub record_count: i32,
    /// The timestamp the broker assigned, when the log uses LogAppendTime.
    pub log_append_time: Option<i64>,
    /// Whether the batch started a new segment (the previous active one was sealed first);
    /// `base_offset` is then the new segment's base offset.
    pub rolled: bool,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    /// The log start offset after the pass.
    pub log_start_offset: i64,
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A filesystem operation failed on `path`.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The requested offset is below the log start or above the log end.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    /// The batch handed to `append` is malformed.
    #[error("record batch rejected: {0}")]
    Batch(#[from] BatchError),
    /// Stored data or indexes are damaged beyond what recovery repairs.
    #[error("corrupt log: {0}")]
    Corrupt(String),
    /// A replicated batch does not continue the log: its base offset is below the log end.
    #[error("replicated batch at offset {got} overlaps the log, which ends at {expected}")]
    OffsetMismatch { expected: i64, got: i64 },
    /// A checkpoint file (leader epochs) could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl LogError {
    /// Wraps an `io::Error` with the operation and file it concerns.
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> LogError + 'a {
        move |source| LogError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// fsyncs a directory so that created, renamed and removed names are durable.
fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("fsync directory", dir))
}

/// Largest segment size: positions in the offset index are 32-bit, as in Kafka.
const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// The log of one partition. Reads take `&self` (positional reads); writes take `&mut self`.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Segments before the active one, by base offset.
    sealed: BTreeMap<i64, Segment>,
    /// The segment appends go to; always present, possibly empty.
    active: Segment,
    unflushed_messages: i64,
    last_flush_ms: i64,
    /// The clean-shutdown marker is on disk (after `close`); removed before the next write.
    marker_on_disk: bool,
    /// Where compaction stands (see `compact`).
    cleaner: compact::CleanerState,
    /// First offset of each leader epoch (see `epochs`).
    epochs: epochs::LeaderEpochCache,
    /// The log start set by DeleteRecords (or followed from the leader) when it is above the
    /// oldest segment's base (see `start`); never above the log end.
    start_floor: i64,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it if it was not closed cleanly.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<Log, LogError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(LogError::io("create directory", &dir))?;
        compact::swap::recover(&dir)?;
        let mut segments = recovery::load_segments(&dir, config.index_interval_bytes)?;
        let active = match segments.pop() {
            Some(segment) => segment,
            None => {
                let segment = Segment::create(&dir, 0)?;
                sync_dir(&dir)?;
                segment
            }
        };
        let sealed = segments.into_iter().map(|s| (s.base_offset(), s)).collect();
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        if marker.exists() {
            segment::remove_if_exists(&marker)?;
            sync_dir(&dir)?;
        }
        let (epochs, epochs_problem) = epochs::LeaderEpochCache::load(&dir);
        let mut log = Log {
            dir,
            config,
            sealed,
            active,
            unflushed_messages: 0,
            last_flush_ms: wall_clock_ms(),
            marker_on_disk: false,
            cleaner: compact::CleanerState::default(),
            epochs,
            start_floor: 0,
        };
        log.start_floor = start::load_floor(&log.dir).min(log.log_end_offset());
        log.cleaner = compact::load_state(&log.dir, log.log_start_offset(), log.log_end_offset());
        log.reconcile_epochs(epochs_problem)?;
        tracing::info!(
            dir = %log.dir.display(),
            segments = log.segment_count(),
            log_start_offset = log.log_start_offset(),
            log_end_offset = log.log_end_offset(),
            "opened log"
        );
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The first offset a client may read: the oldest segment's base offset, or the start
    /// DeleteRecords set when that is higher.
    pub fn log_start_offset(&self) -> i64 {
        self.sealed
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.active.base_offset())
            .max(self.start_floor)
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }

    /// Bytes in all segment log files.
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Calls `f` with the header of every stored batch, oldest first (headers only: one small
    /// positional read per batch). Used to rebuild producer state at start.
    pub fn for_each_batch_header(&self, mut f: impl FnMut(&BatchHeader)) -> Result<(), LogError> {
        for segment in self.segments() {
            let mut position = 0u64;
            while let Some(header) = segment.read_header_at(position)? {
                f(&header);
                position += header.total_len() as u64;
            }
        }
        Ok(())
    }

    /// Calls `f` with the header of every stored batch whose last offset is at or above
    /// `offset`, oldest first.
    pub fn for_each_batch_header_from(
        &self,
        offset: i64,
        mut f: impl FnMut(&BatchHeader),
    ) -> Result<(), LogError> {
        for segment in self.segments_from(offset) {
            let mut position = 0u64;
            while let Some(header) = segment.read_header_at(position)? {
                if header.last_offset() >= offset {
                    f(&header);
                }
                position += header.total_len() as u64;
            }
        }
        Ok(())
    }

    /// All segments, oldest first.
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.values().chain(std::iter::once(&self.active))
    }

    /// The segment that may hold `offset` and every later one.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &Segment> {
        let floor = if offset >= self.active.base_offset() {
            None
        } else {
            let key = self.sealed.range(..=offset).next_back().map(|(k, _)| *k);
            Some(key.unwrap_or(i64::MIN))
        };
        floor
            .into_iter()
            .flat_map(move |key| self.sealed.range(key..).map(|(_, s)| s))
            .chain(std::iter::once(&self.active))
    }

    /// Removes the clean-shutdown marker before the first write after `close`.
    fn ensure_writable(&mut self) -> Result<(), LogError> {
        if self.marker_on_disk {
            segment::remove_if_exists(&self.dir.join(CLEAN_SHUTDOWN_FILE))?;
            sync_dir(&self.dir)?;
            self.marker_on_disk = false;
        }
        Ok(())
    }

    /// Appends one batch (already checked by `validate_produce_batch`) at the log end offset,
    /// writing the assigned base offset and `leader_epoch` into its header. The bytes are in
    /// the kernel's page cache when this returns; they are fsynced per `flush.messages`.
    /// A `leader_epoch` above the latest one starts a new leader epoch cache entry.
    pub fn append(
        &mut self,
        batch: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let parsed = parse_header(batch)?;
        if parsed.total_len() != batch.len() {
            return Err(BatchError::LengthMismatch {
                declared: parsed.total_len(),
                actual: batch.len(),
            }
            .into());
        }
        if parsed.record_count <= 0
            || i64::from(parsed.last_offset_delta) + 1 != i64::from(parsed.record_count)
        {
            return Err(BatchError::BadRecordCount {
                count: parsed.record_count,
                last_offset_delta: parsed.last_offset_delta,
            }
            .into());
        }
        self.ensure_writable()?;
        let base_offset = self.log_end_offset();
        let last_offset = base_offset
            .checked_add(i64::from(parsed.last_offset_delta))
            .ok_or_else(|| LogError::Corrupt("offset overflow".into()))?;
        let rolled = self.should_roll(batch.len(), last_offset, now_ms);
        if rolled {
            self.roll()?;
        }
        // The epoch is recorded before the batch: a crash in between leaves an entry at the
        // log end, which `open` drops.
        self.epochs.assign(leader_epoch, base_offset)?;
        let mut header = if self.config.log_append_time {
            log_append_time_header(batch, now_ms)?
        } else {
            let mut header = [0u8; HEADER_LEN];
            header.copy_from_slice(batch.get(..HEADER_LEN).unwrap_or(&[0; HEADER_LEN]));
            header
        };
        write_offset_and_epoch(&mut header, base_offset, leader_epoch);
        let stored = parse_header(&header)?;
        let records = batch.get(HEADER_LEN..).unwrap_or_default();
        self.active.append(
            &header,
            records,
            &stored,
            self.config.index_interval_bytes,
            now_ms,
        )?;
        self.unflushed_messages = self
            .unflushed_messages
            .saturating_add(i64::from(stored.record_count));
        if self.unflushed_messages >= self.config.flush_messages {
            self.active.sync()?;
            self.unflushed_messages = 0;
            self.last_flush_ms = now_ms;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: stored.max_timestamp,
            record_count: stored.record_count,
            log_append_time: self.config.log_append_time.then_some(now_ms),
            rolled,
        })
    }

    fn should_roll(&self, batch_len: usize, last_offset: i64, now_ms: i64) -> bool {
        let active = &self.active;
        if active.is_empty() {
            return false;
        }
        let max_bytes = self.config.segment_bytes.min(MAX_SEGMENT_BYTES);
        let too_big = active.size().saturating_add(batch_len as u64) > max_bytes;
        let too_old = active
            .roll_base_ms()
            .is_some_and(|since| now_ms.saturating_sub(since) > self.config.segment_ms);
        let offsets_overflow =
            last_offset.saturating_sub(active.base_offset()) > i64::from(i32::MAX);
        too_big || too_old || offsets_overflow
    }

    /// Seals the (non-empty) active segment and starts a new one at the log end offset.
    fn roll(&mut self) -> Result<(), LogError> {
        if self.active.is_empty() {
            return Ok(());
        }
        self.active.seal()?;
        let base_offset = self.log_end_offset();
        let next = Segment::create(&self.dir, base_offset)?;
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut self.active, next);
        tracing::info!(
            dir = %self.dir.display(),
            sealed_base_offset = old.base_offset(),
            sealed_bytes = old.size(),
            new_base_offset = base_offset,
            "rolled log segment"
        );
        self.sealed.insert(old.base_offset(), old);
        // The sealed segment was fsynced; nothing appended so far is unflushed.
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Reads whole stored batches starting with the one holding `offset`, stopping before any
    /// batch whose base offset is >= `upper_bound` (the high watermark) and keeping the total
    /// within `max_bytes` — except that the first batch is always returned whole (KIP-74).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
    ) -> Result<bytes::Bytes, LogError> {
        let slices = self.read_slices(offset, max_bytes, upper_bound)?;
        let mut out = Vec::new();
        for slice in &slices {
            slice
                .read_into(&mut out)
                .map_err(LogError::io("read", &self.dir))?;
        }
        Ok(bytes::Bytes::from(out))
    }

    /// What [`Log::read`] would return, as ranges of segment files (one per segment touched)
    /// instead of bytes: only batch headers are read here, so the caller can send the data
    /// from the page cache after letting go of the log.
    pub fn read_slices(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
    ) -> Result<Vec<FileSlice>, LogError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        let mut slices = Vec::new();
        let mut total = 0u64;
        for segment in self.segments_from(offset) {
            if segment.base_offset() >= upper_bound {
                break;
            }
            let Some((position, first)) = segment.find_batch(offset)? else {
                continue;
            };
            let budget = (max_bytes as u64).saturating_sub(total);
            let budget = usize::try_from(budget).unwrap_or(usize::MAX);
            let (len, reached_end) =
                segment.span_batches(position, &first, budget, total == 0, upper_bound)?;
            if len > 0 {
                slices.push(segment.slice(position, len));
                total += len;
            }
            if !reached_end {
                break;
            }
        }
        Ok(slices)
    }

    /// `(offset, timestamp)` of the first record whose timestamp is >= `timestamp`
    /// (ListOffsets by timestamp), or `None` if there is none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in self.segments() {
            if let Some(found) = segment.find_timestamp(timestamp)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// `(offset, timestamp)` of the first record carrying the largest timestamp in the log
    /// (ListOffsets MAX_TIMESTAMP), or `None` if no record has a timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<&Segment> = None;
        for segment in self.segments() {
            let ts = segment.max_timestamp();
            if ts >= 0 && best.is_none_or(|b| ts > b.max_timestamp()) {
                best = Some(segment);
            }
        }
        let Some(segment) = best else {
            return Ok(None);
        };
        // If the batches no longer show what the time index recorded, answer from the index.
        let from_index = (
            segment.tracker.offset_of_max_timestamp,
            segment.max_timestamp(),
        );
        Ok(segment.find_max_timestamp()?.or(Some(from_index)))
    }

    /// fsyncs the active segment's data and indexes (sealed segments were synced on roll).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.active.sync()?;
        self.unflushed_messages = 0;
        self.last_flush_ms = wall_clock_ms();
        Ok(())
    }

    /// Flushes if records are unflushed and the last flush is at least `flush.ms` old.
    /// Returns whether it flushed.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if self.unflushed_messages == 0
            || now_ms.saturating_sub(self.last_flush_ms) < self.config.flush_ms
        {
            return Ok(false);
        }
        self.active.sync()?;
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms;
        Ok(true)
    }

    /// Deletes whole oldest segments by time (`retention.ms`: the segment's newest timestamp
    /// is older than that) and then by size (`retention.bytes`: while the log without its
    /// oldest segment is still at least that big), as Kafka. When every segment goes, the
    /// active one is rolled first, so one (empty) segment always remains at the log end.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionReport, LogError> {
        let mut report = RetentionReport {
            log_start_offset: self.log_start_offset(),
            ..RetentionReport::default()
        };
        if !self.config.cleanup_delete {
            return Ok(report);
        }
        self.ensure_writable()?;
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            let count = self.count_deletable(|segment| {
                now_ms.saturating_sub(segment.largest_timestamp()) > retention_ms
            });
            self.delete_oldest(count, "retention.ms", &mut report)?;
        }
        if self.config.retention_bytes >= 0 {
            let total = i64::try_from(self.size_bytes()).unwrap_or(i64::MAX);
            let mut excess = total.saturating_sub(self.config.retention_bytes);
            let count = self.count_deletable(|segment| {
                let size = i64::try_from(segment.size()).unwrap_or(i64::MAX);
                if excess.saturating_sub(size) >= 0 {
                    excess = excess.saturating_sub(size);
                    true
                } else {
                    false
                }
            });
            self.delete_oldest(count, "retention.bytes", &mut report)?;
        }
        report.log_start_offset = self.log_start_offset();
        Ok(report)
    }

    /// How many segments, oldest first, satisfy `deletable` before the first that does not.
    /// An empty active segment is never counted.
    fn count_deletable(&self, mut deletable: impl FnMut(&Segment) -> bool) -> usize {
        let active_base = self.active.base_offset();
        self.segments()
            .take_while(|s| !(s.base_offset() == active_base && s.is_empty()) && deletable(s))
            .count()
    }

    fn delete_oldest(
        &mut self,
        count: usize,
        reason: &'static str,
        report: &mut RetentionReport,
    ) -> Result<(), LogError> {
        if count == 0 {
            return Ok(());
        }
        if count > self.sealed.len() {
            self.roll()?;
        }
        for _ in 0..count {
            let Some((_, segment)) = self.sealed.pop_first() else {
                break;
            };
            let (base, size) = (segment.base_offset(), segment.size());
            segment.delete()?;
            report.deleted_segments += 1;
            report.deleted_bytes += size;
            tracing::info!(dir = %self.dir.display(), base_offset = base, bytes = size, reason, "deleted log segment");
        }
        sync_dir(&self.dir)?;
        self.epochs.truncate_from_start(self.log_start_offset())?;
        Ok(())
    }

    /// Flushes and writes the clean-shutdown marker, so the next `open` skips validating the
    /// tail. A later write through this `Log` removes the marker again.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.flush()?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(LogError::io("create", &marker))?;
        sync_dir(&self.dir)?;
        self.marker_on_disk = true;
        Ok(())
    }

    /// Removes the log's directory and everything in it.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(LogError::io("remove directory", &dir))
    }
}
