//! Tests of log compaction: the keep/drop rule, batch rebuilds, whole passes over a `Log`,
//! the swap cut at every step, and reads of offsets that compaction removed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::filter::{filter_batch, Fate, Filtered, OffsetMap, Rules};
use super::*;
use crate::log::batch::{parse_checked, BatchIter};
use crate::log::segment::segment_path;
use crate::log::testutil::{config, encoded_batch, EncodedRecord, NOW};
use crate::log::LogConfig;

/// One record as a consumer sees it: (offset, key, value).
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// A batch of `(key, value)` records stamped `ts`, `ts + 1`, ..., encoded by kafka-protocol
/// with `compression` and, when `producer` is set, as an idempotent producer `(id, sequence)`.
fn encoded(
    records: &[(Option<&str>, Option<&str>)],
    ts: i64,
    compression: Compression,
    producer: Option<(i64, i32)>,
) -> Vec<u8> {
    let records: Vec<EncodedRecord<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (ts + i as i64, k.map(str::as_bytes), v.map(str::as_bytes)))
        .collect();
    encoded_batch(&records, compression, producer)
}

fn kv(k: &str, v: &str) -> (Option<&'static str>, Option<&'static str>) {
    (
        Some(Box::leak(k.to_string().into_boxed_str())),
        Some(Box::leak(v.to_string().into_boxed_str())),
    )
}

/// Every record of a read result, decoded as a client would (CRCs checked by the decoder).
fn decode_all(bytes: &[u8]) -> Vec<Rec> {
    for item in BatchIter::new(bytes).verify_crc(true) {
        item.unwrap();
    }
    let mut data = Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    while !data.is_empty() {
        let set = RecordBatchDecoder::decode(&mut data).unwrap();
        for r in set.records {
            out.push((
                r.offset,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
            ));
        }
    }
    out
}

fn all_records(log: &Log) -> Vec<Rec> {
    decode_all(
        &log.read(log.log_start_offset(), usize::MAX, i64::MAX)
            .unwrap(),
    )
}

fn compact_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.01,
        delete_retention_ms: 1_000,
        index_interval_bytes: 64,
        ..config()
    }
}

/// Runs one pass if due; returns its stats.
fn pass(log: &mut Log, now: i64) -> Option<CleanStats> {
    let (_, plan) = log.plan_cleaning(now).unwrap();
    let cleaned = clean(plan?, now).unwrap();
    let stats = cleaned.stats;
    assert!(log.install_cleaned(cleaned).unwrap());
    Some(stats)
}

/// 20 rounds of updates of keys k0..k9, one batch of 10 per round (value "k{i}-u{round}").
fn updates_log(dir: &Path) -> (Log, Vec<Rec>) {
    let mut log = Log::open(dir, compact_config(700)).unwrap();
    let mut latest = Vec::new();
    for round in 0..20 {
        let recs: Vec<_> = (0..10)
            .map(|k| kv(&format!("k{k}"), &format!("k{k}-u{round}")))
            .collect();
        let info = log
            .append(&encoded(&recs, NOW, Compression::None, None), 0, NOW)
            .unwrap();
        if round == 19 {
            latest = (0..10)
                .map(|k| {
                    (
                        info.base_offset + k,
                        Some(format!("k{k}").into_bytes()),
                        Some(format!("k{k}-u19").into_bytes()),
                    )
                })
                .collect();
        }
    }
    (log, latest)
}

#[test]
fn fate_keeps_only_the_latest_and_young_tombstones() {
    let mut map = OffsetMap::default();
    let b = encoded(
        &[
            (Some("a"), Some("1")),
            (Some("b"), Some("2")),
            (Some("a"), None),
        ],
        NOW,
        Compression::None,
        None,
    );
    let mut stored = b.clone();
    crate::log::batch::write_offset_and_epoch(&mut stored, 100, 0);
    map.add_batch(&stored, &parse_header(&stored).unwrap());
    assert_eq!((map.latest(b"a"), map.latest(b"b")), (Some(102), Some(101)));
    let rules = Rules {
        map: &map,
        now_ms: NOW + 500,
        delete_retention_ms: 1_000,
    };
    assert_eq!(rules.fate(Some(b"a"), false, 100, NOW), Fate::Superseded);
    assert_eq!(rules.fate(Some(b"b"), false, 101, NOW), Fate::Keep);
    assert_eq!(rules.fate(Some(b"a"), true, 102, NOW), Fate::Keep, "young");
    assert_eq!(
        rules.fate(Some(b"z"), false, 5, NOW),
        Fate::Keep,
        "clean key"
    );
    assert_eq!(rules.fate(None, false, 103, NOW), Fate::Keyless);
    let later = Rules {
        now_ms: NOW + 1_000,
        ..rules
    };
    assert_eq!(
        later.fate(Some(b"a"), true, 102, NOW),
        Fate::ExpiredTombstone,
        "timestamp + delete.retention.ms <= now"
    );
    assert_eq!(later.fate(Some(b"b"), true, 101, NOW + 1), Fate::Keep);
}

