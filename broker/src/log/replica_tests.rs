//! Tests of the replication primitives: the leader epoch cache as `Log` maintains it,
//! `end_offset_for_epoch`, `truncate_to`, `truncate_fully_and_start_at`, `append_replicated`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::MetadataExt;

use super::segment::segment_path;
use super::testutil::*;
use super::*;

fn e(epoch: i32, start_offset: i64) -> EpochEntry {
    EpochEntry {
        epoch,
        start_offset,
    }
}

/// Segments of two batches of two records.
fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 2 * batch_len(2) + 4,
        ..config()
    }
}

fn epoch_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(LEADER_EPOCH_FILE)).unwrap()
}

fn all(log: &Log) -> Vec<u8> {
    log.read(log.log_start_offset(), usize::MAX, i64::MAX)
        .unwrap()
        .to_vec()
}

/// Appends batches of 2 records in the given epochs; returns the stored bytes.
fn append_epochs(log: &mut Log, epochs: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &epoch) in epochs.iter().enumerate() {
        let batch = simple_batch(&format!("e{epoch}-{i}"), 2, NOW);
        let info = log.append(&batch, epoch, NOW).unwrap();
        out.extend(stored(&batch, info.base_offset, epoch));
    }
    out
}

#[test]
fn appends_record_the_first_offset_of_each_higher_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(epoch_file(dir.path()), "0\n0\n", "written at open");
    append_epochs(&mut log, &[-1, 0, 0, 2, 1, 2, 5]);
    assert_eq!(log.epoch_entries(), &[e(0, 2), e(2, 6), e(5, 12)]);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(epoch_file(dir.path()), "0\n3\n0 2\n2 6\n5 12\n");
    assert!(log.segment_count() > 2, "the test spans segments");
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.epoch_entries(), &[e(0, 2), e(2, 6), e(5, 12)]);
}

#[test]
fn a_missing_or_damaged_epoch_file_is_rebuilt_from_batch_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    append_epochs(&mut log, &[1, 1, 3, 3, 4]);
    let expected = log.epoch_entries().to_vec();
    assert_eq!(expected, vec![e(1, 0), e(3, 4), e(4, 8)]);
    drop(log);
    let path = dir.path().join(LEADER_EPOCH_FILE);
    for damage in [
        None,
        Some("0\n3\n1 0\n3 4\n"),
        Some("0\n1\n9 zz\n"),
        Some(""),
    ] {
        match damage {
            None => std::fs::remove_file(&path).unwrap(),
            Some(text) => std::fs::write(&path, text).unwrap(),
        }
        let log = Log::open(dir.path(), small_segments()).unwrap();
        assert_eq!(log.epoch_entries(), expected.as_slice(), "{damage:?}");
        assert_eq!(epoch_file(dir.path()), "0\n3\n1 0\n3 4\n4 8\n");
    }
}

#[test]
fn entries_past_the_log_end_are_dropped_at_open() {
    // A crash after the cache recorded a new epoch but before its batch reached the log.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_epochs(&mut log, &[1, 2]);
    drop(log);
    std::fs::write(dir.path().join(LEADER_EPOCH_FILE), "0\n3\n1 0\n2 2\n7 5\n").unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(2, 2)]);
    assert_eq!(epoch_file(dir.path()), "0\n2\n1 0\n2 2\n");
    drop(log);
    // One at the log end itself may stay (retention can leave the latest epoch there).
    std::fs::write(dir.path().join(LEADER_EPOCH_FILE), "0\n3\n1 0\n2 2\n7 4\n").unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(2, 2), e(7, 4)]);
}

#[test]
fn end_offset_for_epoch_answers_offsets_for_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.end_offset_for_epoch(0), None, "empty cache");
    append_epochs(&mut log, &[1, 1, 3, 6, 6]);
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.end_offset_for_epoch(0), None, "below the first epoch");
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(2), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 6)));
    assert_eq!(log.end_offset_for_epoch(5), Some((3, 6)));
    assert_eq!(log.end_offset_for_epoch(6), Some((6, 10)));
    assert_eq!(log.end_offset_for_epoch(7), Some((6, 10)));
}

#[test]
fn retention_moves_the_first_epoch_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            retention_bytes: 0,
            ..small_segments()
        },
    )
    .unwrap();
    append_epochs(&mut log, &[1, 1, 1, 1, 2, 2, 2, 2]);
    log.apply_retention(NOW).unwrap();
    let start = log.log_start_offset();
    assert_eq!(start, log.log_end_offset(), "every segment went");
    assert_eq!(log.epoch_entries(), &[e(2, start)]);
    drop(log);
    let log = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.epoch_entries(), &[e(2, start)]);
}

