//! Tests of `Log`: appends and reads, indexes, rolling, retention, flush policy, recovery.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use kafka_protocol::records::Compression;

use super::batch::{validate_produce_batch, write_offset_and_epoch, BatchIter, HEADER_LEN};
use super::recovery::CLEAN_SHUTDOWN_FILE;
use super::segment::segment_path;
use super::testutil::{batch_bytes, compressed_batch, simple_batch, TestRecord};
use super::*;

const NOW: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

/// The bytes the log should store for `batch` appended at `base` in `epoch`.
fn stored(batch: &[u8], base: i64, epoch: i32) -> Vec<u8> {
    let mut out = batch.to_vec();
    write_offset_and_epoch(&mut out, base, epoch);
    out
}

/// `(base_offset, last_offset)` of each batch in a read result; also checks every CRC.
fn batch_ranges(bytes: &[u8]) -> Vec<(i64, i64)> {
    BatchIter::new(bytes)
        .verify_crc(true)
        .map(|r| {
            let (_, h) = r.unwrap();
            (h.base_offset, h.last_offset())
        })
        .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn log_file(dir: &Path, base: i64) -> PathBuf {
    segment_path(dir, base, "log")
}

/// Size of a batch of `n` records as `fill` builds it.
fn batch_len(n: usize) -> u64 {
    simple_batch("b000", n, NOW).len() as u64
}

/// Appends `batches` (record counts) and returns the original batch bytes.
fn fill(log: &mut Log, counts: &[usize], timestamp: i64) -> Vec<Vec<u8>> {
    counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let batch = simple_batch(&format!("b{i:03}"), n, timestamp);
            log.append(&batch, 3, timestamp).unwrap();
            batch
        })
        .collect()
}

#[test]
fn append_then_read_round_trips_bytes_with_offsets_and_epoch_patched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let batches = [
        simple_batch("a", 3, NOW),
        simple_batch("b", 1, NOW + 1),
        simple_batch("c", 2, NOW + 2),
    ];
    let infos: Vec<AppendInfo> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| log.append(b, 5 + i as i32, NOW).unwrap())
        .collect();
    assert_eq!(
        infos
            .iter()
            .map(|i| (i.base_offset, i.last_offset, i.record_count))
            .collect::<Vec<_>>(),
        vec![(0, 2, 3), (3, 3, 1), (4, 5, 2)]
    );
    assert_eq!(infos[2].max_timestamp, NOW + 2);
    assert_eq!(infos[0].log_append_time, None);
    assert_eq!(log.log_end_offset(), 6);

    let read = log.read(0, usize::MAX, 6).unwrap();
    let mut expected = stored(&batches[0], 0, 5);
    expected.extend(stored(&batches[1], 3, 6));
    expected.extend(stored(&batches[2], 4, 7));
    assert_eq!(read.as_ref(), expected.as_slice());
    // Every stored batch still passes produce validation (CRC untouched by the patch).
    for (pos, h) in BatchIter::new(&read).map(Result::unwrap) {
        validate_produce_batch(&read[pos..pos + h.total_len()]).unwrap();
    }
    assert_eq!(log.size_bytes(), expected.len() as u64);
    assert_eq!(file_len(&log_file(dir.path(), 0)), expected.len() as u64);
}

#[test]
fn read_from_the_middle_of_a_batch_starts_with_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    let batches = fill(&mut log, &[3, 4, 2], NOW);
    let read = log.read(5, usize::MAX, 100).unwrap();
    assert_eq!(batch_ranges(&read), vec![(3, 6), (7, 8)]);
    let mut expected = stored(&batches[1], 3, 3);
    expected.extend(stored(&batches[2], 7, 3));
    assert_eq!(read.as_ref(), expected.as_slice());
    assert_eq!(
        batch_ranges(&log.read(8, usize::MAX, 100).unwrap()),
        vec![(7, 8)]
    );
}

