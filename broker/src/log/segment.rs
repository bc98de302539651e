//! One segment of a partition log: the `{base_offset:020}.log` file of stored batches and its
//! `.index` / `.timeindex` files, plus the segment's summary (size, next offset, max timestamp).
//!
//! Owns appends (one vectored, unbuffered write per batch, rolled back on failure), positional
//! reads that need only `&self`, index maintenance and offset/timestamp lookups inside the
//! segment. It never decides when to roll, flush or delete a segment; `Log` does. Bytes read
//! back from disk are parsed with bounds checks; damage surfaces as `LogError::Corrupt`.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::batch::{parse_header, BatchHeader, HEADER_LEN};
use super::index::{IndexFile, IndexTracker, OffsetEntry, TimeEntry};
use super::records::{decompress, RecordWalker};
use super::slice::FileSlice;
use super::LogError;

pub(crate) const LOG_EXT: &str = "log";
pub(crate) const INDEX_EXT: &str = "index";
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";

/// `{dir}/{base_offset:020}.{ext}`, Kafka's segment file naming.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Opens a log file for positional reads and end-of-file appends.
pub(crate) fn open_log_file(path: &Path, create_new: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(create_new)
        .open(path)
        .map_err(LogError::io("open", path))
}

/// Writes `head` then `tail` with as few vectored writes as the kernel allows.
fn write_all_two(mut file: &File, head: &[u8], tail: &[u8]) -> io::Result<()> {
    let (mut head, mut tail) = (head, tail);
    while !head.is_empty() || !tail.is_empty() {
        let written = if head.is_empty() {
            file.write(tail)
        } else {
            file.write_vectored(&[IoSlice::new(head), IoSlice::new(tail)])
        };
        let n = match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let from_head = n.min(head.len());
        head = head.get(from_head..).unwrap_or_default();
        tail = tail.get(n - from_head..).unwrap_or_default();
    }
    Ok(())
}

/// A segment's state. Fields are shared with `recovery`, which assembles loaded segments.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(super) base_offset: i64,
    pub(super) log_path: PathBuf,
    /// Shared with in-flight fetch replies, which send ranges of it after the lock is gone.
    pub(super) file: Arc<File>,
    /// Bytes of whole batches in the log file (the file is never longer after recovery).
    pub(super) size: u64,
    pub(super) offset_index: IndexFile<OffsetEntry>,
    pub(super) time_index: IndexFile<TimeEntry>,
    /// Offset after the last batch (the base offset when empty).
    pub(super) next_offset: i64,
    pub(super) tracker: IndexTracker,
    /// Wall clock of the first append (or of the file's creation for a loaded segment);
    /// `segment.ms` counts from here.
    pub(super) roll_base_ms: Option<i64>,
}

