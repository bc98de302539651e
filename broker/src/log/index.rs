//! The two sparse indexes of a segment, in Kafka's on-disk format: `.index` (4-byte relative
//! offset + 4-byte file position) and `.timeindex` (8-byte timestamp + 4-byte relative offset),
//! big-endian fixed-size entries appended to a file and mirrored in memory for lookups.
//!
//! Owns entry encoding/decoding, the on-load sanity checks, lookups, and the rule deciding
//! when a batch earns an entry ([`IndexTracker`]). It never reads log data and never panics
//! on a damaged file: a bad file is reported so that recovery rebuilds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::batch::BatchHeader;
use super::LogError;

/// An offset index entry: the batch with this base offset starts at this file position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) offset: i64,
    pub(crate) position: u32,
}

/// A time index entry: no record before the batch starting at `offset` has a timestamp as
/// high as `timestamp`, and that batch reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) offset: i64,
}

/// Fixed-size index entry with a Kafka on-disk encoding relative to the segment base offset.
pub(crate) trait IndexEntry: Copy + PartialEq {
    const LEN: usize;
    /// Appends the encoded entry; `None` if the offset is not representable.
    fn encode(&self, base_offset: i64, out: &mut Vec<u8>) -> Option<()>;
    fn decode(bytes: &[u8], base_offset: i64) -> Option<Self>;
    /// Whether `self` may follow `prev` in a well-formed index.
    fn follows(&self, prev: &Self) -> bool;
}

fn relative(offset: i64, base_offset: i64) -> Option<[u8; 4]> {
    let rel = i32::try_from(offset.checked_sub(base_offset)?).ok()?;
    (rel >= 0).then(|| rel.to_be_bytes())
}

fn absolute(bytes: &[u8], base_offset: i64) -> Option<i64> {
    let rel = i32::from_be_bytes(bytes.try_into().ok()?);
    if rel < 0 {
        return None;
    }
    base_offset.checked_add(i64::from(rel))
}

impl IndexEntry for OffsetEntry {
    const LEN: usize = 8;

    fn encode(&self, base_offset: i64, out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(&relative(self.offset, base_offset)?);
        out.extend_from_slice(&self.position.to_be_bytes());
        Some(())
    }

    fn decode(bytes: &[u8], base_offset: i64) -> Option<Self> {
        Some(Self {
            offset: absolute(bytes.get(0..4)?, base_offset)?,
            position: u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?),
        })
    }

    fn follows(&self, prev: &Self) -> bool {
        self.offset > prev.offset && self.position > prev.position
    }
}

impl IndexEntry for TimeEntry {
    const LEN: usize = 12;

    fn encode(&self, base_offset: i64, out: &mut Vec<u8>) -> Option<()> {
        let rel = relative(self.offset, base_offset)?;
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&rel);
        Some(())
    }

    fn decode(bytes: &[u8], base_offset: i64) -> Option<Self> {
        Some(Self {
            timestamp: i64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?),
            offset: absolute(bytes.get(8..12)?, base_offset)?,
        })
    }

    fn follows(&self, prev: &Self) -> bool {
        self.timestamp > prev.timestamp && self.offset >= prev.offset
    }
}

