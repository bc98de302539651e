//! Putting cleaned segments in place of the old ones, crash-safely, and the cleaner checkpoint.
//!
//! Protocol, per cleaning pass (all in the partition directory):
//! 1. each cleaned segment is written as `{base}.log.cleaned` + `.index.cleaned` +
//!    `.timeindex.cleaned` and fsynced ([`CleanedWriter`]); a crash here leaves only
//!    `.cleaned` files, which recovery removes: the old segments are untouched;
//! 2. the swap manifest `cleaner-swap` (new base and the old bases it replaces, per cleaned
//!    segment) is written to a temp file, fsynced and renamed into place: the commit point;
//! 3. the old segments' files are removed (those whose base a cleaned segment reuses are
//!    replaced by the rename instead), then each `.cleaned` file is renamed to its final name,
//!    indexes before the log;
//! 4. the manifest is removed.
//!
//! [`recover`] runs before a log is opened: with a manifest present it redoes step 3 (every
//! operation is idempotent) and 4, so a crash at any point after the commit rolls forward.
//! Before the commit the old segments are whole and the `.cleaned` files are discarded.
//! This module never decides what to keep; it only moves files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::log::batch::{parse_header, HEADER_LEN};
use crate::log::index::{IndexEntry, IndexFile, IndexTracker, OffsetEntry, TimeEntry};
use crate::log::segment::{remove_if_exists, segment_path, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
use crate::log::{sync_dir, LogError};

/// The swap manifest: present only between the commit and the end of a swap.
pub(crate) const MANIFEST_FILE: &str = "cleaner-swap";
/// The first offset not yet cleaned (the start of the dirty section).
pub(crate) const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
const CLEANED: &str = "cleaned";
const MANIFEST_HEADER: &str = "samsa-cleaner-swap 1";
const CHECKPOINT_VERSION: &str = "0";

/// Extensions of a segment's files, in the order a swap renames them (the log last).
const EXTS: [&str; 3] = [INDEX_EXT, TIME_INDEX_EXT, LOG_EXT];

fn cleaned_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    segment_path(dir, base, &format!("{ext}.{CLEANED}"))
}

/// One cleaned segment and the old segments it replaces (oldest first; the first has the same
/// base offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SwapGroup {
    pub(crate) new_base: i64,
    pub(crate) old_bases: Vec<i64>,
}

/// Writes one cleaned segment to `.cleaned` files, building its indexes as appends do.
pub(crate) struct CleanedWriter {
    dir: PathBuf,
    base: i64,
    log_path: PathBuf,
    file: BufWriter<File>,
    size: u64,
    tracker: IndexTracker,
    index_interval: u32,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

impl CleanedWriter {
    pub(crate) fn create(dir: &Path, base: i64, index_interval: u32) -> Result<Self, LogError> {
        let log_path = cleaned_path(dir, base, LOG_EXT);
        let file = File::create(&log_path).map_err(LogError::io("create", &log_path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            base,
            log_path,
            file: BufWriter::with_capacity(1 << 20, file),
            size: 0,
            tracker: IndexTracker::new(base),
            index_interval,
            offsets: Vec::new(),
            times: Vec::new(),
        })
    }

    /// Appends one whole batch.
    pub(crate) fn append(&mut self, batch: &[u8]) -> Result<(), LogError> {
        let header = parse_header(batch)?;
        if batch.len() < HEADER_LEN || header.total_len() != batch.len() {
            return Err(LogError::Corrupt(format!(
                "{}: cleaned batch length mismatch",
                self.log_path.display()
            )));
        }
        let position = u32::try_from(self.size)
            .ok()
            .filter(|_| header.last_offset() - self.base <= i64::from(i32::MAX))
            .ok_or_else(|| {
                LogError::Corrupt(format!("{}: segment too large", self.log_path.display()))
            })?;
        self.file
            .write_all(batch)
            .map_err(LogError::io("write", &self.log_path))?;
        let (offset_entry, time_entry) =
            self.tracker.observe(position, &header, self.index_interval);
        self.offsets.extend(offset_entry);
        self.times.extend(time_entry);
        self.size += batch.len() as u64;
        Ok(())
    }

    /// Flushes and fsyncs the log file and writes both indexes (with the sealing time entry).
    pub(crate) fn finish(mut self) -> Result<u64, LogError> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| LogError::io("flush", &self.log_path)(e.into_error()))?;
        file.sync_all()
            .map_err(LogError::io("fsync", &self.log_path))?;
        self.times.extend(self.tracker.time_entry());
        write_index(&self.dir, self.base, INDEX_EXT, self.offsets)?;
        write_index(&self.dir, self.base, TIME_INDEX_EXT, self.times)?;
        Ok(self.size)
    }
}

/// Writes and fsyncs a cleaned index file holding `entries`.
fn write_index<E: IndexEntry>(
    dir: &Path,
    base: i64,
    ext: &str,
    entries: Vec<E>,
) -> Result<(), LogError> {
    let mut index = IndexFile::<E>::create(cleaned_path(dir, base, ext), base)?;
    index.replace_all(entries)?;
    index.sync()
}

/// Removes the `.cleaned` files of `groups` (an aborted pass).
pub(crate) fn discard(dir: &Path, groups: &[SwapGroup]) {
    for g in groups {
        for ext in EXTS {
            let _ = remove_if_exists(&cleaned_path(dir, g.new_base, ext));
        }
    }
}

