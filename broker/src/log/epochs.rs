//! The leader epoch cache of one partition (Kafka's `leader-epoch-checkpoint`): for each
//! leader epoch that wrote to the log, the first offset it wrote. Kept in memory and in the
//! partition directory as a checkpoint file (`0`, count, then `epoch start_offset` lines).
//!
//! Owns the entries, their invariants (epochs and start offsets both strictly increase), their
//! persistence, and the OffsetsForLeaderEpoch lookup. It never reads log data (`Log` rebuilds it
//! from batch headers when the file is missing or damaged) and never panics on the file's bytes.

use std::path::{Path, PathBuf};

use super::checkpoint::{self, CheckpointError};

/// File name of the cache in the partition directory, as in Kafka.
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// The first offset written in a leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The cache of one partition.
#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the cache file of `dir`. `Err(reason)` when the file is missing or damaged: the
    /// caller rebuilds the entries from the log and calls [`LeaderEpochCache::replace`].
    pub(crate) fn load(dir: &Path) -> (LeaderEpochCache, Option<String>) {
        let path = dir.join(LEADER_EPOCH_FILE);
        let mut cache = LeaderEpochCache {
            path,
            entries: Vec::new(),
        };
        let problem = match checkpoint::read_entries(&cache.path) {
            Ok(raw) => match parse_entries(raw) {
                Ok(entries) => {
                    cache.entries = entries;
                    None
                }
                Err(reason) => Some(format!("{}: {reason}", cache.path.display())),
            },
            Err(CheckpointError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some("file is missing".to_string())
            }
            Err(err) => Some(err.to_string()),
        };
        (cache, problem)
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Replaces every entry (after a rebuild) and persists them.
    pub(crate) fn replace(&mut self, entries: Vec<EpochEntry>) -> Result<(), CheckpointError> {
        self.entries = entries;
        self.persist()
    }

    /// Records that `epoch` starts at `start_offset`, if `epoch` is above the latest one
    /// (negative epochs, which mean "unknown", are ignored). Entries at or after
    /// `start_offset` are dropped first, so both columns keep increasing. Returns whether the
    /// cache changed (it was then persisted).
    pub(crate) fn assign(
        &mut self,
        epoch: i32,
        start_offset: i64,
    ) -> Result<bool, CheckpointError> {
        if epoch < 0 || self.latest().is_some_and(|l| l.epoch >= epoch) {
            return Ok(false);
        }
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.persist()?;
        Ok(true)
    }

    /// Drops entries starting at or after `end_offset` (the log was truncated there).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<bool, CheckpointError> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() == before {
            return Ok(false);
        }
        self.persist()?;
        Ok(true)
    }

    /// The log now starts at `start_offset`: entries wholly before it go, and the one in
    /// force there starts there.
    pub(crate) fn truncate_from_start(
        &mut self,
        start_offset: i64,
    ) -> Result<bool, CheckpointError> {
        let in_force = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(keep_from) = in_force.checked_sub(1) else {
            return Ok(false);
        };
        let unchanged = keep_from == 0
            && self
                .entries
                .first()
                .is_some_and(|e| e.start_offset == start_offset);
        if unchanged {
            return Ok(false);
        }
        self.entries.drain(..keep_from);
        if let Some(first) = self.entries.first_mut() {
            first.start_offset = start_offset;
        }
        self.persist()?;
        Ok(true)
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) -> Result<(), CheckpointError> {
        self.entries.clear();
        self.persist()
    }

    /// OffsetsForLeaderEpoch: the largest epoch <= `epoch` and where it ends (the start offset
    /// of the next epoch, or `log_end` for the latest); `None` when `epoch` is below the first
    /// epoch or the cache is empty.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        end_offset_for(&self.entries, epoch, log_end)
    }

    fn persist(&self) -> Result<(), CheckpointError> {
        let keys: Vec<(String, i64)> = self
            .entries
            .iter()
            .map(|e| (e.epoch.to_string(), e.start_offset))
            .collect();
        checkpoint::write_entries(&self.path, keys.iter().map(|(k, o)| (k.as_str(), *o)))
    }
}

/// See [`LeaderEpochCache::end_offset_for`]; `entries` are in increasing order.
pub(crate) fn end_offset_for(
    entries: &[EpochEntry],
    epoch: i32,
    log_end: i64,
) -> Option<(i32, i64)> {
    let after = entries.partition_point(|e| e.epoch <= epoch);
    let floor = entries.get(after.checked_sub(1)?)?;
    let end = entries.get(after).map_or(log_end, |next| next.start_offset);
    Some((floor.epoch, end))
}