/// Decodes a whole index file; `Err` says why it must be rebuilt.
pub(crate) fn decode_entries<E: IndexEntry>(
    bytes: &[u8],
    base_offset: i64,
) -> Result<Vec<E>, String> {
    if bytes.len() % E::LEN != 0 {
        return Err(format!(
            "size {} is not a multiple of the entry size {}",
            bytes.len(),
            E::LEN
        ));
    }
    let mut entries: Vec<E> = Vec::with_capacity(bytes.len() / E::LEN);
    for (i, chunk) in bytes.chunks_exact(E::LEN).enumerate() {
        let entry =
            E::decode(chunk, base_offset).ok_or_else(|| format!("entry {i} is out of range"))?;
        if let Some(prev) = entries.last() {
            if !entry.follows(prev) {
                return Err(format!("entry {i} is not monotonic"));
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// One index file and its entries in memory. Appends go straight to the file (no user-space
/// buffering); a failed append is rolled back so the file never holds half an entry.
#[derive(Debug)]
pub(crate) struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    file: File,
    base_offset: i64,
    entries: Vec<E>,
}

impl<E: IndexEntry> IndexFile<E> {
    fn open_file(path: &Path, truncate: bool) -> Result<File, LogError> {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(path)
            .and_then(|file| {
                if truncate {
                    file.set_len(0)?;
                }
                Ok(file)
            })
            .map_err(LogError::io("open", path))
    }

    /// Creates (or empties) the index file.
    pub(crate) fn create(path: PathBuf, base_offset: i64) -> Result<Self, LogError> {
        let file = Self::open_file(&path, true)?;
        Ok(Self {
            path,
            file,
            base_offset,
            entries: Vec::new(),
        })
    }

    /// Loads the index file (creating it if missing). The second value, when set, says why the
    /// file cannot be trusted; the index is then empty and must be rebuilt.
    pub(crate) fn load(
        path: PathBuf,
        base_offset: i64,
    ) -> Result<(Self, Option<String>), LogError> {
        let existed = path.exists();
        let mut file = Self::open_file(&path, false)?;
        let mut problem = None;
        let mut entries = Vec::new();
        if existed {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(LogError::io("read", &path))?;
            match decode_entries(&bytes, base_offset) {
                Ok(decoded) => entries = decoded,
                Err(reason) => problem = Some(reason),
            }
        } else {
            problem = Some("file is missing".to_string());
        }
        Ok((
            Self {
                path,
                file,
                base_offset,
                entries,
            },
            problem,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    fn encode_all(&self, entries: &[E]) -> Result<Vec<u8>, LogError> {
        let mut bytes = Vec::with_capacity(entries.len() * E::LEN);
        for entry in entries {
            entry.encode(self.base_offset, &mut bytes).ok_or_else(|| {
                LogError::Corrupt(format!(
                    "index entry out of range for {}",
                    self.path.display()
                ))
            })?;
        }
        Ok(bytes)
    }

    /// Appends one entry to the file and to memory.
    pub(crate) fn append(&mut self, entry: E) -> Result<(), LogError> {
        if let Some(prev) = self.entries.last() {
            if !entry.follows(prev) {
                return Err(LogError::Corrupt(format!(
                    "non-monotonic entry for {}",
                    self.path.display()
                )));
            }
        }
        let bytes = self.encode_all(&[entry])?;
        if let Err(err) = self.file.write_all(&bytes) {
            let len = (self.entries.len() * E::LEN) as u64;
            let _ = self.file.set_len(len);
            return Err(LogError::io("append to", &self.path)(err));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Replaces the whole file with `entries` (used by rebuilds).
    pub(crate) fn replace_all(&mut self, entries: Vec<E>) -> Result<(), LogError> {
        let bytes = self.encode_all(&entries)?;
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all(&bytes))
            .map_err(LogError::io("rewrite", &self.path))?;
        self.entries = entries;
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(LogError::io("fsync", &self.path))
    }
}

impl IndexFile<OffsetEntry> {
    /// The last entry whose offset is <= `offset`, if any.
    pub(crate) fn lookup(&self, offset: i64) -> Option<OffsetEntry> {
        let idx = self.entries.partition_point(|e| e.offset <= offset);
        idx.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .copied()
    }
}

impl IndexFile<TimeEntry> {
    /// The last entry whose timestamp is <= `timestamp`, if any.
    pub(crate) fn lookup(&self, timestamp: i64) -> Option<TimeEntry> {
        let idx = self.entries.partition_point(|e| e.timestamp <= timestamp);
        idx.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .copied()
    }
}

/// Decides which batches earn index entries, identically for live appends and rebuilds.
/// An offset entry is due once more than `interval` bytes were appended since the last one
/// (so the first batch of a segment, at position 0, is never indexed); a time entry is added
/// at the same moment when the segment's max timestamp rose above the last time entry, and
/// once more when the segment is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexTracker {
    pub(crate) bytes_since_entry: u64,
    /// Largest batch max timestamp seen (-1 when none).
    pub(crate) max_timestamp: i64,
    /// Base offset of the first batch that reached `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    pub(crate) last_time_entry: i64,
}

impl IndexTracker {
    pub(crate) fn new(base_offset: i64) -> Self {
        Self {
            bytes_since_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            last_time_entry: -1,
        }
    }

    /// Feeds the batch about to be stored at `position`; returns the entries it earns.
    pub(crate) fn observe(
        &mut self,
        position: u32,
        header: &BatchHeader,
        interval: u32,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.base_offset;
        }
        let mut due = (None, None);
        if self.bytes_since_entry > u64::from(interval) {
            due.0 = Some(OffsetEntry {
                offset: header.base_offset,
                position,
            });
            due.1 = self.time_entry();
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry = self
            .bytes_since_entry
            .saturating_add(header.total_len() as u64);
        due
    }

    /// A time entry for the current max timestamp, if it is above the last one.
    pub(crate) fn time_entry(&mut self) -> Option<TimeEntry> {
        (self.max_timestamp > self.last_time_entry).then(|| {
            self.last_time_entry = self.max_timestamp;
            TimeEntry {
                timestamp: self.max_timestamp,
                offset: self.offset_of_max_timestamp,
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn offset_entries_round_trip_and_reject_bad_files() {
        let entries = vec![
            OffsetEntry {
                offset: 105,
                position: 4100,
            },
            OffsetEntry {
                offset: 130,
                position: 8300,
            },
        ];
        let mut bytes = Vec::new();
        for e in &entries {
            e.encode(100, &mut bytes).unwrap();
        }
        assert_eq!(bytes, [0, 0, 0, 5, 0, 0, 16, 4, 0, 0, 0, 30, 0, 0, 32, 108]);
        assert_eq!(decode_entries::<OffsetEntry>(&bytes, 100).unwrap(), entries);
        assert!(decode_entries::<OffsetEntry>(&bytes[..7], 100).is_err());
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert!(decode_entries::<OffsetEntry>(&swapped, 100)
            .unwrap_err()
            .contains("monotonic"));
        assert!(OffsetEntry {
            offset: 99,
            position: 0
        }
        .encode(100, &mut Vec::new())
        .is_none());
    }

    #[test]
    fn time_entries_round_trip() {
        let entry = TimeEntry {
            timestamp: 1_700_000_000_000,
            offset: 7,
        };
        let mut bytes = Vec::new();
        entry.encode(0, &mut bytes).unwrap();
        assert_eq!(bytes.len(), 12);
        assert_eq!(&bytes[8..], &[0, 0, 0, 7]);
        assert_eq!(decode_entries::<TimeEntry>(&bytes, 0).unwrap(), vec![entry]);
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes);
        assert!(
            decode_entries::<TimeEntry>(&twice, 0).is_err(),
            "timestamps must rise"
        );
    }

    #[test]
    fn lookups_find_floor_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = IndexFile::<OffsetEntry>::create(dir.path().join("a.index"), 0).unwrap();
        for (offset, position) in [(10, 100), (20, 200), (30, 300)] {
            idx.append(OffsetEntry { offset, position }).unwrap();
        }
        assert_eq!(idx.lookup(5), None);
        assert_eq!(idx.lookup(10).unwrap().position, 100);
        assert_eq!(idx.lookup(29).unwrap().position, 200);
        assert_eq!(idx.lookup(1000).unwrap().position, 300);
        assert!(idx
            .append(OffsetEntry {
                offset: 25,
                position: 400
            })
            .is_err());
        let (loaded, problem) =
            IndexFile::<OffsetEntry>::load(idx.path().to_path_buf(), 0).unwrap();
        assert_eq!(problem, None);
        assert_eq!(loaded.entries(), idx.entries());

        let mut tidx = IndexFile::<TimeEntry>::create(dir.path().join("a.timeindex"), 0).unwrap();
        for (timestamp, offset) in [(1000, 0), (2000, 5), (3000, 9)] {
            tidx.append(TimeEntry { timestamp, offset }).unwrap();
        }
        assert_eq!(tidx.lookup(999), None);
        assert_eq!(tidx.lookup(2000).unwrap().offset, 5);
        assert_eq!(tidx.lookup(2999).unwrap().offset, 5);
        let (_, problem) =
            IndexFile::<TimeEntry>::load(dir.path().join("missing.timeindex"), 0).unwrap();
        assert_eq!(problem.as_deref(), Some("file is missing"));
    }

    fn header(base_offset: i64, max_timestamp: i64, total: i32) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: total - 12,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: 0,
            base_timestamp: max_timestamp,
            max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: 1,
        }
    }

    #[test]
    fn tracker_indexes_after_interval_bytes() {
        let mut t = IndexTracker::new(0);
        let mut offsets = Vec::new();
        let mut times = Vec::new();
        let mut pos = 0u32;
        for (i, ts) in [100, 50, 200, 200, 150, 300].into_iter().enumerate() {
            let (o, tm) = t.observe(pos, &header(i as i64, ts, 100), 150);
            offsets.extend(o);
            times.extend(tm);
            pos += 100;
        }
        // Entries at batches 2 and 4 (more than 150 bytes since the previous entry).
        assert_eq!(
            offsets,
            vec![
                OffsetEntry {
                    offset: 2,
                    position: 200
                },
                OffsetEntry {
                    offset: 4,
                    position: 400
                }
            ]
        );
        // Max timestamp 200 was first reached by batch 2; it did not rise by batch 4.
        assert_eq!(
            times,
            vec![TimeEntry {
                timestamp: 200,
                offset: 2
            }]
        );
        assert_eq!(
            t.time_entry(),
            Some(TimeEntry {
                timestamp: 300,
                offset: 5
            })
        );
        assert_eq!(t.time_entry(), None);
    }
}
