//! What partition replication needs from a log (Kafka's ISR model): leader epoch lookups
//! (OffsetsForLeaderEpoch), truncation to an offset after a leader change, truncating fully to
//! start again at an offset, and appending batches copied from the leader's log as they are.
//!
//! Owns the order of file operations that keeps each of these crash-consistent (a crash leaves
//! a prefix of the old log, or the old log with the new empty segment after it) and keeps
//! in-flight reads of truncated data safe. It never decides whether to truncate or from whom to
//! copy (the replication layer does), never rewrites a batch it appends here, and never panics
//! on bytes received from the network or read from disk.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{BatchError, BatchHeader, BatchIter, HEADER_LEN};
use super::epochs::{self, EpochEntry};
use super::segment::Segment;
use super::{compact, recovery, sync_dir, wall_clock_ms, AppendInfo, Log, LogError};

impl Log {
    /// The leader epoch cache, oldest first: the first offset written in each epoch.
    pub fn epoch_entries(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// A new leader records that its epoch starts at the log end offset (Kafka does the same
    /// on becoming leader), so epoch lookups by followers know the epoch before its first
    /// batch. An epoch not above the latest is ignored.
    pub fn start_leader_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        let end = self.log_end_offset();
        self.epochs.assign(epoch, end)?;
        Ok(())
    }