fn rebuilt_of(original: &[u8], keep_empty: bool, map: &OffsetMap) -> Filtered {
    let rules = Rules {
        map,
        now_ms: NOW,
        delete_retention_ms: 1_000,
    };
    filter_batch(
        original,
        &parse_header(original).unwrap(),
        &rules,
        keep_empty,
    )
    .filtered
}

#[test]
fn rebuilt_batches_keep_offsets_sequences_codec_and_valid_crc() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let recs = [kv("a", "a0"), kv("b", "b0"), kv("a", "a1"), kv("c", "c0")];
        let mut batch = encoded(&recs, NOW, codec, Some((42, 7)));
        crate::log::batch::write_offset_and_epoch(&mut batch, 1_000, 3);
        let original = parse_header(&batch).unwrap();
        // A later "c" exists elsewhere: drops offsets 1000 (a, superseded here) and 1003.
        let mut map = OffsetMap::default();
        map.add_batch(&batch, &original);
        let mut later = encoded(&[kv("c", "c1")], NOW, Compression::None, None);
        crate::log::batch::write_offset_and_epoch(&mut later, 2_000, 3);
        map.add_batch(&later, &parse_header(&later).unwrap());
        let Filtered::Rebuilt(rebuilt) = rebuilt_of(&batch, false, &map) else {
            panic!("{codec:?}: expected a rebuilt batch");
        };
        let (h, _) = parse_checked(&rebuilt).expect("CRC32C valid");
        assert_eq!(h.base_offset, 1_000);
        assert_eq!(h.last_offset_delta, 3, "last offset kept");
        assert_eq!(h.record_count, 2);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 0, 7)
        );
        assert_eq!(h.partition_leader_epoch, 3);
        assert_eq!(h.attributes, original.attributes, "{codec:?}: same codec");
        assert_eq!(h.base_timestamp, original.base_timestamp);
        assert_eq!(h.max_timestamp, NOW + 2, "max over kept records");
        assert_eq!(
            decode_all(&rebuilt),
            vec![
                (1_001, Some(b"b".to_vec()), Some(b"b0".to_vec())),
                (1_002, Some(b"a".to_vec()), Some(b"a1".to_vec())),
            ],
            "{codec:?}"
        );
    }
}

#[test]
fn untouched_batches_are_copied_and_emptied_ones_dropped_unless_last_of_producer() {
    let mut batch = encoded(&[kv("a", "a0")], NOW, Compression::Gzip, Some((9, 0)));
    crate::log::batch::write_offset_and_epoch(&mut batch, 10, 0);
    let mut map = OffsetMap::default();
    map.add_batch(&batch, &parse_header(&batch).unwrap());
    assert_eq!(rebuilt_of(&batch, false, &map), Filtered::Unchanged);
    let mut newer = encoded(&[kv("a", "a1")], NOW, Compression::None, None);
    crate::log::batch::write_offset_and_epoch(&mut newer, 11, 0);
    map.add_batch(&newer, &parse_header(&newer).unwrap());
    assert_eq!(rebuilt_of(&batch, false, &map), Filtered::Dropped);
    let Filtered::Rebuilt(empty) = rebuilt_of(&batch, true, &map) else {
        panic!("the last batch of a producer stays");
    };
    let (h, _) = parse_checked(&empty).unwrap();
    assert_eq!((h.base_offset, h.record_count, h.compression()), (10, 0, 0));
    assert_eq!((h.producer_id, h.base_sequence), (9, 0));
    assert!(decode_all(&empty).is_empty());
}

