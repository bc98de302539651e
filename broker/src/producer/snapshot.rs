//! Producer state snapshots: at every segment roll the partition writes the state of its
//! idempotent producers as of the new segment's base offset to `<offset>.snapshot`. At start
//! the newest readable snapshot at or below the log end offset is loaded and only the batches
//! from its offset on are replayed, so a producer whose batches retention or compaction has
//! removed is still known (its next batch appends instead of failing with
//! OUT_OF_ORDER_SEQUENCE_NUMBER) and start-up reads only the active end of the log.
//!
//! File layout, big-endian:
//!
//! ```text
//! magic "SPSN" | version u16 (2) | crc32c u32 of everything after it
//! offset i64 | producers u32 | per producer: id i64, epoch i16, last_timestamp i64, batches u8,
//!                                            per batch: first_seq i32, last_seq i32, base_offset i64
//! ```
//!
//! Version 1 (still read) has no `last_timestamp`: such producers count as seen when loaded.
//!
//! ```text
//! ```
//!
//! A snapshot is written to a `.tmp` file and renamed into place, so a crash leaves either the
//! old set or the new one; a file that fails its checksum is skipped (and an older snapshot or
//! a full replay is used instead).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::{BatchMeta, ProducerEntry, ProducerStates, DEDUP_WINDOW};
use crate::log::{Log, LogError};

const MAGIC: &[u8; 4] = b"SPSN";
const VERSION: u16 = 2;
/// The first layout, without `last_timestamp`.
const VERSION_1: u16 = 1;
/// File name extension of snapshots.
pub const SNAPSHOT_EXT: &str = "snapshot";
/// Snapshots kept per partition; older ones are removed when a new one is written.
const KEEP: usize = 2;
const HEADER_LEN: usize = 4 + 2 + 4;

/// Why a snapshot file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a snapshot or an unknown version.
    #[error("not a producer snapshot (bad magic or version)")]
    Format,
    /// Torn or damaged.
    #[error("checksum mismatch")]
    Checksum,
    /// Shorter than its contents say.
    #[error("truncated")]
    Truncated,
}

/// Path of the snapshot at `offset` in a partition directory.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_EXT}"))
}

impl ProducerStates {
    /// The snapshot file bytes of this state as of `offset`.
    pub fn encode_snapshot(&self, offset: i64) -> Vec<u8> {
        let mut body = Vec::with_capacity(12 + self.producers.len() * (11 + 16 * DEDUP_WINDOW));
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(entry) = self.producers.get(&id) else {
                continue;
            };
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.push(entry.batches.len() as u8);
            for b in &entry.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.base_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses snapshot file bytes into (offset, state).
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(i64, ProducerStates), SnapshotError> {
        let (header, body) = bytes
            .split_at_checked(HEADER_LEN)
            .ok_or(SnapshotError::Truncated)?;
        let mut r = Reader(header);
        if r.take::<4>()? != *MAGIC {
            return Err(SnapshotError::Format);
        }
        let version = u16::from_be_bytes(r.take()?);
        if version != VERSION && version != VERSION_1 {
            return Err(SnapshotError::Format);
        }
        let loaded_at = crate::server::now_ms();
        if u32::from_be_bytes(r.take()?) != crc32c::crc32c(body) {
            return Err(SnapshotError::Checksum);
        }
        let mut r = Reader(body);
        let offset = i64::from_be_bytes(r.take()?);
        let count = u32::from_be_bytes(r.take()?);
        let mut states = ProducerStates::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take()?);
            let epoch = i16::from_be_bytes(r.take()?);
            let last_timestamp = if version == VERSION_1 {
                loaded_at
            } else {
                i64::from_be_bytes(r.take()?)
            };
            let [n] = r.take::<1>()?;
            let mut batches = VecDeque::with_capacity(usize::from(n).min(DEDUP_WINDOW));
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    first_seq: i32::from_be_bytes(r.take()?),
                    last_seq: i32::from_be_bytes(r.take()?),
                    base_offset: i64::from_be_bytes(r.take()?),
                });
            }
            while batches.len() > DEDUP_WINDOW {
                batches.pop_front();
            }
            states.producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                },
            );
        }
        Ok((offset, states))
    }

    /// Writes the snapshot of this state as of `offset` into `dir` and removes all but the
    /// newest [`KEEP`] snapshots.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> std::io::Result<()> {
        crate::topics::store::write_atomically(
            &snapshot_path(dir, offset),
            &self.encode_snapshot(offset),
        )?;
        let mut offsets = list_snapshots(dir)?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        for old in offsets.into_iter().skip(KEEP) {
            remove_if_exists(&snapshot_path(dir, old))?;
        }
        Ok(())
    }

    /// The producer state of `log`: the newest usable snapshot plus the batches after it, or
    /// a replay of the whole log when there is none. Snapshots above the log end offset (left
    /// by a truncated tail) are removed.
    pub fn load(log: &Log) -> Result<ProducerStates, LogError> {
        let dir = log.dir();
        let leo = log.log_end_offset();
        let mut offsets = list_snapshots(dir).map_err(LogError::io("list", dir))?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        for offset in offsets {
            let path = snapshot_path(dir, offset);
            if offset > leo {
                tracing::info!(file = %path.display(), log_end_offset = leo, "removing a producer snapshot above the log end");
                remove_if_exists(&path).map_err(LogError::io("remove", &path))?;
                continue;
            }
            let decoded = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| ProducerStates::decode_snapshot(&b).map_err(|e| e.to_string()));
            match decoded {
                Ok((at, mut states)) if at == offset => {
                    log.for_each_batch_header_from(offset, |h| states.record(h))?;
                    return Ok(states);
                }
                Ok((at, _)) => {
                    tracing::warn!(file = %path.display(), inside = at, "producer snapshot names another offset; skipped");
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "unreadable producer snapshot; skipped");
                }
            }
        }
        let mut states = ProducerStates::default();
        log.for_each_batch_header(|h| states.record(h))?;
        Ok(states)
    }
}