    /// The latest leader epoch that wrote to the log, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest().map(|e| e.epoch)
    }

    /// OffsetsForLeaderEpoch: the largest epoch <= `epoch` that wrote to this log and its end
    /// offset (the start offset of the next epoch, or the log end offset for the latest).
    /// `None` (Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET, -1/-1) when `epoch` is below
    /// the first epoch in the cache or the cache is empty.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The answer Kafka's leader gives in an OffsetsForLeaderEpoch response, as
    /// (leader epoch, end offset) with (-1, -1) for UNDEFINED: the latest epoch answers the log
    /// end offset; a requested epoch above the latest is UNDEFINED; one below the first epoch
    /// answers itself with the first epoch's start offset (unlike
    /// [`Log::end_offset_for_epoch`], which leaves those two cases to the caller).
    pub fn offsets_for_leader_epoch(&self, epoch: i32) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (-1, -1);
        let entries = self.epoch_entries();
        if epoch < 0 {
            return UNDEFINED;
        }
        if entries.last().is_some_and(|e| e.epoch == epoch) {
            return (epoch, self.log_end_offset());
        }
        let Some(higher) = entries.iter().find(|e| e.epoch > epoch) else {
            return UNDEFINED;
        };
        match entries.iter().rev().find(|e| e.epoch <= epoch) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (epoch, higher.start_offset),
        }
    }

    /// Removes every batch at or after `offset`. A batch that straddles `offset` goes whole:
    /// the new log end offset is its base offset (Kafka truncates at batch boundaries); when
    /// `offset` falls in a gap, the log ends after the last batch kept.
    /// At or above the log end no batch goes, but leader epochs that start there do: an epoch
    /// this broker began as leader without appending to it must not stay its latest one, or a
    /// follower would ask the new leader about an epoch that leader never had, forever.
    /// Below the log start it is [`Log::truncate_fully_and_start_at`]. Returns whether anything
    /// was removed.
    ///
    /// Later segments are deleted newest first, then the segment holding `offset` is cut and
    /// becomes the active one; it is fsynced, as is the directory. Fetch replies already holding
    /// slices of the cut file keep the old bytes (the file is copied instead of cut in place
    /// while such slices exist).
    pub fn truncate_to(&mut self, offset: i64) -> Result<bool, LogError> {
        if offset >= self.log_end_offset() {
            return Ok(self.epochs.truncate_from_end(offset)?);
        }
        if offset < self.log_start_offset() {
            self.truncate_fully_and_start_at(offset)?;
            return Ok(true);
        }
        self.ensure_writable()?;
        self.truncate_within(offset)?;
        Ok(true)
    }

    /// Empties the log and starts it again, empty, at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): used when a follower's log has nothing in common with the
    /// leader's. Clears the leader epoch cache.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset(),
                log_end: self.log_end_offset(),
            });
        }
        self.ensure_writable()?;
        // 1. Cut the log down to at most `offset` (or to one empty segment at its start when
        //    `offset` is below it): a crash leaves a prefix of the old log.
        let end = offset.max(self.log_start_offset());
        if end < self.log_end_offset() {
            self.truncate_within(end)?;
        }
        // 2. Start the new active segment at `offset`; the old one is sealed (or deleted when
        //    empty). No segment can have that base: every base is now below it, or the only
        //    segment is empty and above it.
        if self.active.base_offset() != offset {
            let next = Segment::create(&self.dir, offset)?;
            sync_dir(&self.dir)?;
            let old = std::mem::replace(&mut self.active, next);
            if old.is_empty() {
                old.delete()?;
            } else if old.base_offset() < offset {
                let mut old = old;
                old.seal()?;
                self.sealed.insert(old.base_offset(), old);
            } else {
                return Err(LogError::Corrupt(format!(
                    "{}: segment {} still holds data above {offset}",
                    self.dir.display(),
                    old.base_offset()
                )));
            }
        }
        // 3. Delete the older segments, oldest first (a crash leaves a suffix, like retention).
        while let Some((base, segment)) = self.sealed.pop_first() {
            segment.delete()?;
            tracing::info!(dir = %self.dir.display(), base_offset = base, "deleted log segment (truncated fully)");
        }
        sync_dir(&self.dir)?;
        self.unflushed_messages = 0;
        self.epochs.clear()?;
        self.lower_floor_to(offset)?;
        self.reset_cleaner_to(offset, true)?;
        tracing::info!(dir = %self.dir.display(), offset, "truncated log fully");
        Ok(())
    }

    /// Appends batches copied from the leader's log as they are (base offsets and partition
    /// leader epochs already set). Every batch must parse, pass its CRC32C and follow the
    /// previous one; the first must start at or above the log end offset (a jump is the gap a
    /// compacted leader has too; an overlap is [`LogError::OffsetMismatch`]). Every batch is
    /// checked before the first is written, so nothing is appended when any is refused (an
    /// I/O error midway keeps the batches already written). Rolls as `append` does; a new
    /// segment starts at the base offset of the batch that rolled it. Returns the span
    /// appended.
    pub fn append_replicated(&mut self, batches: &[u8]) -> Result<AppendInfo, LogError> {
        let headers = check_replicated(batches, self.log_end_offset())?;
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: 0,
            }
            .into());
        };
        let mut info = AppendInfo {
            base_offset: first.1.base_offset,
            last_offset: last.1.last_offset(),
            max_timestamp: -1,
            record_count: 0,
            log_append_time: None,
            rolled: false,
        };
        self.ensure_writable()?;
        let now_ms = wall_clock_ms();
        for (position, header) in &headers {
            let batch = batches
                .get(*position..position.saturating_add(header.total_len()))
                .ok_or_else(|| LogError::Corrupt("replicated batch out of bounds".into()))?;
            if self.roll_for_replicated(header, batch.len(), now_ms)? {
                info.rolled = true;
            }
            self.epochs
                .assign(header.partition_leader_epoch, header.base_offset)?;
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(batch.get(..HEADER_LEN).unwrap_or(&[0; HEADER_LEN]));
            let records = batch.get(HEADER_LEN..).unwrap_or_default();
            let interval = self.config.index_interval_bytes;
            self.active
                .append(&head, records, header, interval, now_ms)?;
            info.max_timestamp = info.max_timestamp.max(header.max_timestamp);
            info.record_count = info.record_count.saturating_add(header.record_count);
            self.unflushed_messages = self
                .unflushed_messages
                .saturating_add(i64::from(header.record_count.max(0)));
        }
        if self.unflushed_messages >= self.config.flush_messages {
            self.active.sync()?;
            self.unflushed_messages = 0;
            self.last_flush_ms = now_ms;
        }
        Ok(info)
    }

    /// Rolls before a replicated batch when `append` would, or when the batch's offsets would
    /// not fit the active segment's 32-bit relative offsets. Returns whether it rolled.
    fn roll_for_replicated(
        &mut self,
        header: &BatchHeader,
        len: usize,
        now_ms: i64,
    ) -> Result<bool, LogError> {
        let base = header.base_offset;
        let too_far = header
            .last_offset()
            .saturating_sub(self.active.base_offset())
            > i64::from(i32::MAX);
        if self.active.is_empty() {
            if !too_far || self.active.base_offset() == base {
                return Ok(false);
            }
            // An empty active segment too far below the batch is replaced by one at its base.
            let next = Segment::create(&self.dir, base)?;
            let old = std::mem::replace(&mut self.active, next);
            old.delete()?;
            sync_dir(&self.dir)?;
            return Ok(true);
        }
        if !(too_far || self.should_roll(len, header.last_offset(), now_ms)) {
            return Ok(false);
        }
        self.active.seal()?;
        let next = Segment::create(&self.dir, base)?;
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut self.active, next);
        tracing::info!(
            dir = %self.dir.display(),
            sealed_base_offset = old.base_offset(),
            new_base_offset = base,
            "rolled log segment for replicated batches"
        );
        self.sealed.insert(old.base_offset(), old);
        self.unflushed_messages = 0;
        Ok(true)
    }

    /// Truncates at `offset`, which is within `[log start, log end)`.
    fn truncate_within(&mut self, offset: i64) -> Result<(), LogError> {
        let mut found = None;
        for segment in self.segments_from(offset) {
            if let Some((position, header)) = segment.find_batch(offset)? {
                found = Some((segment.base_offset(), position, header.base_offset));
                break;
            }
        }
        let (mut keep_base, mut position, cut) = found.ok_or_else(|| {
            LogError::Corrupt(format!(
                "{}: no batch holds offset {offset} below the log end {}",
                self.dir.display(),
                self.log_end_offset()
            ))
        })?;
        // A segment that would be left empty goes too, unless it is the first: the log then
        // ends where its last kept batch ends, whatever gap followed it.
        if position == 0 {
            if let Some((base, segment)) = self.sealed.range(..keep_base).next_back() {
                (keep_base, position) = (*base, segment.size());
            }
        }
        // Newest first, so that a crash leaves a prefix of the log.
        if self.active.base_offset() != keep_base {
            let kept = self.sealed.remove(&keep_base).ok_or_else(|| {
                LogError::Corrupt(format!("segment {keep_base} vanished during truncation"))
            })?;
            let old_active = std::mem::replace(&mut self.active, kept);
            old_active.delete()?;
        }
        let later: Vec<i64> = self
            .sealed
            .range(keep_base.saturating_add(1)..)
            .map(|(base, _)| *base)
            .collect();
        for base in later.into_iter().rev() {
            if let Some(segment) = self.sealed.remove(&base) {
                segment.delete()?;
            }
        }
        self.cut_active(position, cut)?;
        sync_dir(&self.dir)?;
        self.unflushed_messages = 0;
        let end = self.log_end_offset();
        self.epochs.truncate_from_end(end)?;
        self.reset_cleaner_to(end, false)?;
        tracing::info!(
            dir = %self.dir.display(),
            offset,
            log_end_offset = end,
            "truncated log"
        );
        Ok(())
    }

    /// Cuts the active segment's log file at `position` (where the batch at `cut` starts, or
    /// the end of the file), drops index entries at or after `cut`, and reloads the segment
    /// from its files.
    fn cut_active(&mut self, position: u64, cut: i64) -> Result<(), LogError> {
        let segment = &mut self.active;
        let path = segment.log_path.clone();
        if position >= segment.size() {
            // Nothing to cut: the segment only becomes the active one again.
        } else if Arc::strong_count(&segment.file) > 1 {
            // Fetch replies hold slices of this file: leave them the old inode.
            copy_prefix(&path, position)?;
        } else {
            segment
                .file
                .set_len(position)
                .and_then(|()| segment.file.sync_all())
                .map_err(LogError::io("truncate", &path))?;
        }
        let offsets: Vec<_> = segment
            .offset_index
            .entries()
            .iter()
            .filter(|e| e.offset < cut)
            .copied()
            .collect();
        segment.offset_index.replace_all(offsets)?;
        segment.offset_index.sync()?;
        let times: Vec<_> = segment
            .time_index
            .entries()
            .iter()
            .filter(|e| e.offset < cut)
            .copied()
            .collect();
        segment.time_index.replace_all(times)?;
        segment.time_index.sync()?;
        let roll_base_ms = segment.roll_base_ms;
        let base = segment.base_offset;
        let mut reloaded = recovery::open_segment(
            &self.dir,
            base,
            None,
            false,
            self.config.index_interval_bytes,
        )?;
        reloaded.roll_base_ms = if reloaded.is_empty() {
            None
        } else {
            roll_base_ms
        };
        self.active = reloaded;
        Ok(())
    }

    /// After a truncation to `end`: the cleaner must not believe offsets at or above `end`
    /// were cleaned. With `reset`, the cleaner state starts over at `end` (the log is empty).
    fn reset_cleaner_to(&mut self, end: i64, reset: bool) -> Result<(), LogError> {
        if !reset && self.cleaner.first_dirty_offset <= end {
            return Ok(());
        }
        self.cleaner.first_dirty_offset = end;
        if reset {
            self.cleaner.tombstone_expiry = None;
        }
        if compact::swap::read_checkpoint(&self.dir).is_some() {
            compact::swap::write_checkpoint(&self.dir, end)?;
        }
        Ok(())
    }

    /// At open: rebuilds the epoch cache from the batch headers when its file is missing or
    /// damaged (`problem`), then drops what the log no longer holds (a crash between a
    /// truncation or retention and the cache update).
    pub(super) fn reconcile_epochs(&mut self, problem: Option<String>) -> Result<(), LogError> {
        if let Some(problem) = problem {
            let mut batches = Vec::new();
            self.for_each_batch_header(|h| {
                batches.push((h.partition_leader_epoch, h.base_offset))
            })?;
            let entries = epochs::entries_from_batches(batches);
            tracing::warn!(
                dir = %self.dir.display(), %problem, epochs = entries.len(),
                "rebuilt the leader epoch cache from the log"
            );
            self.epochs.replace(entries)?;
        }
        // An entry at the log end itself stays: retention that empties the log leaves the
        // latest epoch starting there (Kafka drops it at load; keeping it makes a reopen
        // answer as before). Entries past the log end are a crash before their batch landed.
        self.epochs
            .truncate_from_end(self.log_end_offset().saturating_add(1))?;
        self.epochs.truncate_from_start(self.log_start_offset())?;
        Ok(())
    }
}