#[test]
fn a_pass_keeps_latest_values_at_their_offsets_and_never_touches_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, latest) = updates_log(dir.path());
    let segments_before = log.segment_count();
    assert!(segments_before > 5, "{segments_before} segments");
    let active_base = log.active.base_offset();
    let active_path = segment_path(dir.path(), active_base, "log");
    let active_bytes = std::fs::read(&active_path).unwrap();
    let size_before = log.size_bytes();
    let stats = pass(&mut log, NOW).expect("due: everything is dirty");
    assert_eq!(stats.first_dirty, 0);
    assert_eq!(stats.dirty_end, active_base);
    assert_eq!(std::fs::read(&active_path).unwrap(), active_bytes);
    assert_eq!(log.active.base_offset(), active_base);
    let records = all_records(&log);
    // Records in the active segment are kept as they are; below it one record per key.
    let cleaned: Vec<&Rec> = records.iter().filter(|r| r.0 < active_base).collect();
    let mut keys: Vec<_> = cleaned.iter().map(|r| r.1.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        cleaned.len(),
        "one record per key below the active segment"
    );
    // The latest value of every key is where it was appended.
    for want in &latest {
        let last = records.iter().rev().find(|r| r.1 == want.1).unwrap();
        assert_eq!(last, want);
    }
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert!(log.size_bytes() < size_before / 2);
    assert_eq!(log.log_start_offset(), 0, "compaction keeps the log start");
    assert_eq!(log.log_end_offset(), 200);
    // Nothing dirty any more: no pass until new data is sealed.
    assert!(pass(&mut log, NOW).is_none());
    assert_eq!(swap::read_checkpoint(dir.path()), Some(active_base));
    // Reopening (after a crash: no close) gives the same records and indexes that work.
    drop(log);
    let log = Log::open(dir.path(), compact_config(700)).unwrap();
    assert_eq!(all_records(&log), records);
    for r in &records {
        let got = decode_all(&log.read(r.0, 1, i64::MAX).unwrap());
        assert!(got.contains(r), "read from {} finds it", r.0);
    }
}

#[test]
fn dirty_ratio_below_the_threshold_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = updates_log(dir.path());
    log.config.min_cleanable_dirty_ratio = 1.0;
    assert!(pass(&mut log, NOW).is_some(), "all dirty: ratio 1.0");
    let sealed_before = log.sealed.len();
    // A little new data sealed: the dirty share is small.
    for round in 0..3 {
        let recs = [kv("k1", &format!("k1-late{round}"))];
        log.append(&encoded(&recs, NOW, Compression::None, None), 0, NOW)
            .unwrap();
        log.roll().unwrap();
    }
    assert!(log.sealed.len() > sealed_before);
    log.config.min_cleanable_dirty_ratio = 0.9;
    let (ratio, plan) = log.plan_cleaning(NOW).unwrap();
    assert!(ratio > 0.0 && ratio < 0.9, "ratio {ratio}");
    assert!(plan.is_none());
    log.config.min_cleanable_dirty_ratio = ratio;
    assert!(pass(&mut log, NOW).is_some(), "ratio reached");
    let k1: Vec<Rec> = all_records(&log)
        .into_iter()
        .filter(|r| r.1.as_deref() == Some(b"k1"))
        .collect();
    assert_eq!(k1.len(), 1, "{k1:?}");
    assert_eq!(k1[0].2.as_deref(), Some(&b"k1-late2"[..]));
}

#[test]
fn a_full_offset_map_cleans_part_of_the_dirty_section_and_the_next_pass_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, latest) = updates_log(dir.path());
    let bases: Vec<i64> = log.sealed.keys().copied().collect();
    let (_, plan) = log.plan_cleaning(NOW).unwrap();
    let mut plan = plan.unwrap();
    plan.map_limit = 1; // full after the first segment
    let cleaned = clean(plan, NOW).unwrap();
    assert_eq!(cleaned.stats.dirty_end, bases[1]);
    assert_eq!(cleaned.stats.segments_before, 1);
    assert!(log.install_cleaned(cleaned).unwrap());
    assert_eq!(log.cleaner.first_dirty_offset, bases[1]);
    assert_eq!(swap::read_checkpoint(dir.path()), Some(bases[1]));
    // The next (unbounded) pass goes on from the checkpoint.
    let stats = pass(&mut log, NOW).unwrap();
    assert_eq!(stats.first_dirty, bases[1]);
    let records = all_records(&log);
    for want in &latest {
        assert_eq!(records.iter().rev().find(|r| r.1 == want.1), Some(want));
    }
    let below_active = records
        .iter()
        .filter(|r| r.0 < log.active.base_offset())
        .count();
    assert!(
        below_active <= 10,
        "{below_active} records below the active segment"
    );
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = updates_log(dir.path());
    log.config.min_compaction_lag_ms = 60_000;
    let (_, plan) = log.plan_cleaning(NOW + 1_000).unwrap();
    assert!(plan.is_none(), "every record is younger than the lag");
    assert!(pass(&mut log, NOW + 61_000).is_some());
}