fn encode_manifest(groups: &[SwapGroup]) -> String {
    let mut text = format!("{MANIFEST_HEADER}\n");
    for g in groups {
        let olds: Vec<String> = g.old_bases.iter().map(i64::to_string).collect();
        text.push_str(&format!("{} {}\n", g.new_base, olds.join(" ")));
    }
    text
}

fn decode_manifest(text: &str) -> Option<Vec<SwapGroup>> {
    let mut lines = text.lines();
    if lines.next()? != MANIFEST_HEADER {
        return None;
    }
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut numbers = line.split(' ').map(|n| n.parse::<i64>().ok());
            let new_base = numbers.next()??;
            let old_bases = numbers.collect::<Option<Vec<i64>>>()?;
            Some(SwapGroup {
                new_base,
                old_bases,
            })
        })
        .collect()
}

/// Writes `name` in `dir` atomically: temp file, fsync, rename, fsync of the directory.
fn write_atomic(dir: &Path, name: &str, text: &str) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .map_err(LogError::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(LogError::io("rename", &tmp))?;
    sync_dir(dir)
}

/// Step 2: makes the swap durable. From here on it completes, even after a crash.
pub(crate) fn commit(dir: &Path, groups: &[SwapGroup]) -> Result<(), LogError> {
    sync_dir(dir)?;
    write_atomic(dir, MANIFEST_FILE, &encode_manifest(groups))
}

/// The file operations of steps 3 and 4, in order.
fn swap_steps(dir: &Path, groups: &[SwapGroup]) -> Vec<SwapStep> {
    let mut steps = Vec::new();
    for g in groups {
        for &old in g.old_bases.iter().filter(|&&b| b != g.new_base) {
            for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
                steps.push(SwapStep::Remove(segment_path(dir, old, ext)));
            }
        }
    }
    for g in groups {
        for ext in EXTS {
            steps.push(SwapStep::Install {
                from: cleaned_path(dir, g.new_base, ext),
                to: segment_path(dir, g.new_base, ext),
            });
        }
    }
    steps.push(SwapStep::SyncDir);
    steps.push(SwapStep::Remove(dir.join(MANIFEST_FILE)));
    steps.push(SwapStep::SyncDir);
    steps
}

#[derive(Debug)]
enum SwapStep {
    Remove(PathBuf),
    /// Rename if the source still exists (it is gone once done).
    Install {
        from: PathBuf,
        to: PathBuf,
    },
    SyncDir,
}

impl SwapStep {
    fn run(&self, dir: &Path) -> Result<(), LogError> {
        match self {
            SwapStep::Remove(path) => remove_if_exists(path),
            SwapStep::Install { from, to } => match std::fs::rename(from, to) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(LogError::io("rename", from)(e)),
            },
            SwapStep::SyncDir => sync_dir(dir),
        }
    }
}

/// Steps 3 and 4 after [`commit`]. `limit` stops after that many file operations (tests cut
/// the swap at every point this way); returns how many ran.
pub(crate) fn complete(dir: &Path, groups: &[SwapGroup], limit: usize) -> Result<usize, LogError> {
    let steps = swap_steps(dir, groups);
    let mut done = 0;
    for step in steps.iter().take(limit) {
        step.run(dir)?;
        done += 1;
    }
    Ok(done)
}

/// Finishes a swap that a crash interrupted after its commit (see the module doc).
pub(crate) fn recover(dir: &Path) -> Result<(), LogError> {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LogError::io("read", &path)(e)),
    };
    let groups = decode_manifest(&text).ok_or_else(|| {
        LogError::Corrupt(format!(
            "{}: unreadable cleaner swap manifest",
            path.display()
        ))
    })?;
    tracing::info!(dir = %dir.display(), segments = groups.len(), "completing an interrupted cleaner swap");
    complete(dir, &groups, usize::MAX).map(|_| ())
}

/// The first dirty offset recorded by the last cleaning pass, if any.
pub(crate) fn read_checkpoint(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != CHECKPOINT_VERSION {
        return None;
    }
    lines.next()?.trim().parse().ok()
}

/// Records the first dirty offset (atomically).
pub(crate) fn write_checkpoint(dir: &Path, first_dirty: i64) -> Result<(), LogError> {
    write_atomic(
        dir,
        CHECKPOINT_FILE,
        &format!("{CHECKPOINT_VERSION}\n{first_dirty}\n"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_garbage() {
        let groups = vec![
            SwapGroup {
                new_base: 0,
                old_bases: vec![0, 10, 20],
            },
            SwapGroup {
                new_base: 30,
                old_bases: vec![30],
            },
        ];
        assert_eq!(decode_manifest(&encode_manifest(&groups)), Some(groups));
        assert_eq!(decode_manifest("samsa-cleaner-swap 1\n0 x\n"), None);
        assert_eq!(decode_manifest("other\n0 0\n"), None);
    }

    #[test]
    fn checkpoint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(dir.path()), None);
        write_checkpoint(dir.path(), 1234).unwrap();
        assert_eq!(read_checkpoint(dir.path()), Some(1234));
        std::fs::write(dir.path().join(CHECKPOINT_FILE), "9\n5\n").unwrap();
        assert_eq!(read_checkpoint(dir.path()), None, "unknown version");
    }
}