#[test]
fn truncate_to_cuts_at_batch_boundaries_and_deletes_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    let before = append_epochs(&mut log, &[1, 1, 2, 2, 2, 3, 3, 4]);
    assert_eq!(log.log_end_offset(), 16);
    let bases: Vec<i64> = log.sealed.keys().copied().collect();
    assert!(bases.len() >= 3, "{bases:?}");
    // Offset 7 lies inside the batch [6, 7]: the whole batch goes.
    assert!(log.truncate_to(7).unwrap());
    assert_eq!(log.log_end_offset(), 6);
    let kept = all(&log);
    assert_eq!(batch_ranges(&kept), vec![(0, 1), (2, 3), (4, 5)]);
    assert_eq!(kept.as_slice(), &before[..kept.len()]);
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(2, 4)]);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 6)));
    assert_eq!(log.end_offset_for_epoch(3), Some((2, 6)));
    // Later segments' files are gone; the kept one is the active segment.
    let active = log.active.base_offset();
    assert!(active <= 4, "{active}");
    for base in bases.iter().filter(|&&b| b > active) {
        for ext in ["log", "index", "timeindex"] {
            assert!(
                !segment_path(dir.path(), *base, ext).exists(),
                "{base}.{ext}"
            );
        }
    }
    let log_len = file_len(&log_file(dir.path(), active));
    assert_eq!(log_len, log.active.size());
    let index_len = file_len(&segment_path(dir.path(), active, "index"));
    assert_eq!(
        index_len,
        8 * log.active.offset_index.entries().len() as u64
    );
    assert!(log
        .active
        .offset_index
        .entries()
        .iter()
        .all(|e| e.offset < 6));
    assert!(log.active.time_index.entries().iter().all(|e| e.offset < 6));
    // No-ops at and above the log end.
    assert!(!log.truncate_to(6).unwrap());
    assert!(!log.truncate_to(600).unwrap());
    // Appends continue from the new end; reads see them.
    let batch = simple_batch("after", 3, NOW + 5);
    let info = log.append(&batch, 9, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (6, 8));
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(2, 4), e(9, 6)]);
    let mut expected = kept.clone();
    expected.extend(stored(&batch, 6, 9));
    assert_eq!(all(&log), expected);
    assert_eq!(
        log.offset_for_timestamp(NOW + 5).unwrap(),
        Some((6, NOW + 5))
    );
    // Clean reopen and crash reopen keep contents and epochs.
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(all(&log), expected);
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(2, 4), e(9, 6)]);
    drop(log);
    std::fs::remove_file(dir.path().join(recovery::CLEAN_SHUTDOWN_FILE)).ok();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(all(&log), expected);
    assert_eq!(log.log_end_offset(), 9);
}

#[test]
fn truncate_to_the_first_offset_of_a_segment_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    append_epochs(&mut log, &[1, 1, 1, 1, 1, 1]);
    let first = *log.sealed.keys().next().unwrap();
    let second = *log.sealed.keys().nth(1).unwrap();
    assert!(log.truncate_to(second).unwrap());
    assert_eq!(log.log_end_offset(), second);
    assert_eq!(
        log.active.base_offset(),
        first,
        "the previous segment is active again"
    );
    assert!(!segment_path(dir.path(), second, "log").exists());
    let batch = simple_batch("again", 2, NOW);
    assert_eq!(log.append(&batch, 1, NOW).unwrap().base_offset, second);
    assert!(log.truncate_to(0).unwrap());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(log.segment_count(), 1);
    assert!(log.epoch_entries().is_empty());
    assert_eq!(log.end_offset_for_epoch(1), None);
    assert!(all(&log).is_empty());
}

#[test]
fn truncation_under_an_in_flight_read_leaves_the_reader_the_old_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    let before = append_epochs(&mut log, &[1, 1, 1]);
    let path = log_file(dir.path(), 0);
    let inode = std::fs::metadata(&path).unwrap().ino();
    let slices = log.read_slices(0, usize::MAX, i64::MAX).unwrap();
    log.truncate_to(2).unwrap();
    append_epochs(&mut log, &[2, 2]);
    let mut seen = Vec::new();
    for slice in &slices {
        slice.read_into(&mut seen).unwrap();
    }
    assert_eq!(seen, before, "the reader still sees what it was given");
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode, "copied");
    drop(slices);
    // Without readers the file is cut in place.
    let inode = std::fs::metadata(&path).unwrap().ino();
    log.truncate_to(4).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        inode,
        "cut in place"
    );
    assert_eq!(batch_ranges(&all(&log)), vec![(0, 1), (2, 3)]);
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(2, 2)]);
}