#[test]
fn tombstones_stay_until_their_horizon_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = updates_log(dir.path());
    let tomb = encoded(
        &[(Some("k3"), None), (Some("k4"), None)],
        NOW,
        Compression::Lz4,
        None,
    );
    log.append(&tomb, 0, NOW).unwrap();
    log.roll().unwrap();
    assert!(pass(&mut log, NOW + 10).is_some());
    let has = |log: &Log, key: &[u8]| -> Vec<Rec> {
        all_records(log)
            .into_iter()
            .filter(|r| r.1.as_deref() == Some(key))
            .collect()
    };
    let k3 = has(&log, b"k3");
    assert_eq!(k3.len(), 1, "only the tombstone: {k3:?}");
    assert_eq!(k3[0].2, None);
    assert_eq!(log.cleaner.tombstone_expiry, Some(NOW + 1_000));
    // Not yet due by ratio (nothing dirty) nor by tombstones.
    assert!(pass(&mut log, NOW + 999).is_none());
    assert!(pass(&mut log, NOW + 1_000).is_some(), "tombstones due");
    assert!(has(&log, b"k3").is_empty(), "k3's horizon passed");
    assert_eq!(has(&log, b"k4").len(), 1, "k4's tombstone is 1 ms younger");
    assert_eq!(log.cleaner.tombstone_expiry, Some(NOW + 1_001));
    assert!(pass(&mut log, NOW + 1_001).is_some());
    assert!(has(&log, b"k4").is_empty());
    assert_eq!(has(&log, b"k5").len(), 1);
    assert_eq!(log.cleaner.tombstone_expiry, None);
}

#[test]
fn retention_changing_the_segments_discards_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = updates_log(dir.path());
    let before = all_records(&log);
    let (_, plan) = log.plan_cleaning(NOW).unwrap();
    let cleaned = clean(plan.unwrap(), NOW).unwrap();
    let first = log.sealed.pop_first().unwrap().1;
    first.delete().unwrap();
    let remaining: Vec<Rec> = before
        .into_iter()
        .filter(|r| r.0 >= log.log_start_offset())
        .collect();
    assert!(!log.install_cleaned(cleaned).unwrap());
    assert_eq!(all_records(&log), remaining);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".cleaned"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_directory_replaced_during_the_pass_discards_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = updates_log(dir.path());
    let (_, plan) = log.plan_cleaning(NOW).unwrap();
    let cleaned = clean(plan.unwrap(), NOW).unwrap();
    // Another log now owns the directory (a topic deleted and created again).
    let first = segment_path(dir.path(), 0, "log");
    let bytes = std::fs::read(&first).unwrap();
    std::fs::remove_file(&first).unwrap();
    std::fs::write(&first, &bytes).unwrap();
    assert!(!log.install_cleaned(cleaned).unwrap());
    assert_eq!(std::fs::read(&first).unwrap(), bytes);
    assert!(!dir.path().join(swap::MANIFEST_FILE).exists());
}

#[test]
fn a_swap_cut_at_any_step_recovers_all_old_or_all_new() {
    let probe = tempfile::tempdir().unwrap();
    let (mut log, _) = updates_log(probe.path());
    let old_records = all_records(&log);
    pass(&mut log, NOW).unwrap();
    let new_records = all_records(&log);
    assert_ne!(old_records, new_records);
    drop(log);
    let mut cut = 0usize;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = updates_log(dir.path());
        let (_, plan) = log.plan_cleaning(NOW).unwrap();
        let cleaned = clean(plan.unwrap(), NOW).unwrap();
        let ran = if cut == 0 {
            0 // crash before the commit: only .cleaned files exist
        } else {
            swap::commit(dir.path(), &cleaned.groups).unwrap();
            swap::complete(dir.path(), &cleaned.groups, cut - 1).unwrap()
        };
        drop(log);
        let reopened = Log::open(dir.path(), compact_config(700)).unwrap();
        let want = if cut == 0 { &old_records } else { &new_records };
        assert_eq!(&all_records(&reopened), want, "cut {cut}");
        assert!(!dir.path().join(swap::MANIFEST_FILE).exists());
        let stray = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".cleaned"));
        assert!(!stray, "cut {cut}: .cleaned files left");
        if cut > 0 && ran < cut - 1 {
            break; // the last cut ran every step
        }
        cut += 1;
    }
    assert!(cut > 10, "cut at {cut} points");
}

