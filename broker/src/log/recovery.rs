//! Opening a partition directory after a clean stop or a crash.
//!
//! Owns: listing segment files (removing stray temp files and orphan index files), loading and
//! sanity-checking indexes, rebuilding an index from its log file, and — when the clean-shutdown
//! marker is absent — validating the active segment batch by batch (length, magic, CRC32C,
//! offsets increasing: a jump is a gap copied from a compacted leader, a step back is damage)
//! and truncating it at the first torn or corrupt batch.
//! It never deletes a log file and never truncates anything but the damaged tail it found.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::batch::{BatchError, BatchHeader, BatchIter};
use super::index::{IndexFile, IndexTracker};
use super::segment::{
    open_log_file, remove_if_exists, segment_path, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT,
};
use super::LogError;

/// Present in a partition directory only while the log is closed cleanly.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".samsa_clean_shutdown";

/// Suffixes of files left behind by an interrupted rewrite or delete; removed on open.
const TEMP_SUFFIXES: &[&str] = &[".tmp", ".deleted", ".cleaned", ".swap"];

/// Bytes read per positional read while scanning a log file.
const SCAN_WINDOW: usize = 1 << 20;

/// Where a scan of a log file stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// End of the last batch that passed every check.
    pub(crate) valid_len: u64,
    /// Why the scan stopped before the end, if it did.
    pub(crate) problem: Option<String>,
}

/// Visits the batches of `file` between `start` and `end` in order, reading a window at a time.
/// Stops at the first torn batch, bad length or magic, CRC mismatch (when `verify_crc`), or
/// batch that `visit` refuses.
pub(crate) fn scan_batches(
    file: &std::fs::File,
    path: &Path,
    start: u64,
    end: u64,
    verify_crc: bool,
    mut visit: impl FnMut(u64, &BatchHeader) -> Result<(), String>,
) -> Result<ScanOutcome, LogError> {
    let stop = |valid_len: u64, problem: String| {
        Ok(ScanOutcome {
            valid_len,
            problem: Some(problem),
        })
    };
    let mut pos = start;
    let mut window_hint = SCAN_WINDOW;
    let mut buf = Vec::new();
    while pos < end {
        let remaining = end - pos;
        let window = (window_hint as u64).min(remaining) as usize;
        buf.resize(window, 0);
        file.read_exact_at(&mut buf, pos)
            .map_err(LogError::io("read", path))?;
        let mut progress = 0usize;
        window_hint = SCAN_WINDOW;
        for item in BatchIter::new(&buf).verify_crc(verify_crc) {
            match item {
                Ok((at, header)) => {
                    let batch_pos = pos + at as u64;
                    if let Err(reason) = visit(batch_pos, &header) {
                        return stop(batch_pos, reason);
                    }
                    progress = at.saturating_add(header.total_len());
                }
                Err(BatchError::Truncated { needed, .. }) if (window as u64) < remaining => {
                    // The window cut this batch: read again from its start, big enough for it.
                    let batch_pos = pos + progress as u64;
                    if needed as u64 > end - batch_pos || (progress == 0 && needed <= window) {
                        return stop(batch_pos, format!("torn batch: needs {needed} bytes"));
                    }
                    window_hint = needed.max(SCAN_WINDOW);
                    break;
                }
                Err(err) => return stop(pos + progress as u64, err.to_string()),
            }
        }
        pos += progress as u64;
    }
    Ok(ScanOutcome {
        valid_len: pos,
        problem: None,
    })
}

/// Segment base offsets found in `dir`, oldest first. Removes temp files and index files
/// whose log file is gone; ignores anything else it does not recognise.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = BTreeSet::new();
    let mut indexes = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LogError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(LogError::io("list", dir))?;
        let path = entry.path();
        let is_file = entry
            .file_type()
            .map_err(LogError::io("stat", &path))?
            .is_file();
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|_| is_file) else {
            continue;
        };
        if TEMP_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) {
            tracing::info!(file = %path.display(), "removing stray temporary file");
            remove_if_exists(&path)?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(base) = stem.parse::<i64>() else {
            continue;
        };
        match ext {
            LOG_EXT => {
                logs.insert(base);
            }
            INDEX_EXT | TIME_INDEX_EXT => indexes.push((base, path)),
            _ => {}
        }
    }
    for (base, path) in indexes {
        if !logs.contains(&base) {
            tracing::info!(file = %path.display(), "removing index file without a log file");
            remove_if_exists(&path)?;
        }
    }
    Ok(logs.into_iter().collect())
}