#[test]
fn truncate_fully_starts_an_empty_log_at_the_offset() {
    for (offset, label) in [(100, "above the end"), (5, "inside"), (0, "at the start")] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_segments()).unwrap();
        append_epochs(&mut log, &[1, 1, 2, 2, 2, 2]);
        log.truncate_fully_and_start_at(offset).unwrap();
        assert_eq!(log.log_start_offset(), offset, "{label}");
        assert_eq!(log.log_end_offset(), offset, "{label}");
        assert_eq!(log.segment_count(), 1, "{label}");
        assert!(log.epoch_entries().is_empty(), "{label}");
        let logs: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".log"))
            .collect();
        assert_eq!(logs, vec![format!("{offset:020}.log")], "{label}");
        let batch = simple_batch("new", 2, NOW);
        assert_eq!(log.append(&batch, 3, NOW).unwrap().base_offset, offset);
        drop(log);
        let log = Log::open(dir.path(), small_segments()).unwrap();
        assert_eq!(all(&log), stored(&batch, offset, 3), "{label}");
        assert_eq!(log.epoch_entries(), &[e(3, offset)], "{label}");
    }
}

#[test]
fn truncate_below_the_log_start_truncates_fully() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    log.truncate_fully_and_start_at(50).unwrap();
    append_epochs(&mut log, &[1, 1]);
    assert!(log.truncate_to(10).unwrap());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
    assert!(log.epoch_entries().is_empty());
    assert!(log.truncate_fully_and_start_at(-1).is_err());
}

#[test]
fn truncation_clamps_the_cleaner_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    append_epochs(&mut log, &[1, 1, 1, 1, 1, 1]);
    compact::swap::write_checkpoint(dir.path(), 10).unwrap();
    log.cleaner.first_dirty_offset = 10;
    log.truncate_to(4).unwrap();
    assert_eq!(log.cleaner.first_dirty_offset, 4);
    assert_eq!(compact::swap::read_checkpoint(dir.path()), Some(4));
}

/// A leader log's stored bytes, to copy.
fn leader_bytes(epochs: &[(i64, i32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &(base, epoch)) in epochs.iter().enumerate() {
        out.extend(stored(&simple_batch(&format!("l{i}"), 2, NOW), base, epoch));
    }
    out
}

#[test]
fn append_replicated_stores_the_leaders_bytes_as_they_are() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(leader_dir.path(), small_segments()).unwrap();
    append_epochs(&mut leader, &[1, 1, 2, 2, 2, 4]);
    let dir = tempfile::tempdir().unwrap();
    let mut follower = Log::open(dir.path(), small_segments()).unwrap();
    // Copy in two fetches.
    let first = leader.read(0, 200, i64::MAX).unwrap();
    let info = follower.append_replicated(&first).unwrap();
    assert_eq!(info.base_offset, 0);
    assert!(info.record_count >= 2);
    let rest = leader
        .read(follower.log_end_offset(), usize::MAX, i64::MAX)
        .unwrap();
    let info = follower.append_replicated(&rest).unwrap();
    assert_eq!(info.last_offset, 11);
    assert!(info.rolled, "small segments roll");
    assert_eq!(all(&follower), all(&leader));
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    assert_eq!(follower.epoch_entries(), &[e(1, 0), e(2, 4), e(4, 10)]);
    assert!(follower.segment_count() > 1);
    drop(follower);
    let follower = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(all(&follower), all(&leader));
}