#[test]
fn read_honours_max_bytes_but_always_returns_the_first_batch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    let batches = fill(&mut log, &[5, 5, 5], NOW);
    let (l0, l1) = (batches[0].len(), batches[1].len());
    assert_eq!(batch_ranges(&log.read(0, 0, 15).unwrap()), vec![(0, 4)]);
    assert_eq!(batch_ranges(&log.read(0, 1, 15).unwrap()), vec![(0, 4)]);
    assert_eq!(
        batch_ranges(&log.read(0, l0 + l1 - 1, 15).unwrap()),
        vec![(0, 4)]
    );
    assert_eq!(
        batch_ranges(&log.read(0, l0 + l1, 15).unwrap()),
        vec![(0, 4), (5, 9)]
    );
    let all = log.read(2, usize::MAX, 15).unwrap();
    assert_eq!(all.len(), batches.iter().map(Vec::len).sum::<usize>());
}

#[test]
fn read_stops_at_the_upper_bound_and_checks_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    fill(&mut log, &[3, 3, 3], NOW);
    assert_eq!(
        batch_ranges(&log.read(0, usize::MAX, 3).unwrap()),
        vec![(0, 2)]
    );
    // A batch straddling the bound is returned whole; one starting at it is not.
    assert_eq!(
        batch_ranges(&log.read(0, usize::MAX, 4).unwrap()),
        vec![(0, 2), (3, 5)]
    );
    assert!(log.read(3, usize::MAX, 3).unwrap().is_empty());
    assert!(log.read(0, usize::MAX, 0).unwrap().is_empty());
    assert!(
        log.read(9, usize::MAX, 9).unwrap().is_empty(),
        "log end offset reads empty"
    );
    for bad in [-1, 10] {
        match log.read(bad, 100, 9) {
            Err(LogError::OffsetOutOfRange {
                requested,
                log_start: 0,
                log_end: 9,
            }) => assert_eq!(requested, bad),
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
    }
}

#[test]
fn rolls_by_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_len(2);
    let cfg = LogConfig {
        segment_bytes: 2 * one,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let batches = fill(&mut log, &[2, 2, 2, 2, 2], NOW);
    assert!(batches.iter().all(|b| b.len() as u64 == one));
    assert_eq!(log.segment_count(), 3);
    for base in [0, 4, 8] {
        assert!(log_file(dir.path(), base).exists(), "segment {base}");
    }
    assert_eq!(file_len(&log_file(dir.path(), 0)), 2 * one);
    assert_eq!(file_len(&log_file(dir.path(), 8)), one);
    let all = log.read(0, usize::MAX, 10).unwrap();
    assert_eq!(
        batch_ranges(&all),
        vec![(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    );
    // Starting inside the second segment, limited to two batches, crossing into the third.
    let part = log.read(7, 2 * one as usize, 10).unwrap();
    assert_eq!(batch_ranges(&part), vec![(6, 7), (8, 9)]);
    // From the end of a sealed segment's range into the next one.
    assert_eq!(
        batch_ranges(&log.read(4, one as usize, 10).unwrap()),
        vec![(4, 5)]
    );
    // The upper bound stops at a segment boundary.
    assert_eq!(
        batch_ranges(&log.read(0, usize::MAX, 4).unwrap()),
        vec![(0, 1), (2, 3)]
    );
}

#[test]
fn a_batch_larger_than_segment_bytes_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 10,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    fill(&mut log, &[1, 1, 1], NOW);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(
        batch_ranges(&log.read(0, usize::MAX, 3).unwrap()),
        vec![(0, 0), (1, 1), (2, 2)]
    );
}

#[test]
fn rolls_by_time_since_the_first_append() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1_000,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let batch = simple_batch("t", 1, NOW);
    log.append(&batch, 0, NOW).unwrap();
    log.append(&batch, 0, NOW + 1_000).unwrap();
    assert_eq!(
        log.segment_count(),
        1,
        "exactly segment.ms old does not roll"
    );
    log.append(&batch, 0, NOW + 1_001).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.active.base_offset(), 2);
    log.append(&batch, 0, NOW + 1_500).unwrap();
    assert_eq!(
        log.segment_count(),
        2,
        "the new segment's clock starts at its first append"
    );
    log.append(&batch, 0, NOW + 2_002).unwrap();
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn offset_index_lookups_find_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_len(3) as u32;
    let cfg = LogConfig {
        index_interval_bytes: 2 * one,
        segment_bytes: 40 * u64::from(one),
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    fill(&mut log, &[3; 60], NOW);
    assert_eq!(log.segment_count(), 2);
    let first = log.sealed.values().next().unwrap();
    // An entry every third batch: more than two batches' bytes since the previous one.
    let entries = first.offset_index.entries();
    assert_eq!(entries.len(), 13);
    assert_eq!((entries[0].offset, entries[0].position), (9, 3 * one));
    assert_eq!(file_len(first.offset_index.path()), 13 * 8);
    for offset in 0..180 {
        let read = log.read(offset, 1, 180).unwrap();
        let base = offset - offset % 3;
        assert_eq!(
            batch_ranges(&read),
            vec![(base, base + 2)],
            "offset {offset}"
        );
    }
}