/// Opens every segment in `dir`, oldest first. After an unclean shutdown (no marker) the last
/// segment is validated batch by batch and truncated at the first bad batch.
pub(crate) fn load_segments(dir: &Path, index_interval: u32) -> Result<Vec<Segment>, LogError> {
    let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
    let bases = list_segments(dir)?;
    let mut segments = Vec::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let validate = !clean && next_base.is_none();
        segments.push(open_segment(
            dir,
            base,
            next_base,
            validate,
            index_interval,
        )?);
    }
    Ok(segments)
}

/// How thoroughly a full scan checks batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanMode {
    /// Crash recovery: CRC32C and increasing offsets.
    Validate,
    /// Index rebuild: lengths, magic and increasing offsets.
    Structure,
}

pub(crate) fn open_segment(
    dir: &Path,
    base: i64,
    next_base: Option<i64>,
    validate: bool,
    index_interval: u32,
) -> Result<Segment, LogError> {
    let log_path = segment_path(dir, base, LOG_EXT);
    let file = open_log_file(&log_path, false)?;
    let size = file
        .metadata()
        .map_err(LogError::io("stat", &log_path))?
        .len();
    let (offset_index, offset_problem) = IndexFile::load(segment_path(dir, base, INDEX_EXT), base)?;
    let (time_index, time_problem) =
        IndexFile::load(segment_path(dir, base, TIME_INDEX_EXT), base)?;
    let mut segment = Segment {
        base_offset: base,
        log_path,
        file: std::sync::Arc::new(file),
        size,
        offset_index,
        time_index,
        next_offset: base,
        tracker: IndexTracker::new(base),
        roll_base_ms: None,
    };
    let mut rebuild = offset_problem
        .map(|p| format!("offset index: {p}"))
        .or_else(|| time_problem.map(|p| format!("time index: {p}")));
    if rebuild.is_none() {
        rebuild = check_offset_index(&segment, next_base)?;
    }
    let is_last = next_base.is_none();
    if validate {
        full_scan(
            &mut segment,
            ScanMode::Validate,
            is_last,
            index_interval,
            rebuild,
        )?;
    } else if rebuild.is_some() {
        full_scan(
            &mut segment,
            ScanMode::Structure,
            is_last,
            index_interval,
            rebuild,
        )?;
    } else {
        trust_indexes(&mut segment, next_base);
        let tail_ok = match next_base {
            Some(_) => true,
            None => scan_tail(&mut segment)?,
        };
        if !tail_ok {
            // A clean marker but a damaged tail: recover as after a crash.
            let reason = Some("log tail does not parse".to_string());
            full_scan(
                &mut segment,
                ScanMode::Validate,
                is_last,
                index_interval,
                reason,
            )?;
        } else if let Some(problem) = check_time_index(&segment) {
            full_scan(
                &mut segment,
                ScanMode::Structure,
                is_last,
                index_interval,
                Some(problem),
            )?;
        }
    }
    if is_last && !segment.is_empty() {
        segment.roll_base_ms = Some(created_ms(&segment));
    }
    Ok(segment)
}

/// Why the offset index cannot be trusted, if it cannot.
fn check_offset_index(
    segment: &Segment,
    next_base: Option<i64>,
) -> Result<Option<String>, LogError> {
    let Some(last) = segment.offset_index.last().copied() else {
        return Ok(None);
    };
    if u64::from(last.position) >= segment.size {
        return Ok(Some(
            "offset index points past the end of the log file".into(),
        ));
    }
    if next_base.is_some_and(|next| last.offset >= next) {
        return Ok(Some("offset index points past the next segment".into()));
    }
    match segment.read_header_at(u64::from(last.position)) {
        Ok(Some(header)) if header.base_offset == last.offset => Ok(None),
        Ok(_) | Err(LogError::Corrupt(_)) => Ok(Some(
            "offset index entry does not point at its batch".into(),
        )),
        Err(err) => Err(err),
    }
}

/// Why the time index cannot be trusted, once the segment's next offset is known.
fn check_time_index(segment: &Segment) -> Option<String> {
    let last = segment.time_index.last()?;
    (last.offset >= segment.next_offset)
        .then(|| "time index points past the end of the log".to_string())
}

/// Takes a sealed segment's summary from its indexes: the next segment's base offset as its
/// end and the last time entry (written when it was sealed) as its max timestamp.
fn trust_indexes(segment: &mut Segment, next_base: Option<i64>) {
    if let Some(last) = segment.time_index.last() {
        segment.tracker.max_timestamp = last.timestamp;
        segment.tracker.offset_of_max_timestamp = last.offset;
        segment.tracker.last_time_entry = last.timestamp;
    }
    if let Some(next) = next_base {
        segment.next_offset = next;
    }
}

