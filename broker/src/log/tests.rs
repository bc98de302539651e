//! Tests of `Log`: appends and reads, offset and time lookups, rolling, retention, flush.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::batch::{validate_produce_batch, BatchIter, HEADER_LEN};
use super::segment::segment_path;
use super::testutil::*;
use super::*;

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

/// Reads with every kind of limit agree with a flat model of the log: starting at the batch
/// holding the offset, whole batches in order while below the bound and within the byte
/// budget (the first one always), across segment and sparse-index boundaries.
#[test]
fn reads_match_a_flat_model_across_segments_and_a_sparse_index() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 3000,
        index_interval_bytes: 300,
        ..config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let mut state = 0x5eed_u64;
    let counts: Vec<usize> = (0..60)
        .map(|_| 1 + (next_rand(&mut state) % 12) as usize)
        .collect();
    let batches = fill(&mut log, &counts, NOW);
    assert!(log.segment_count() > 3, "the test needs several segments");
    let mut model = Vec::new(); // (base, last, len)
    let mut next = 0i64;
    for (batch, &n) in batches.iter().zip(&counts) {
        model.push((next, next + n as i64 - 1, batch.len()));
        next += n as i64;
    }
    let end = next;
    let expect = |offset: i64, max: usize, bound: i64| -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut total = 0usize;
        for &(base, last, len) in model.iter().filter(|b| b.1 >= offset) {
            if base >= bound || (!out.is_empty() && total + len > max) {
                break;
            }
            out.push((base, last));
            total += len;
        }
        out
    };
    for _ in 0..3000 {
        let offset = (next_rand(&mut state) % (end as u64 + 1)) as i64;
        let max = (next_rand(&mut state) % 4000) as usize;
        let bound = match next_rand(&mut state) % 3 {
            0 => end,
            _ => (next_rand(&mut state) % (end as u64 + 1)) as i64,
        };
        let got = batch_ranges(&log.read(offset, max, bound).unwrap());
        assert_eq!(
            got,
            expect(offset, max, bound),
            "read({offset}, {max}, {bound})"
        );
        let slices = log.read_slices(offset, max, bound).unwrap();
        assert!(slices.len() <= log.segment_count());
        assert!(slices.iter().all(|s| !s.is_empty()));
    }
}