fn timestamp_log(dir: &Path) -> Log {
    let cfg = LogConfig {
        segment_bytes: 400,
        ..config()
    };
    let mut log = Log::open(dir, cfg).unwrap();
    let a = batch_bytes(&[
        TestRecord::new(100, b"k", b"a0"),
        TestRecord::new(105, b"k", b"a1"),
        TestRecord::new(103, b"k", b"a2"),
    ]);
    let b = batch_bytes(&[
        TestRecord::new(110, b"k", b"b0"),
        TestRecord::new(120, b"k", b"b1"),
    ]);
    let c = compressed_batch(
        &[(130, b"c0"), (140, b"c1"), (150, b"c2")],
        Compression::Gzip,
    );
    let d = compressed_batch(&[(160, b"d0"), (175, b"d1")], Compression::Zstd);
    let e = batch_bytes(&[
        TestRecord::new(175, b"k", b"e0"),
        TestRecord::new(170, b"k", b"e1"),
    ]);
    for batch in [a, b, c, d, e] {
        validate_produce_batch(&batch).unwrap();
        log.append(&batch, 0, NOW).unwrap();
    }
    log
}

#[test]
fn offset_for_timestamp_finds_the_exact_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = timestamp_log(dir.path());
    assert!(log.segment_count() > 1, "lookups must cross segments");
    let cases = [
        (0, Some((0, 100))),
        (100, Some((0, 100))),
        (101, Some((1, 105))),
        (104, Some((1, 105))),
        (106, Some((3, 110))),
        (111, Some((4, 120))),
        (121, Some((5, 130))),
        (131, Some((6, 140))), // inside a gzip batch
        (150, Some((7, 150))),
        (161, Some((9, 175))), // inside a zstd batch
        (175, Some((9, 175))),
        (176, None),
    ];
    for (ts, expected) in cases {
        assert_eq!(
            log.offset_for_timestamp(ts).unwrap(),
            expected,
            "timestamp {ts}"
        );
    }
}

#[test]
fn max_timestamp_is_the_first_record_with_the_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let log = timestamp_log(dir.path());
    assert_eq!(log.max_timestamp().unwrap(), Some((9, 175)));

    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), None);
    let a = batch_bytes(&[
        TestRecord::new(100, b"k", b"a"),
        TestRecord::new(300, b"k", b"b"),
        TestRecord::new(200, b"k", b"c"),
    ]);
    let b = batch_bytes(&[TestRecord::new(300, b"k", b"d")]);
    log.append(&a, 0, NOW).unwrap();
    log.append(&b, 0, NOW).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), Some((1, 300)));
}