/// For the active segment after a clean shutdown: reads the batches after the last offset
/// index entry to learn the next offset and max timestamp. False if the tail does not parse.
fn scan_tail(segment: &mut Segment) -> Result<bool, LogError> {
    let start = segment
        .offset_index
        .last()
        .map_or(0, |e| u64::from(e.position));
    let mut tracker = segment.tracker;
    let mut expected = None;
    let outcome = scan_batches(
        &segment.file,
        &segment.log_path,
        start,
        segment.size,
        false,
        |_, h| {
            if expected.is_some_and(|e| h.base_offset < e) {
                return Err(format!(
                    "batch at offset {} breaks the offset sequence",
                    h.base_offset
                ));
            }
            if h.max_timestamp > tracker.max_timestamp {
                tracker.max_timestamp = h.max_timestamp;
                tracker.offset_of_max_timestamp = h.base_offset;
            }
            expected = Some(h.last_offset().saturating_add(1));
            Ok(())
        },
    )?;
    if outcome.problem.is_some() {
        return Ok(false);
    }
    tracker.bytes_since_entry = segment.size - start;
    segment.tracker = tracker;
    segment.next_offset = expected.unwrap_or(segment.base_offset);
    Ok(true)
}

/// Scans the whole segment, truncates it at the first bad batch, and rebuilds both indexes
/// (rewriting a file only when its entries differ).
fn full_scan(
    segment: &mut Segment,
    mode: ScanMode,
    is_last: bool,
    index_interval: u32,
    reason: Option<String>,
) -> Result<(), LogError> {
    let base = segment.base_offset;
    let mut tracker = IndexTracker::new(base);
    let mut offsets = Vec::new();
    let mut times = Vec::new();
    let mut expected = base;
    let verify_crc = mode == ScanMode::Validate;
    let outcome = scan_batches(
        &segment.file,
        &segment.log_path,
        0,
        segment.size,
        verify_crc,
        |pos, h| {
            // Offsets may jump (a follower copies a compacted leader's gaps) but never go back.
            let in_order = h.base_offset >= expected;
            if !in_order {
                return Err(format!(
                    "batch base offset {} does not follow offset {}",
                    h.base_offset,
                    expected - 1
                ));
            }
            if h.last_offset_delta < 0 {
                return Err(format!(
                    "negative last offset delta {}",
                    h.last_offset_delta
                ));
            }
            let position =
                u32::try_from(pos).map_err(|_| "segment too large to index".to_string())?;
            if i32::try_from(h.last_offset() - base).is_err() {
                return Err("offset too far from the segment base".into());
            }
            let (offset_entry, time_entry) = tracker.observe(position, h, index_interval);
            offsets.extend(offset_entry);
            times.extend(time_entry);
            expected = h.last_offset().saturating_add(1);
            Ok(())
        },
    )?;
    let path = segment.log_path.display().to_string();
    if let Some(problem) = outcome.problem {
        let truncated = segment.size - outcome.valid_len;
        tracing::warn!(
            segment = %path, truncated_bytes = truncated, valid_bytes = outcome.valid_len,
            %problem, "truncating log segment at the first torn or corrupt batch"
        );
        segment
            .file
            .set_len(outcome.valid_len)
            .and_then(|()| segment.file.sync_all())
            .map_err(LogError::io("truncate", &segment.log_path))?;
        segment.size = outcome.valid_len;
    } else if mode == ScanMode::Validate {
        tracing::info!(segment = %path, bytes = segment.size, "validated log tail after unclean shutdown");
    }
    if !is_last {
        times.extend(tracker.time_entry());
    }
    segment.tracker = tracker;
    segment.next_offset = expected;
    let reason = reason.unwrap_or_else(|| "entries differ from the log".into());
    if segment.offset_index.entries() != offsets.as_slice() {
        tracing::warn!(index = %segment.offset_index.path().display(), %reason, "rebuilt offset index");
        segment.offset_index.replace_all(offsets)?;
        segment.offset_index.sync()?;
    }
    if segment.time_index.entries() != times.as_slice() {
        tracing::warn!(index = %segment.time_index.path().display(), %reason, "rebuilt time index");
        segment.time_index.replace_all(times)?;
        segment.time_index.sync()?;
    }
    Ok(())
}

/// When a loaded segment started, for `segment.ms`: the file's creation time if the
/// filesystem records it, else now.
fn created_ms(segment: &Segment) -> i64 {
    segment
        .file
        .metadata()
        .and_then(|m| m.created())
        .unwrap_or_else(|_| SystemTime::now())
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}
