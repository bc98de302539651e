//! Tests of `Log` recovery: clean reopen, torn and corrupt tails, index rebuilds, stray files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::OpenOptions;
use std::io::Write;

use super::batch::HEADER_LEN;
use super::recovery::CLEAN_SHUTDOWN_FILE;
use super::segment::segment_path;
use super::testutil::*;
use super::*;

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
fn offsets_that_go_back_are_truncated_after_a_crash_and_gaps_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let batches = {
        let mut log = Log::open(dir.path(), config()).unwrap();
        fill(&mut log, &[2, 2], NOW)
    };
    let path = log_file(dir.path(), 0);
    let append_raw = |bytes: &[u8]| {
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap()
    };
    // A well-formed batch whose base offset skips ahead: a gap, as a follower copies from a
    // compacted leader. It stays.
    append_raw(&stored(&batches[0], 40, 3));
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 42);
    let kept = file_len(&path);
    assert_eq!(kept, (2 * batches[0].len() + batches[1].len()) as u64);
    assert_eq!(
        batch_ranges(&log.read(0, usize::MAX, i64::MAX).unwrap()),
        vec![(0, 1), (2, 3), (40, 41)]
    );
    drop(log);
    // One whose base offset goes back into the log: damage, truncated.
    append_raw(&stored(&batches[0], 41, 3));
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 42);
    assert_eq!(file_len(&path), kept);
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