impl Segment {
    /// Creates the empty files of a new segment. Fails if the log file already exists.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let log_path = segment_path(dir, base_offset, LOG_EXT);
        let file = open_log_file(&log_path, true)?;
        let offset_index =
            IndexFile::create(segment_path(dir, base_offset, INDEX_EXT), base_offset)?;
        let time_index =
            IndexFile::create(segment_path(dir, base_offset, TIME_INDEX_EXT), base_offset)?;
        Ok(Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            size: 0,
            offset_index,
            time_index,
            next_offset: base_offset,
            tracker: IndexTracker::new(base_offset),
            roll_base_ms: None,
        })
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub(crate) fn roll_base_ms(&self) -> Option<i64> {
        self.roll_base_ms
    }

    /// Largest batch max timestamp in the segment (-1 when none).
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.tracker.max_timestamp
    }

    /// The timestamp retention compares against: the max timestamp, or the file's
    /// modification time when no batch carries one (as Kafka).
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.tracker.max_timestamp >= 0 {
            return self.tracker.max_timestamp;
        }
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(-1)
    }

    /// Appends one batch: `header` is its (already patched) 61-byte header and `records` the
    /// rest, exactly as received. The bytes are in the kernel when this returns.
    pub(crate) fn append(
        &mut self,
        header: &[u8; HEADER_LEN],
        records: &[u8],
        parsed: &BatchHeader,
        index_interval: u32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let position = u32::try_from(self.size).map_err(|_| {
            LogError::Corrupt(format!(
                "{}: segment too large to index",
                self.log_path.display()
            ))
        })?;
        if let Err(err) = write_all_two(&self.file, header, records) {
            // Never leave half a batch behind: later appends would follow the garbage.
            let _ = self.file.set_len(self.size);
            return Err(LogError::io("append to", &self.log_path)(err));
        }
        self.size += (HEADER_LEN + records.len()) as u64;
        self.next_offset = parsed.last_offset().saturating_add(1);
        self.roll_base_ms.get_or_insert(now_ms);
        let (offset_entry, time_entry) = self.tracker.observe(position, parsed, index_interval);
        // Index entries are hints: a failed index write costs lookup time, not data, so it
        // must not fail an append whose batch is already in the log.
        if let Some(entry) = offset_entry {
            if let Err(err) = self.offset_index.append(entry) {
                tracing::warn!(error = %err, "could not append offset index entry");
            }
        }
        if let Some(entry) = time_entry {
            if let Err(err) = self.time_index.append(entry) {
                tracing::warn!(error = %err, "could not append time index entry");
            }
        }
        Ok(())
    }

    /// Reads exactly `len` bytes at `position`.
    pub(crate) fn read_at(&self, position: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(LogError::io("read", &self.log_path))?;
        Ok(buf)
    }

    fn corrupt(&self, position: u64, what: impl std::fmt::Display) -> LogError {
        LogError::Corrupt(format!(
            "{} at position {position}: {what}",
            self.log_path.display()
        ))
    }

    /// The header of the batch at `position`, or `None` at the end of the segment.
    pub(crate) fn read_header_at(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        let available = self.size.saturating_sub(position);
        if available == 0 {
            return Ok(None);
        }
        let len = available.min(HEADER_LEN as u64) as usize;
        let buf = self.read_at(position, len)?;
        let header = parse_header(&buf).map_err(|e| self.corrupt(position, e))?;
        if header.total_len() as u64 > available {
            return Err(self.corrupt(position, "batch runs past the end of the segment"));
        }
        Ok(Some(header))
    }

    /// The first batch whose last offset is >= `offset`: position and header.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let mut position = self
            .offset_index
            .lookup(offset)
            .map_or(0, |e| u64::from(e.position));
        while let Some(header) = self.read_header_at(position)? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.total_len() as u64;
        }
        Ok(None)
    }

    /// The length of the run of whole batches from `position` (where `first` starts) whose
    /// base offsets are below `upper_bound`, within `budget` bytes — except that the first
    /// batch counts whole regardless of size when `take_first` is set. Returns the length and
    /// whether the run reached the end of the segment.
    ///
    /// Only batch headers are read: the offset index finds the last indexed batch start
    /// inside the budget, then headers are walked from there.
    pub(crate) fn span_batches(
        &self,
        position: u64,
        first: &BatchHeader,
        budget: usize,
        take_first: bool,
        upper_bound: i64,
    ) -> Result<(u64, bool), LogError> {
        let first_len = first.total_len() as u64;
        if first.base_offset >= upper_bound || (!take_first && first_len > budget as u64) {
            return Ok((0, false));
        }
        let limit = position.saturating_add((budget as u64).max(first_len));
        if limit >= self.size && self.next_offset <= upper_bound {
            return Ok((self.size - position, true));
        }
        // Start walking at the last indexed batch that begins within the limit.
        let mut end = position + first_len;
        let entries = self.offset_index.entries();
        let idx = entries.partition_point(|e| u64::from(e.position) <= limit);
        if let Some(entry) = idx.checked_sub(1).and_then(|i| entries.get(i)) {
            if u64::from(entry.position) > end && entry.offset < upper_bound {
                end = u64::from(entry.position);
            }
        }
        while end < self.size {
            let header = match self.read_header_at(end) {
                Ok(Some(header)) => header,
                Ok(None) => break,
                // Damage after readable batches ends the run; the next read reports it.
                Err(_) => return Ok((end - position, false)),
            };
            let next = end + header.total_len() as u64;
            if header.base_offset >= upper_bound || next > limit {
                return Ok((end - position, false));
            }
            end = next;
        }
        Ok((end - position, end >= self.size))
    }

    /// A shareable handle on `len` bytes of the log file at `position`.
    pub(crate) fn slice(&self, position: u64, len: u64) -> FileSlice {
        FileSlice {
            file: Arc::clone(&self.file),
            position,
            len,
        }
    }

    /// Visits batch headers from `position` to the end until `visit` returns a value.
    fn scan_from<T>(
        &self,
        mut position: u64,
        mut visit: impl FnMut(u64, &BatchHeader) -> Result<Option<T>, LogError>,
    ) -> Result<Option<T>, LogError> {
        while let Some(header) = self.read_header_at(position)? {
            if let Some(found) = visit(position, &header)? {
                return Ok(Some(found));
            }
            position += header.total_len() as u64;
        }
        Ok(None)
    }

    /// `(offset, timestamp)` of the first record with timestamp >= `timestamp`.
    pub(crate) fn find_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        if self.tracker.max_timestamp < timestamp {
            return Ok(None);
        }
        // Every batch before the one a time entry points at has a lower max timestamp.
        let start_offset = self
            .time_index
            .lookup(timestamp)
            .map_or(self.base_offset, |e| e.offset);
        let start = self
            .offset_index
            .lookup(start_offset)
            .map_or(0, |e| u64::from(e.position));
        self.scan_from(start, |position, header| {
            if header.max_timestamp < timestamp {
                return Ok(None);
            }
            self.first_record_where(position, header, |t| t >= timestamp)
        })
    }

    /// `(offset, timestamp)` of the first record carrying the segment's max timestamp.
    pub(crate) fn find_max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let max = self.tracker.max_timestamp;
        let start = self
            .offset_index
            .lookup(self.tracker.offset_of_max_timestamp)
            .map_or(0, |e| u64::from(e.position));
        self.scan_from(start, |position, header| {
            if header.max_timestamp != max {
                return Ok(None);
            }
            self.first_record_where(position, header, |t| t == max)
        })
    }

    /// The first record of the batch at `position` whose timestamp satisfies `wanted`.
    ///
    /// Compressed batches are decompressed (kafka-protocol's codecs) and walked, so the
    /// answer is the exact record, as Kafka. If a stored batch cannot be decompressed or its
    /// records do not parse (the broker does not decompress on produce, so a producer can
    /// store such a batch), this falls back to the batch's base offset with its max timestamp.
    fn first_record_where(
        &self,
        position: u64,
        header: &BatchHeader,
        wanted: impl Fn(i64) -> bool,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let fallback =
            wanted(header.max_timestamp).then_some((header.base_offset, header.max_timestamp));
        if header.timestamp_type_is_log_append() {
            // Every record of a LogAppendTime batch carries the batch's max timestamp.
            return Ok(fallback);
        }
        let batch = self.read_at(position, header.total_len())?;
        let section = batch.get(HEADER_LEN..).unwrap_or_default();
        let records: Cow<'_, [u8]> = if header.compression() == 0 {
            Cow::Borrowed(section)
        } else {
            match decompress(header.compression(), section) {
                Ok(bytes) => Cow::Owned(bytes.to_vec()),
                Err(reason) => {
                    tracing::warn!(
                        segment = %self.log_path.display(), position, %reason,
                        "cannot decompress stored batch; using its max timestamp"
                    );
                    return Ok(fallback);
                }
            }
        };
        for record in RecordWalker::new(&records, header.record_count) {
            let Ok(record) = record else {
                return Ok(fallback);
            };
            let ts = header.base_timestamp.saturating_add(record.timestamp_delta);
            if wanted(ts) {
                let offset = header
                    .base_offset
                    .saturating_add(i64::from(record.offset_delta));
                return Ok(Some((offset, ts)));
            }
        }
        Ok(None)
    }

    /// Adds the final time index entry (so a reload knows the max timestamp) and syncs.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if let Some(entry) = self.tracker.time_entry() {
            self.time_index.append(entry)?;
        }
        self.sync()
    }

    /// fsyncs the log file and both indexes.
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(LogError::io("fsync", &self.log_path))?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Removes the segment's files: the log first, so a crash midway leaves only orphan
    /// indexes, which recovery removes.
    pub(crate) fn delete(self) -> Result<(), LogError> {
        let Segment {
            log_path,
            file,
            offset_index,
            time_index,
            ..
        } = self;
        drop(file);
        remove_if_exists(&log_path)?;
        let index_path = offset_index.path().to_path_buf();
        let time_path = time_index.path().to_path_buf();
        drop(offset_index);
        drop(time_index);
        remove_if_exists(&index_path)?;
        remove_if_exists(&time_path)
    }
}

/// Removes a file; a file that is already gone is not an error.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("remove", path)(e)),
    }
}