/// Replaces the log file at `path` by a copy of its first `len` bytes (temp file, fsync,
/// rename), so that open handles keep the old content.
fn copy_prefix(path: &Path, len: u64) -> Result<(), LogError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let copy = || -> io::Result<()> {
        let src = File::open(path)?;
        let mut dst = File::create(&tmp)?;
        let copied = io::copy(&mut src.take(len), &mut dst)?;
        if copied != len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        dst.sync_all()
    };
    copy().map_err(LogError::io("copy", path))?;
    std::fs::rename(&tmp, path).map_err(LogError::io("rename", &tmp))
}

/// Parses and checks replicated batches: whole, CRC intact, offsets increasing from at least
/// `log_end`. Returns each batch's position in `batches` and header.
fn check_replicated(batches: &[u8], log_end: i64) -> Result<Vec<(usize, BatchHeader)>, LogError> {
    let mut out: Vec<(usize, BatchHeader)> = Vec::new();
    let mut expected = log_end;
    for item in BatchIter::new(batches).verify_crc(true) {
        let (position, header) = item?;
        if header.last_offset_delta < 0 || header.record_count < 0 {
            return Err(BatchError::BadRecordCount {
                count: header.record_count,
                last_offset_delta: header.last_offset_delta,
            }
            .into());
        }
        if header.base_offset < expected {
            return Err(LogError::OffsetMismatch {
                expected,
                got: header.base_offset,
            });
        }
        expected = header
            .last_offset()
            .checked_add(1)
            .ok_or_else(|| LogError::Corrupt("offset overflow".into()))?;
        out.push((position, header));
    }
    Ok(out)
}