/// Offsets of the snapshot files in `dir`.
fn list_snapshots(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some((stem, ext)) = name.to_str().and_then(|n| n.split_once('.')) else {
            continue;
        };
        if ext != SNAPSHOT_EXT || stem.len() != 20 {
            continue;
        }
        if let Ok(offset) = stem.parse::<i64>() {
            out.push(offset);
        }
    }
    Ok(out)
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(SnapshotError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::BatchHeader;
    use crate::producer::test_header as h;

    fn sample() -> ProducerStates {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&h(3, 0, i * 2, 2, i64::from(i) * 2));
        }
        s.record(&h(9, 4, 0, 1, 20));
        s
    }

    #[test]
    fn a_snapshot_round_trips_the_state() {
        let s = sample();
        let bytes = s.encode_snapshot(21);
        let (offset, back) = ProducerStates::decode_snapshot(&bytes).unwrap();
        assert_eq!(offset, 21);
        assert_eq!(back.len(), 2);
        for pid in [3, 9] {
            let (a, b) = (&s.producers[&pid], &back.producers[&pid]);
            assert_eq!(
                (a.epoch, &a.batches),
                (b.epoch, &b.batches),
                "producer {pid}"
            );
        }
        // The restored state answers exactly as the original: a retry inside the window is a
        // duplicate with its offset, the next sequence appends, a stale epoch is fenced.
        for probe in [
            h(3, 0, 10, 2, -1),
            h(3, 0, 14, 1, -1),
            h(3, 0, 2, 2, -1),
            h(9, 3, 1, 1, -1),
        ] {
            assert_eq!(back.check(&probe), s.check(&probe), "{probe:?}");
        }
        assert_eq!(
            back.check(&h(3, 0, 10, 2, -1)),
            Ok(crate::producer::SequenceCheck::Duplicate { base_offset: 10 })
        );
    }

    #[test]
    fn the_last_timestamp_is_kept_and_version_1_files_still_load() {
        let mut s = ProducerStates::default();
        let mut header = h(4, 1, 0, 2, 30);
        header.max_timestamp = 1_234_567;
        s.record(&header);
        let (_, back) = ProducerStates::decode_snapshot(&s.encode_snapshot(32)).unwrap();
        assert_eq!(back.producers[&4].last_timestamp, 1_234_567);

        // A version 1 file (no timestamp): producer 4, epoch 1, one batch 0..=1 at 30.
        let mut body = Vec::new();
        body.extend_from_slice(&32i64.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&4i64.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.push(1);
        for v in [0i32, 1] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        body.extend_from_slice(&30i64.to_be_bytes());
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&VERSION_1.to_be_bytes());
        v1.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        v1.extend_from_slice(&body);
        let before = crate::server::now_ms();
        let (offset, old) = ProducerStates::decode_snapshot(&v1).unwrap();
        assert_eq!(offset, 32);
        let entry = &old.producers[&4];
        assert_eq!(entry.epoch, 1);
        assert!(
            entry.last_timestamp >= before,
            "counts as seen at load, so nothing expires early"
        );
        assert_eq!(
            old.check(&h(4, 1, 0, 2, -1)),
            Ok(crate::producer::SequenceCheck::Duplicate { base_offset: 30 })
        );
    }

    #[test]
    fn damaged_snapshots_are_refused() {
        let bytes = sample().encode_snapshot(5);
        for i in [HEADER_LEN, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert_eq!(
                ProducerStates::decode_snapshot(&bad).err(),
                Some(SnapshotError::Checksum)
            );
        }
        assert_eq!(
            ProducerStates::decode_snapshot(&bytes[..bytes.len() - 3]).err(),
            Some(SnapshotError::Checksum)
        );
        assert_eq!(
            ProducerStates::decode_snapshot(&bytes[..7]).err(),
            Some(SnapshotError::Truncated)
        );
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert_eq!(
            ProducerStates::decode_snapshot(&wrong).err(),
            Some(SnapshotError::Format)
        );
        assert!(ProducerStates::decode_snapshot(&[]).is_err());
    }

    use crate::log::testutil::{config, encoded_batch, NOW};
    use crate::log::LogConfig;
    use crate::producer::SequenceCheck;
    use kafka_protocol::records::Compression;

    /// What the produce path does: check, append, snapshot at a roll, record.
    fn produce(log: &mut Log, states: &mut ProducerStates, producer: Option<(i64, i32)>) -> i64 {
        let batch = encoded_batch(
            &[(NOW, None, Some(&[7u8; 100][..]))],
            Compression::None,
            producer,
        );
        let header = crate::log::batch::parse_header(&batch).unwrap();
        assert_eq!(states.check(&header), Ok(SequenceCheck::Append));
        let info = log.append(&batch, 0, NOW).unwrap();
        if info.rolled {
            states.write_snapshot(log.dir(), info.base_offset).unwrap();
        }
        states.record(&BatchHeader {
            base_offset: info.base_offset,
            ..header
        });
        info.base_offset
    }

    fn one_batch_per_segment() -> LogConfig {
        LogConfig {
            segment_bytes: 100,
            retention_bytes: 1,
            ..config()
        }
    }

    #[test]
    fn a_producer_whose_batches_retention_deleted_is_still_known_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
        let mut states = ProducerStates::default();
        for seq in 0..3 {
            assert_eq!(
                produce(&mut log, &mut states, Some((7, seq))),
                i64::from(seq)
            );
        }
        // Other traffic, then retention drops every segment holding producer 7's batches.
        for _ in 0..3 {
            produce(&mut log, &mut states, None);
        }
        let report = log.apply_retention(NOW).unwrap();
        assert_eq!(report.log_start_offset, 5, "{report:?}");
        log.close().unwrap();
        drop(log);

        let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
        let mut replayed = ProducerStates::default();
        log.for_each_batch_header(|h| replayed.record(h)).unwrap();
        let next = crate::log::batch::parse_header(&encoded_batch(
            &[(NOW, None, Some(b"x"))],
            Compression::None,
            Some((7, 3)),
        ))
        .unwrap();
        let retry = BatchHeader {
            base_sequence: 2,
            ..next
        };
        assert_eq!(
            replayed.check(&retry),
            Ok(SequenceCheck::Append),
            "the log alone has forgotten producer 7: its retry would be stored twice"
        );
        let loaded = ProducerStates::load(&log).unwrap();
        assert_eq!(loaded.check(&next), Ok(SequenceCheck::Append));
        assert_eq!(
            loaded.check(&retry),
            Ok(SequenceCheck::Duplicate { base_offset: 2 })
        );
    }

    #[test]
    fn loading_skips_damaged_snapshots_and_ones_past_the_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
        let mut states = ProducerStates::default();
        for seq in 0..4 {
            produce(&mut log, &mut states, Some((7, seq)));
        }
        // Snapshots at 2 and 3 (KEEP); damage the newest, and add one past the log end.
        let newest = snapshot_path(dir.path(), 3);
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&newest, bytes).unwrap();
        std::fs::write(
            snapshot_path(dir.path(), 99),
            ProducerStates::default().encode_snapshot(99),
        )
        .unwrap();
        log.close().unwrap();
        drop(log);
        // Remove the first segment so that a full replay would not give the same answer.
        std::fs::remove_file(crate::log::testutil::log_file(dir.path(), 0)).unwrap();

        let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
        assert_eq!(log.log_start_offset(), 1);
        let loaded = ProducerStates::load(&log).unwrap();
        assert!(
            !snapshot_path(dir.path(), 99).exists(),
            "past the log end: removed"
        );
        let probe = |seq| BatchHeader {
            base_sequence: seq,
            ..h(7, 0, 0, 1, -1)
        };
        // From the snapshot at 2 (batches 0 and 1) plus the replay of 2 and 3: the whole window.
        assert_eq!(
            loaded.check(&probe(0)),
            Ok(SequenceCheck::Duplicate { base_offset: 0 })
        );
        assert_eq!(
            loaded.check(&probe(3)),
            Ok(SequenceCheck::Duplicate { base_offset: 3 })
        );
        assert_eq!(loaded.check(&probe(4)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_the_newest_snapshots_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = sample();
        for offset in [0, 10, 20, 30] {
            s.write_snapshot(dir.path(), offset).unwrap();
        }
        let mut left = list_snapshots(dir.path()).unwrap();
        left.sort_unstable();
        assert_eq!(left, vec![20, 30]);
        assert!(!dir.path().join("00000000000000000030.tmp").exists());
    }
}