#[test]
fn log_append_time_stamps_batches_and_keeps_crc_valid() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        log_append_time: true,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let batch = simple_batch("l", 2, 5);
    let info = log.append(&batch, 1, NOW).unwrap();
    assert_eq!(info.log_append_time, Some(NOW));
    assert_eq!(info.max_timestamp, NOW);
    let read = log.read(0, usize::MAX, 2).unwrap();
    let header = validate_produce_batch(&read).unwrap();
    assert!(header.timestamp_type_is_log_append());
    assert_eq!(header.max_timestamp, NOW);
    assert_eq!(
        &read[HEADER_LEN..],
        &batch[HEADER_LEN..],
        "records untouched"
    );
    assert_eq!(log.offset_for_timestamp(NOW - 1).unwrap(), Some((0, NOW)));
    assert_eq!(log.max_timestamp().unwrap(), Some((0, NOW)));
}

#[test]
fn retention_by_time_deletes_old_segments_and_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let one = simple_batch("r0", 2, 0).len() as u64;
    let cfg = LogConfig {
        segment_bytes: one,
        retention_ms: 1_000,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    for (i, ts) in [NOW, NOW + 500, NOW + 2_000, NOW + 3_000]
        .into_iter()
        .enumerate()
    {
        log.append(&simple_batch(&format!("r{i}"), 2, ts), 0, ts)
            .unwrap();
    }
    assert_eq!(log.segment_count(), 4);
    let report = log.apply_retention(NOW + 1_600).unwrap();
    assert_eq!(
        report,
        RetentionReport {
            deleted_segments: 2,
            deleted_bytes: 2 * one,
            log_start_offset: 4
        }
    );
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (4, 8));
    assert!(!log_file(dir.path(), 0).exists());
    assert!(!segment_path(dir.path(), 2, "index").exists());
    assert!(matches!(
        log.read(3, 100, 8),
        Err(LogError::OffsetOutOfRange { log_start: 4, .. })
    ));
    assert_eq!(
        batch_ranges(&log.read(4, usize::MAX, 8).unwrap()),
        vec![(4, 5), (6, 7)]
    );

    // Everything expired: the active segment is rolled first; the log end stays put.
    let report = log.apply_retention(NOW + 10_000).unwrap();
    assert_eq!(report.deleted_segments, 2);
    assert_eq!(log.segment_count(), 1);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 8));
    assert!(log.read(8, 100, 8).unwrap().is_empty());
    let info = log
        .append(&simple_batch("after", 1, NOW), 0, NOW + 10_001)
        .unwrap();
    assert_eq!(info.base_offset, 8);
    // An empty active segment is never deleted.
    let mut empty = Log::open(dir.path().join("empty"), log.config().clone()).unwrap();
    assert_eq!(empty.apply_retention(i64::MAX).unwrap().deleted_segments, 0);
}

#[test]
fn retention_by_size_keeps_at_least_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_len(2);
    let cfg = LogConfig {
        segment_bytes: one,
        retention_bytes: (2 * one + 1) as i64,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    fill(&mut log, &[2; 5], NOW);
    assert_eq!(log.segment_count(), 5);
    let report = log.apply_retention(NOW).unwrap();
    // 5 segments; dropping the oldest two leaves 3 * one >= 2 * one + 1; a third would not.
    assert_eq!(report.deleted_segments, 2);
    assert_eq!(report.log_start_offset, 4);
    assert_eq!(log.size_bytes(), 3 * one);
    assert_eq!(log.apply_retention(NOW).unwrap().deleted_segments, 0);

    let mut cfg = log.config().clone();
    cfg.retention_bytes = 0;
    log.set_config(cfg);
    log.apply_retention(NOW).unwrap();
    assert_eq!((log.segment_count(), log.size_bytes()), (1, 0));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
}