/// Checks and converts the entries of a cache file.
fn parse_entries(raw: Vec<(usize, String, i64)>) -> Result<Vec<EpochEntry>, String> {
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(raw.len());
    for (line, key, start_offset) in raw {
        let epoch: i32 = key
            .parse()
            .map_err(|_| format!("line {line}: epoch {key:?} is not a number"))?;
        if epoch < 0 || start_offset < 0 {
            return Err(format!("line {line}: negative epoch or offset"));
        }
        if let Some(prev) = entries.last() {
            if epoch <= prev.epoch || start_offset <= prev.start_offset {
                return Err(format!("line {line}: entries do not increase"));
            }
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    Ok(entries)
}

/// The entries a log's batch headers imply: `(partition leader epoch, base offset)` of each
/// batch in order, keeping the first batch of each epoch above the previous one.
pub(crate) fn entries_from_batches(
    batches: impl IntoIterator<Item = (i32, i64)>,
) -> Vec<EpochEntry> {
    let mut entries: Vec<EpochEntry> = Vec::new();
    for (epoch, start_offset) in batches {
        if epoch >= 0 && entries.last().is_none_or(|l| l.epoch < epoch) {
            entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
    }
    entries
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn e(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }

    fn file(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(LEADER_EPOCH_FILE)).unwrap()
    }

    #[test]
    fn assign_keeps_increasing_entries_and_persists_them() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, problem) = LeaderEpochCache::load(dir.path());
        assert_eq!(problem.as_deref(), Some("file is missing"));
        assert!(!cache.assign(-1, 0).unwrap(), "unknown epoch ignored");
        assert!(cache.assign(1, 0).unwrap());
        assert!(!cache.assign(1, 5).unwrap(), "same epoch");
        assert!(!cache.assign(0, 7).unwrap(), "lower epoch");
        assert!(cache.assign(3, 10).unwrap());
        assert_eq!(file(dir.path()), "0\n2\n1 0\n3 10\n");
        // A higher epoch at an offset already claimed replaces the later entries.
        assert!(cache.assign(5, 10).unwrap());
        assert_eq!(cache.entries(), &[e(1, 0), e(5, 10)]);
        let (loaded, problem) = LeaderEpochCache::load(dir.path());
        assert_eq!(problem, None);
        assert_eq!(loaded.entries(), cache.entries());
    }

    #[test]
    fn truncation_from_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = LeaderEpochCache::load(dir.path());
        cache.replace(vec![e(1, 0), e(2, 10), e(4, 20)]).unwrap();
        assert!(!cache.truncate_from_end(21).unwrap());
        assert!(cache.truncate_from_end(20).unwrap());
        assert_eq!(cache.entries(), &[e(1, 0), e(2, 10)]);
        assert!(!cache.truncate_from_start(0).unwrap());
        assert!(cache.truncate_from_start(12).unwrap());
        assert_eq!(cache.entries(), &[e(2, 12)]);
        assert_eq!(file(dir.path()), "0\n1\n2 12\n");
        cache.replace(vec![e(1, 0), e(2, 10)]).unwrap();
        assert!(cache.truncate_from_start(10).unwrap());
        assert_eq!(cache.entries(), &[e(2, 10)]);
        assert!(cache.truncate_from_end(10).unwrap());
        assert!(cache.entries().is_empty());
        assert!(!cache.truncate_from_start(50).unwrap(), "nothing in force");
    }

    #[test]
    fn end_offsets_follow_offsets_for_leader_epoch() {
        let entries = [e(1, 0), e(3, 10), e(4, 25)];
        assert_eq!(
            end_offset_for(&entries, 0, 40),
            None,
            "below the first epoch"
        );
        assert_eq!(end_offset_for(&entries, 1, 40), Some((1, 10)));
        assert_eq!(end_offset_for(&entries, 2, 40), Some((1, 10)), "no epoch 2");
        assert_eq!(end_offset_for(&entries, 3, 40), Some((3, 25)));
        assert_eq!(end_offset_for(&entries, 4, 40), Some((4, 40)), "latest");
        assert_eq!(end_offset_for(&entries, 9, 40), Some((4, 40)));
        assert_eq!(end_offset_for(&[], 1, 40), None);
    }

    #[test]
    fn damaged_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "0\n2\n1 0\n1 5\n",
            "0\n2\n1 5\n2 5\n",
            "0\n1\nx 5\n",
            "0\n1\n-1 5\n",
            "0\n2\n1 0\n",
            "garbage",
        ] {
            std::fs::write(dir.path().join(LEADER_EPOCH_FILE), text).unwrap();
            let (cache, problem) = LeaderEpochCache::load(dir.path());
            assert!(problem.is_some(), "{text:?} accepted");
            assert!(cache.entries().is_empty());
        }
    }

    #[test]
    fn entries_from_batch_headers() {
        let batches = [(-1, 0), (0, 2), (0, 5), (2, 9), (1, 12), (2, 14), (5, 20)];
        assert_eq!(
            entries_from_batches(batches),
            vec![e(0, 2), e(2, 9), e(5, 20)]
        );
    }
}
