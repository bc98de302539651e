//! The log start offset set from outside the log: DeleteRecords on a leader, and a follower
//! following its leader's log start. Kafka keeps such a start in a checkpoint because it may
//! fall in the middle of a segment; here it is one small file per partition directory
//! ([`LOG_START_FILE`], Kafka's checkpoint format), read at open and written before any
//! segment below it is deleted.
//!
//! Owns moving the start up, deleting the segments wholly below it and keeping the floor
//! consistent with truncation. It never moves the start down (except when a follower's log is
//! truncated fully to a lower offset) and never past the log end; the caller checks the high
//! watermark, which the log does not know.

use std::path::Path;

use super::checkpoint::{read_entries, write_entries};
use super::{sync_dir, Log, LogError};

/// The file holding the log start offset set by DeleteRecords (or followed from the leader).
pub(super) const LOG_START_FILE: &str = "log-start-offset-checkpoint";

/// The only key of [`LOG_START_FILE`].
const KEY: &str = "log_start_offset";

/// The persisted floor of `dir`, or 0 when there is none (or it is damaged: the log start then
/// falls back to the oldest segment, which only shows more records, never fewer).
pub(super) fn load_floor(dir: &Path) -> i64 {
    let path = dir.join(LOG_START_FILE);
    if !path.exists() {
        return 0;
    }
    match read_entries(&path) {
        Ok(entries) => entries
            .into_iter()
            .find(|(_, k, _)| k == KEY)
            .map_or(0, |(_, _, offset)| offset.max(0)),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring a damaged log start checkpoint");
            0
        }
    }
}

impl Log {
    /// Moves the log start offset up to `offset` (Kafka's `maybeIncrementLogStartOffset`):
    /// records below it are no longer read, listed or replicated, and segments wholly below
    /// it are deleted (the active one is rolled first when `offset` is the log end). A lower or
    /// equal `offset` changes nothing. Above the log end (or negative) it is
    /// [`LogError::OffsetOutOfRange`]. Returns whether the start moved.
    pub fn advance_log_start(&mut self, offset: i64) -> Result<bool, LogError> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset < 0 || offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: start,
                log_end: end,
            });
        }
        if offset <= start {
            return Ok(false);
        }
        self.ensure_writable()?;
        // The floor is durable before any segment goes: a crash in between leaves more bytes
        // on disk, never a start below what a client was told.
        self.set_floor(offset)?;
        if offset == end && self.active.base_offset() < offset {
            self.roll()?;
        }
        let mut deleted = 0usize;
        loop {
            let mut bases = self.sealed.keys().copied();
            let (Some(first), next) = (bases.next(), bases.next()) else {
                break;
            };
            let next = next.unwrap_or_else(|| self.active.base_offset());
            if next > offset {
                break;
            }
            let Some(segment) = self.sealed.remove(&first) else {
                break;
            };
            let size = segment.size();
            segment.delete()?;
            deleted += 1;
            tracing::info!(dir = %self.dir.display(), base_offset = first, bytes = size,
                log_start_offset = offset, "deleted log segment below the log start");
        }
        if deleted > 0 {
            sync_dir(&self.dir)?;
        }
        self.epochs.truncate_from_start(self.log_start_offset())?;
        tracing::info!(dir = %self.dir.display(), from = start, to = offset, "moved the log start offset");
        Ok(true)
    }

    /// After a follower's log was truncated fully to start at `offset`: a floor above it would
    /// put the start past the new (empty) log, so it comes down.
    pub(super) fn lower_floor_to(&mut self, offset: i64) -> Result<(), LogError> {
        if self.start_floor > offset {
            self.set_floor(offset)?;
        }
        Ok(())
    }

    fn set_floor(&mut self, offset: i64) -> Result<(), LogError> {
        write_entries(&self.dir.join(LOG_START_FILE), [(KEY, offset)])?;
        self.start_floor = offset;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::testutil::*;
    use super::*;

    fn small_segments() -> super::super::LogConfig {
        super::super::LogConfig {
            segment_bytes: batch_len(3) * 2,
            ..config()
        }
    }

    #[test]
    fn moves_up_only_and_hides_records_below() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[3, 3, 3], NOW);
        assert!(log.advance_log_start(4).unwrap());
        assert_eq!(log.log_start_offset(), 4);
        assert!(!log.advance_log_start(2).unwrap(), "never moves down");
        assert!(!log.advance_log_start(4).unwrap());
        assert_eq!(log.log_start_offset(), 4);
        assert!(matches!(
            log.read(3, usize::MAX, 100),
            Err(LogError::OffsetOutOfRange { log_start: 4, .. })
        ));
        // Reading at the start returns the batch holding it, as Kafka does.
        assert_eq!(
            batch_ranges(&log.read(4, usize::MAX, 100).unwrap()),
            vec![(3, 5), (6, 8)]
        );
        assert!(matches!(
            log.advance_log_start(10),
            Err(LogError::OffsetOutOfRange { requested: 10, .. })
        ));
        assert!(log.advance_log_start(-1).is_err());
    }

    #[test]
    fn deletes_segments_wholly_below_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_segments()).unwrap();
        fill(&mut log, &[3, 3, 3, 3, 3], NOW);
        // Segments of two batches each: [0, 6), [6, 12), [12, 15).
        assert_eq!(log.segment_count(), 3);
        log.advance_log_start(7).unwrap();
        assert_eq!(log.segment_count(), 2, "[0, 6) is gone, [6, 12) holds 7");
        assert!(!log_file(dir.path(), 0).exists());
        assert_eq!(log.log_start_offset(), 7);
        log.close().unwrap();
        drop(log);
        let log = Log::open(dir.path(), small_segments()).unwrap();
        assert_eq!(log.log_start_offset(), 7);
        assert_eq!(log.log_end_offset(), 15);
    }

    #[test]
    fn at_the_log_end_everything_goes_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[3, 2], NOW);
        assert!(log.advance_log_start(5).unwrap());
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 5));
        assert_eq!(log.size_bytes(), 0);
        assert_eq!(log.segment_count(), 1);
        fill(&mut log, &[2], NOW);
        assert_eq!(
            batch_ranges(&log.read(5, usize::MAX, 100).unwrap()),
            vec![(5, 6)]
        );
    }

    #[test]
    fn full_truncation_below_the_floor_lowers_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[3, 3], NOW);
        log.advance_log_start(4).unwrap();
        log.truncate_fully_and_start_at(2).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 2));
        drop(log);
        let log = Log::open(dir.path(), config()).unwrap();
        assert_eq!(log.log_start_offset(), 2);
    }

    #[test]
    fn a_damaged_or_stale_checkpoint_falls_back_to_the_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[3], NOW);
        drop(log);
        std::fs::write(dir.path().join(LOG_START_FILE), "garbage").unwrap();
        assert_eq!(
            Log::open(dir.path(), config()).unwrap().log_start_offset(),
            0
        );
        write_entries(&dir.path().join(LOG_START_FILE), [(KEY, 99)]).unwrap();
        let log = Log::open(dir.path(), config()).unwrap();
        assert_eq!(log.log_start_offset(), 3, "never past the log end");
    }

    #[test]
    fn retention_keeps_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_segments()).unwrap();
        fill(&mut log, &[3, 3, 3], NOW);
        log.advance_log_start(2).unwrap();
        let report = log.apply_retention(NOW).unwrap();
        assert_eq!(report.deleted_segments, 0);
        assert_eq!(log.log_start_offset(), 2);
    }
}