#[test]
fn clean_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 400,
        ..config()
    };
    let (before, ts_lookup, max_ts, segments, index_sizes) = {
        let mut log = timestamp_log(dir.path());
        fill(&mut log, &[2, 3], 200);
        let all = log.read(0, usize::MAX, i64::MAX).unwrap();
        let lookup = log.offset_for_timestamp(131).unwrap();
        let index_sizes: Vec<u64> = log
            .segments()
            .map(|s| file_len(s.offset_index.path()) + file_len(s.time_index.path()))
            .collect();
        log.close().unwrap();
        assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
        (
            all,
            lookup,
            log.max_timestamp().unwrap(),
            log.segment_count(),
            index_sizes,
        )
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.log_end_offset(), 17);
    assert_eq!(log.read(0, usize::MAX, i64::MAX).unwrap(), before);
    assert_eq!(log.offset_for_timestamp(131).unwrap(), ts_lookup);
    assert_eq!(log.max_timestamp().unwrap(), max_ts);
    assert_eq!(max_ts, Some((12, 200)));
    let sizes: Vec<u64> = log
        .segments()
        .map(|s| file_len(s.offset_index.path()) + file_len(s.time_index.path()))
        .collect();
    assert_eq!(sizes, index_sizes, "indexes are reused, not rewritten");
}

#[test]
fn torn_tail_is_truncated_to_the_last_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (batches, full) = {
        let mut log = Log::open(dir.path(), config()).unwrap();
        let batches = fill(&mut log, &[2, 3, 4], NOW);
        (batches, log.read(0, usize::MAX, 9).unwrap())
        // Dropped without close: as after kill -9.
    };
    let path = log_file(dir.path(), 0);
    let keep = (batches[0].len() + batches[1].len()) as u64;
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(keep + 30).unwrap(); // cut the third batch mid-way
    drop(file);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0xab; 100])
        .unwrap();

    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(file_len(&path), keep);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(
        log.read(0, usize::MAX, 100).unwrap(),
        full.slice(..keep as usize)
    );
    let info = log.append(&batches[2], 9, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (5, 8));
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(
        batch_ranges(&log.read(0, usize::MAX, 9).unwrap()),
        vec![(0, 1), (2, 4), (5, 8)]
    );
}

#[test]
fn every_cut_point_of_the_tail_recovers_to_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let batches = {
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[1, 2, 1], NOW)
    };
    let path = log_file(dir.path(), 0);
    let original = std::fs::read(&path).unwrap();
    let ends: Vec<usize> = batches
        .iter()
        .scan(0, |end, b| {
            *end += b.len();
            Some(*end)
        })
        .collect();
    for cut in 0..=original.len() {
        std::fs::write(&path, &original[..cut]).unwrap();
        let log = Log::open(dir.path(), config()).unwrap();
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        let expected_end = [0, 1, 3, 4][whole];
        assert_eq!(log.log_end_offset(), expected_end, "cut at {cut}");
        assert_eq!(
            file_len(&path),
            [0, ends[0], ends[1], ends[2]][whole] as u64
        );
    }
}

#[test]
fn corrupt_crc_in_the_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let batches = {
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[2, 2, 2], NOW)
    };
    let path = log_file(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    let second = batches[0].len();
    bytes[second + HEADER_LEN + 4] ^= 0x55; // inside the second batch's records
    std::fs::write(&path, &bytes).unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(file_len(&path), second as u64);
    assert_eq!(log.append(&batches[1], 0, NOW).unwrap().base_offset, 2);
}