#[test]
fn append_replicated_refuses_overlaps_and_damage_without_appending() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    log.append_replicated(&leader_bytes(&[(0, 1), (2, 1)]))
        .unwrap();
    let before = all(&log);
    match log.append_replicated(&leader_bytes(&[(3, 1)])) {
        Err(LogError::OffsetMismatch { expected, got }) => assert_eq!((expected, got), (4, 3)),
        other => panic!("unexpected {other:?}"),
    }
    // A good batch followed by one that overlaps it: nothing is appended.
    assert!(matches!(
        log.append_replicated(&leader_bytes(&[(4, 2), (5, 2)])),
        Err(LogError::OffsetMismatch {
            expected: 6,
            got: 5
        })
    ));
    let mut damaged = leader_bytes(&[(4, 2), (6, 2)]);
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    assert!(matches!(
        log.append_replicated(&damaged),
        Err(LogError::Batch(BatchError::CrcMismatch { .. }))
    ));
    let mut torn = leader_bytes(&[(4, 2)]);
    torn.pop();
    assert!(matches!(
        log.append_replicated(&torn),
        Err(LogError::Batch(BatchError::Truncated { .. }))
    ));
    assert!(log.append_replicated(&[]).is_err());
    assert_eq!(all(&log), before);
    assert_eq!(log.epoch_entries(), &[e(1, 0)]);
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn append_replicated_keeps_a_compacted_leaders_gaps_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    let bytes = leader_bytes(&[(0, 1), (10, 1), (12, 3), (40, 3), (42, 3), (90, 5)]);
    log.append_replicated(&bytes).unwrap();
    assert_eq!(log.log_end_offset(), 92);
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(3, 12), e(5, 90)]);
    assert_eq!(log.end_offset_for_epoch(4), Some((3, 90)));
    // A new segment starts at the base of the batch that rolled it.
    for base in log.sealed.keys().chain([&log.active.base_offset()]) {
        assert!([0, 10, 12, 40, 42, 90].contains(base), "{base}");
    }
    assert_eq!(
        batch_ranges(&log.read(5, usize::MAX, i64::MAX).unwrap())[0],
        (10, 11)
    );
    // Truncating inside a gap cuts at the next batch.
    log.truncate_to(30).unwrap();
    assert_eq!(log.log_end_offset(), 14);
    log.append_replicated(&leader_bytes(&[(40, 3), (42, 3)]))
        .unwrap();
    let expected = all(&log);
    drop(log); // a crash: no clean-shutdown marker
    let log = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(all(&log), expected);
    assert_eq!(log.log_end_offset(), 44);
    assert_eq!(log.epoch_entries(), &[e(1, 0), e(3, 12)]);
}

#[test]
fn offsets_for_leader_epoch_answers_as_a_kafka_leader() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.offsets_for_leader_epoch(0), (-1, -1), "empty log");
    // Epochs 2, 2, 5, 7: entries (2, 0), (5, 4), (7, 6); log end 8.
    append_epochs(&mut log, &[2, 2, 5, 7]);
    assert_eq!(log.epoch_entries(), &[e(2, 0), e(5, 4), e(7, 6)]);
    assert_eq!(
        log.offsets_for_leader_epoch(7),
        (7, 8),
        "latest: the log end"
    );
    assert_eq!(log.offsets_for_leader_epoch(5), (5, 6));
    assert_eq!(
        log.offsets_for_leader_epoch(6),
        (5, 6),
        "a gap answers the floor"
    );
    assert_eq!(log.offsets_for_leader_epoch(2), (2, 4));
    assert_eq!(
        log.offsets_for_leader_epoch(1),
        (1, 0),
        "below the first: itself, with the first start offset"
    );
    assert_eq!(
        log.offsets_for_leader_epoch(8),
        (-1, -1),
        "above the latest"
    );
    assert_eq!(log.offsets_for_leader_epoch(-1), (-1, -1));
}

#[test]
fn an_epoch_begun_at_the_log_end_without_data_goes_with_a_truncation_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    append_epochs(&mut log, &[0, 0]);
    // This broker led at epoch 1 for a moment and appended nothing.
    log.start_leader_epoch(1).unwrap();
    assert_eq!(log.latest_epoch(), Some(1));
    let end = log.log_end_offset();
    // The new leader (epoch 2) never had epoch 1: it answers "diverging at epoch 0, end 4",
    // and the follower truncates to 4, its own log end.
    assert!(log.truncate_to(end).unwrap(), "the empty epoch is removed");
    assert_eq!(log.log_end_offset(), end, "no batch goes");
    assert_eq!(log.epoch_entries(), &[e(0, 0)]);
    assert_eq!(
        log.latest_epoch(),
        Some(0),
        "the next fetch asks about epoch 0"
    );
    assert!(!log.truncate_to(end).unwrap(), "nothing left to remove");
    assert_eq!(epoch_file(dir.path()), "0\n1\n0 0\n", "persisted");
}