#[test]
fn reads_of_removed_offsets_return_the_next_surviving_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config(500)).unwrap();
    // Overlapping keys per batch, so that cleaning leaves partial batches with gaps.
    for r in 0..30usize {
        let recs: Vec<_> = (0..4)
            .map(|j| kv(&format!("k{}", (r * 3 + j) % 10), &format!("r{r}j{j}")))
            .collect();
        log.append(&encoded(&recs, NOW, Compression::Zstd, None), 0, NOW)
            .unwrap();
    }
    let stats = pass(&mut log, NOW).unwrap();
    assert!(stats.batches_rebuilt > 0, "{stats:?}");
    let records = all_records(&log);
    let present: std::collections::BTreeSet<i64> = records.iter().map(|r| r.0).collect();
    assert!(present.len() < 120);
    for offset in 0..log.log_end_offset() {
        let got = decode_all(&log.read(offset, 1 << 20, i64::MAX).unwrap());
        let next = present.range(offset..).next().copied();
        let first = got.iter().map(|r| r.0).find(|&o| o >= offset);
        assert_eq!(first, next, "read from {offset}");
        if let Some(b) = BatchIter::new(&log.read(offset, 1, i64::MAX).unwrap()).next() {
            assert!(
                b.unwrap().1.last_offset() >= offset,
                "first batch reaches {offset}"
            );
        }
    }
}

#[test]
fn producer_state_and_timestamps_work_on_cleaned_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config(300)).unwrap();
    let first = encoded(&[kv("a", "a0")], NOW, Compression::None, Some((5, 0)));
    log.append(&first, 0, NOW).unwrap();
    for i in 0..6 {
        let b = encoded(
            &[kv("a", &format!("a{}", i + 1))],
            NOW + 10 * (i + 1),
            Compression::None,
            None,
        );
        log.append(&b, 0, NOW).unwrap();
        log.roll().unwrap();
    }
    pass(&mut log, NOW).unwrap();
    let mut headers = Vec::new();
    log.for_each_batch_header(|h| headers.push(*h)).unwrap();
    let p5: Vec<_> = headers.iter().filter(|h| h.producer_id == 5).collect();
    assert_eq!(p5.len(), 1, "the producer's last batch stays");
    assert_eq!(
        (p5[0].base_offset, p5[0].record_count, p5[0].base_sequence),
        (0, 0, 0)
    );
    let mut producers = crate::producer::ProducerStates::default();
    log.for_each_batch_header(|h| producers.record(h)).unwrap();
    assert_eq!(producers.len(), 1);
    assert_eq!(log.max_timestamp().unwrap(), Some((6, NOW + 60)));
    assert_eq!(
        log.offset_for_timestamp(NOW + 1).unwrap(),
        Some((6, NOW + 60))
    );
    let recs = all_records(&log);
    assert_eq!(recs, vec![(6, Some(b"a".to_vec()), Some(b"a6".to_vec()))]);
}

#[test]
fn damaged_segments_abort_the_pass_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = updates_log(dir.path());
    let first = segment_path(dir.path(), 0, "log");
    let bytes = std::fs::read(&first).unwrap();
    // Damaged records: the batch cannot be read, so it is kept as it is.
    let mut records_damage = bytes.clone();
    records_damage[70] ^= 0xff;
    std::fs::write(&first, &records_damage).unwrap();
    let (_, plan) = log.plan_cleaning(NOW).unwrap();
    let cleaned = clean(plan.unwrap(), NOW).unwrap();
    swap::discard(dir.path(), &cleaned.groups);
    // A damaged length field: the pass fails and writes nothing.
    let mut header_damage = bytes;
    header_damage[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    std::fs::write(&first, &header_damage).unwrap();
    let (_, plan) = log.plan_cleaning(NOW).unwrap();
    assert!(clean(plan.unwrap(), NOW).is_err());
    let stray = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".cleaned"));
    assert!(!stray);
}

#[test]
fn a_pass_below_a_limit_stops_at_the_segment_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = updates_log(dir.path());
    let bases: Vec<i64> = log.sealed.keys().copied().collect();
    assert!(bases.len() > 4, "{bases:?}");
    // A limit inside the third segment: the first two are wholly below it.
    let limit = bases[2] + 1;
    let (_, plan) = log.plan_cleaning_below(NOW, limit).unwrap();
    let plan = plan.expect("due: the first two segments are dirty");
    assert_eq!(plan.dirty_end, bases[2]);
    assert_eq!(plan.segments.len(), 2);
    // A limit at a segment's base: that segment holds it, so it stays out.
    let (_, plan) = log.plan_cleaning_below(NOW, bases[1]).unwrap();
    assert_eq!(plan.expect("due").dirty_end, bases[1]);
    // A limit in the first segment: nothing is wholly below it.
    let (_, plan) = log.plan_cleaning_below(NOW, bases[0] + 1).unwrap();
    assert!(plan.is_none());
    // No limit: up to the active segment.
    let (_, plan) = log.plan_cleaning_below(NOW, i64::MAX).unwrap();
    assert_eq!(plan.expect("due").dirty_end, log.active.base_offset());
}