#[test]
fn offsets_that_do_not_continue_are_truncated_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let batches = {
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[2, 2], NOW)
    };
    // Append a well-formed batch whose base offset skips ahead.
    let path = log_file(dir.path(), 0);
    let rogue = stored(&batches[0], 40, 0);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&rogue)
        .unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(
        file_len(&path),
        (batches[0].len() + batches[1].len()) as u64
    );
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let one = simple_batch("x", 1, NOW).len() as u64;
    let cfg = LogConfig {
        segment_bytes: 10 * one,
        index_interval_bytes: one as u32,
        ..config()
    };
    let (index_bytes, time_bytes) = {
        let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
        for i in 0..25 {
            log.append(&simple_batch("x", 1, NOW + i), 0, NOW).unwrap();
        }
        log.close().unwrap();
        let read = |base, ext| std::fs::read(segment_path(dir.path(), base, ext)).unwrap();
        (
            [read(0, "index"), read(10, "index"), read(20, "index")],
            [
                read(0, "timeindex"),
                read(10, "timeindex"),
                read(20, "timeindex"),
            ],
        )
    };
    // Entries every other batch (2, 4, 6, 8); sealed segments also carry a final time entry.
    assert_eq!(index_bytes[0].len(), 4 * 8);
    assert_eq!(time_bytes[0].len(), 5 * 12);
    assert_eq!(
        &time_bytes[0][48..],
        &[&(NOW + 9).to_be_bytes()[..], &[0, 0, 0, 9]].concat()
    );
    assert_eq!((index_bytes[2].len(), time_bytes[2].len()), (2 * 8, 2 * 12));
    let p = |base, ext| segment_path(dir.path(), base, ext);
    std::fs::remove_file(p(0, "index")).unwrap();
    std::fs::remove_file(p(20, "timeindex")).unwrap();
    OpenOptions::new()
        .append(true)
        .open(p(10, "timeindex"))
        .unwrap()
        .write_all(&[1, 2, 3])
        .unwrap();
    // An entry pointing past the end of the log file.
    let mut bogus = index_bytes[20 / 10].clone();
    bogus.extend_from_slice(&[0, 0, 0, 9, 0, 1, 0, 0]);
    std::fs::write(p(20, "index"), &bogus).unwrap();
    // A non-monotonic offset index in the middle segment.
    let mut swapped = index_bytes[1].clone();
    swapped.rotate_left(8);
    std::fs::write(p(10, "index"), &swapped).unwrap();

    let log = Log::open(dir.path(), cfg).unwrap();
    for (i, base) in [0, 10, 20].into_iter().enumerate() {
        assert_eq!(
            std::fs::read(p(base, "index")).unwrap(),
            index_bytes[i],
            "index {base}"
        );
        assert_eq!(
            std::fs::read(p(base, "timeindex")).unwrap(),
            time_bytes[i],
            "timeindex {base}"
        );
    }
    for offset in 0..25 {
        assert_eq!(
            batch_ranges(&log.read(offset, 1, 25).unwrap()),
            vec![(offset, offset)]
        );
        assert_eq!(
            log.offset_for_timestamp(NOW + offset).unwrap(),
            Some((offset, NOW + offset))
        );
    }
    assert_eq!(log.max_timestamp().unwrap(), Some((24, NOW + 24)));
}

#[test]
fn stray_files_are_cleaned_up_and_unknown_files_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[1], NOW);
    }
    let d = dir.path();
    for name in [
        "00000000000000000005.log.deleted",
        "00000000000000000000.index.tmp",
    ] {
        std::fs::write(d.join(name), b"junk").unwrap();
    }
    std::fs::write(segment_path(d, 77, "index"), b"orphan!!").unwrap();
    std::fs::write(d.join("leader-epoch-checkpoint"), b"0\n").unwrap();
    let log = Log::open(d, config()).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 1);
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex",
            "leader-epoch-checkpoint",
        ]
    );
}

