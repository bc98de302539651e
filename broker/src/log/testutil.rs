//! Test helpers: hand-built RecordBatch v2 bytes (uncompressed, with exact control over
//! timestamps, keys and headers) and compressed batches built with kafka-protocol's encoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use std::path::{Path, PathBuf};

use super::batch::{
    validate_produce_batch, write_offset_and_epoch, BatchIter, CRC_START, HEADER_LEN,
};
use super::segment::segment_path;
use super::{Log, LogConfig};

/// One record for [`batch_bytes`].
#[derive(Debug, Clone)]
pub(crate) struct TestRecord {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl TestRecord {
    pub(crate) fn new(timestamp: i64, key: &[u8], value: &[u8]) -> Self {
        Self {
            timestamp,
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            headers: Vec::new(),
        }
    }

    pub(crate) fn null_key(timestamp: i64, value: &[u8]) -> Self {
        Self {
            timestamp,
            key: None,
            value: Some(value.to_vec()),
            headers: Vec::new(),
        }
    }

    pub(crate) fn with_header(mut self, key: &[u8], value: Option<&[u8]>) -> Self {
        self.headers.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        self
    }
}

/// Appends a zigzag varint/varlong.
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let b = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_sized(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// An uncompressed v2 batch as a producer would send it: base offset 0, leader epoch -1,
/// no producer id, CreateTime, first timestamp as base, CRC set.
pub(crate) fn batch_bytes(records: &[TestRecord]) -> Vec<u8> {
    let base_ts = records.first().map_or(-1, |r| r.timestamp);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let mut body = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut rec = vec![0u8]; // attributes
        put_varint(&mut rec, r.timestamp - base_ts);
        put_varint(&mut rec, i as i64);
        put_sized(&mut rec, r.key.as_deref());
        put_sized(&mut rec, r.value.as_deref());
        put_varint(&mut rec, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_sized(&mut rec, Some(k));
            put_sized(&mut rec, v.as_deref());
        }
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let count = records.len() as i32;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&((HEADER_LEN - 12 + body.len()) as i32).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&base_ts.to_be_bytes());
    out.extend_from_slice(&max_ts.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// A batch of `n` records with values `"{tag}-{i}"`, all stamped `timestamp`.
pub(crate) fn simple_batch(tag: &str, n: usize, timestamp: i64) -> Vec<u8> {
    let records: Vec<TestRecord> = (0..n)
        .map(|i| TestRecord::new(timestamp, b"key", format!("{tag}-{i}").as_bytes()))
        .collect();
    batch_bytes(&records)
}

/// A batch built by kafka-protocol's encoder with the given compression.
pub(crate) fn compressed_batch(records: &[(i64, &[u8])], compression: Compression) -> Vec<u8> {
    let records: Vec<EncodedRecord<'_>> = records
        .iter()
        .map(|(ts, v)| (*ts, None, Some(*v)))
        .collect();
    encoded_batch(&records, compression, None)
}

/// `(timestamp, key, value)` for [`encoded_batch`].
pub(crate) type EncodedRecord<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

/// A batch built by kafka-protocol's encoder: `compression`, and, when `producer` is set, from
/// an idempotent producer `(producer id, base sequence)` with epoch 0.
pub(crate) fn encoded_batch(
    records: &[EncodedRecord<'_>],
    compression: Compression,
    producer: Option<(i64, i32)>,
) -> Vec<u8> {
    let (producer_id, base_sequence) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (ts, key, value))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: if producer_id < 0 { -1 } else { 0 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch when offset - sequence changes; -1 at offset 0
            // keeps one batch with base sequence -1 (no producer id).
            sequence: if base_sequence < 0 {
                i as i32 - 1
            } else {
                base_sequence + i as i32
            },
            timestamp: *ts,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: IndexMap::new(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

// ---- Log test helpers ----

pub(crate) const NOW: i64 = 1_700_000_000_000;

pub(crate) fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

/// The bytes the log should store for `batch` appended at `base` in `epoch`.
pub(crate) fn stored(batch: &[u8], base: i64, epoch: i32) -> Vec<u8> {
    let mut out = batch.to_vec();
    write_offset_and_epoch(&mut out, base, epoch);
    out
}

/// `(base_offset, last_offset)` of each batch in a read result; also checks every CRC.
pub(crate) fn batch_ranges(bytes: &[u8]) -> Vec<(i64, i64)> {
    BatchIter::new(bytes)
        .verify_crc(true)
        .map(|r| {
            let (_, h) = r.unwrap();
            (h.base_offset, h.last_offset())
        })
        .collect()
}

pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

pub(crate) fn log_file(dir: &Path, base: i64) -> PathBuf {
    segment_path(dir, base, "log")
}

/// Size of a batch of `n` records as `fill` builds it.
pub(crate) fn batch_len(n: usize) -> u64 {
    simple_batch("b000", n, NOW).len() as u64
}

/// Appends `batches` (record counts) and returns the original batch bytes.
pub(crate) fn fill(log: &mut Log, counts: &[usize], timestamp: i64) -> Vec<Vec<u8>> {
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

/// Deterministic xorshift for the randomized tests below.
pub(crate) fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A log whose batches have known record timestamps, spread over several segments.
pub(crate) fn timestamp_log(dir: &Path) -> Log {
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