#[test]
fn writes_after_close_remove_the_clean_marker() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    fill(&mut log, &[1], NOW);
    log.close().unwrap();
    assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
    fill(&mut log, &[1], NOW);
    assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
    drop(log);
    // Unclean now: a torn tail must still be found.
    OpenOptions::new()
        .append(true)
        .open(log_file(dir.path(), 0))
        .unwrap()
        .write_all(&[0; 20])
        .unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn append_rejects_malformed_batches_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    let batch = simple_batch("m", 2, NOW);
    for bad in [&batch[..10], &batch[..batch.len() - 1]] {
        assert!(matches!(log.append(bad, 0, NOW), Err(LogError::Batch(_))));
    }
    let mut longer = batch.clone();
    longer.push(0);
    assert!(matches!(
        log.append(&longer, 0, NOW),
        Err(LogError::Batch(_))
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
}

#[test]
fn flush_policies() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: 3,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    fill(&mut log, &[2], NOW);
    assert_eq!(log.unflushed_messages, 2);
    fill(&mut log, &[1], NOW);
    assert_eq!(
        log.unflushed_messages, 0,
        "flushed after flush.messages records"
    );

    let mut cfg = log.config().clone();
    cfg.flush_ms = 1_000;
    log.set_config(cfg);
    log.last_flush_ms = NOW;
    assert!(!log.flush_if_due(NOW + 5_000).unwrap(), "nothing to flush");
    fill(&mut log, &[1], NOW);
    assert!(!log.flush_if_due(NOW + 999).unwrap());
    assert!(log.flush_if_due(NOW + 1_000).unwrap());
    assert_eq!(log.unflushed_messages, 0);
    fill(&mut log, &[1], NOW);
    log.flush().unwrap();
    assert_eq!(log.unflushed_messages, 0);
    let mut cfg = log.config().clone();
    cfg.flush_ms = i64::MAX;
    log.set_config(cfg);
    fill(&mut log, &[1], NOW);
    assert!(!log.flush_if_due(i64::MAX).unwrap());
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = Log::open(&path, config()).unwrap();
    fill(&mut log, &[1], NOW);
    assert_eq!(log.dir(), path.as_path());
    log.delete().unwrap();
    assert!(!path.exists());
}

/// Deterministic xorshift for the randomized tests below.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn offsets_strictly_increase_and_every_offset_reads_back_across_rolls_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 150,
        ..config()
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
    let mut expected_bases = Vec::new();
    let mut next = 0;
    for round in 0..3 {
        for i in 0..40 {
            let n = 1 + (next_rand(&mut rng) % 5) as usize;
            let info = log
                .append(&simple_batch(&format!("{round}-{i}"), n, NOW), round, NOW)
                .unwrap();
            assert_eq!(info.base_offset, next);
            expected_bases.push((info.base_offset, info.last_offset));
            next = info.last_offset + 1;
        }
        if round == 1 {
            log.close().unwrap();
        }
        drop(log);
        log = Log::open(dir.path(), cfg.clone()).unwrap();
        assert_eq!(log.log_end_offset(), next);
    }
    assert!(log.segment_count() > 5);
    assert_eq!(
        batch_ranges(&log.read(0, usize::MAX, next).unwrap()),
        expected_bases
    );
    for &(base, last) in &expected_bases {
        for offset in base..=last {
            let got = batch_ranges(&log.read(offset, 0, next).unwrap());
            assert_eq!(got, vec![(base, last)], "offset {offset}");
        }
    }
}

#[test]
fn recovery_never_panics_on_random_tail_garbage() {
    let mut rng = 0x1234_5678_9abc_def1u64;
    for trial in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let kept = {
            let mut log = Log::open(dir.path(), config()).unwrap();
            fill(&mut log, &[2, 1], NOW);
            log.size_bytes()
        };
        let len = (next_rand(&mut rng) % 200) as usize;
        let garbage: Vec<u8> = (0..len).map(|_| next_rand(&mut rng) as u8).collect();
        let path = log_file(dir.path(), 0);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&garbage)
            .unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        assert_eq!(log.log_end_offset(), 3, "trial {trial}");
        assert_eq!(file_len(&path), kept, "trial {trial}");
        assert_eq!(
            log.append(&simple_batch("z", 1, NOW), 0, NOW)
                .unwrap()
                .base_offset,
            3
        );
    }
}
