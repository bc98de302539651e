//! Kafka RecordBatch v2 as bytes: header parsing, produce-time validation, header patching
//! (assigned offset, leader epoch, LogAppendTime) and iteration over a buffer of batches.
//!
//! This module owns the byte layout of a batch. It never touches files, never re-encodes
//! records, and never panics on any input: every slice index is bounds-checked and hostile or
//! torn bytes come back as a typed [`BatchError`].

use super::records::RecordWalker;

/// Length of the fixed RecordBatch v2 header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// Bytes in front of the part counted by the batch length field (base offset + batch length).
pub const LOG_OVERHEAD: usize = 12;
/// The only record batch format this broker stores.
pub const MAGIC_V2: i8 = 2;
/// First byte covered by the CRC32C (the attributes field).
pub const CRC_START: usize = 21;

/// Compression codec bits of the attributes field.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Timestamp type bit of the attributes field (set = LogAppendTime).
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Transactional bit of the attributes field.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Control batch bit of the attributes field.
pub const ATTR_CONTROL: i16 = 0x20;

/// Highest compression codec id Kafka defines (zstd).
const MAX_COMPRESSION_CODEC: u8 = 4;

// Field positions inside the header.
const POS_LENGTH: usize = 8;
const POS_EPOCH: usize = 12;
const POS_MAGIC: usize = 16;
const POS_CRC: usize = 17;
const POS_ATTRIBUTES: usize = 21;
const POS_LAST_OFFSET_DELTA: usize = 23;
const POS_BASE_TIMESTAMP: usize = 27;
const POS_MAX_TIMESTAMP: usize = 35;
const POS_PRODUCER_ID: usize = 43;
const POS_PRODUCER_EPOCH: usize = 51;
const POS_BASE_SEQUENCE: usize = 53;
const POS_RECORD_COUNT: usize = 57;

/// The decoded fixed header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Size of the whole batch in bytes: 12 + batch length (0 for a negative length field,
    /// which [`parse_header`] never returns).
    pub fn total_len(&self) -> usize {
        usize::try_from(self.batch_length)
            .map(|len| len.saturating_add(LOG_OVERHEAD))
            .unwrap_or(0)
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> u8 {
        // Masked to three bits, so the cast cannot truncate.
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// True when every record's timestamp is the batch's `max_timestamp` (LogAppendTime).
    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// Offset of the last record: base offset + last offset delta (saturating).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// True when the batch carries a producer id (idempotent or transactional producer).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Why a batch was refused. [`BatchError::is_corrupt`] separates damaged bytes (Kafka's
/// CORRUPT_MESSAGE) from well-formed bytes that break the rules (Kafka's INVALID_RECORD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the length field promise (also a torn write on disk).
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// The batch length field is too small to hold a v2 header.
    #[error("record batch length field {0} is smaller than the v2 header")]
    BadLength(i32),
    /// The length field ends the batch before the buffer ends, and what follows is not a batch.
    #[error("record batch length field says {declared} bytes but the buffer holds {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    /// CRC32C over the bytes after the CRC field does not match the stored one.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Not a RecordBatch v2.
    #[error("unsupported record batch magic {0} (only v2 is accepted)")]
    UnsupportedMagic(i8),
    /// Compression codec id outside 0..=4.
    #[error("unknown compression codec {0}")]
    UnsupportedCompression(u8),
    /// Record count not positive or not equal to last offset delta + 1.
    #[error("invalid record count {count} for last offset delta {last_offset_delta}")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
    /// A record inside an uncompressed batch does not follow the record framing.
    #[error("malformed record {index}: {reason}")]
    MalformedRecord { index: i32, reason: &'static str },
    /// The buffer holds a second batch after the first one.
    #[error("a produce request must hold exactly one record batch per partition")]
    MultipleBatches,
    /// Clients may not write control batches.
    #[error("clients may not write control batches")]
    ControlBatch,
    /// A record without a key sent to a compacted topic.
    #[error("compacted topic cannot accept message without key (record {index})")]
    MissingKey { index: i32 },
    /// A compressed batch whose records cannot be decompressed.
    #[error("cannot decompress the batch's records: {0}")]
    Undecompressable(String),
    /// A producer id is set but the base sequence is negative.
    #[error("invalid base sequence {base_sequence} for producer id {producer_id}")]
    InvalidSequence {
        producer_id: i64,
        base_sequence: i32,
    },
}

impl BatchError {
    /// True for damaged bytes (CORRUPT_MESSAGE); false for rule violations (INVALID_RECORD).
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            BatchError::Truncated { .. }
                | BatchError::BadLength(_)
                | BatchError::LengthMismatch { .. }
                | BatchError::CrcMismatch { .. }
        )
    }
}

fn be_i64(buf: &[u8], at: usize) -> Option<i64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes(bytes.try_into().ok()?))
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn be_i16(buf: &[u8], at: usize) -> Option<i16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(i16::from_be_bytes(bytes.try_into().ok()?))
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = at
        .checked_add(bytes.len())
        .and_then(|end| buf.get_mut(at..end))
    {
        dst.copy_from_slice(bytes);
    }
}

fn truncated(needed: usize, buf: &[u8]) -> BatchError {
    BatchError::Truncated {
        needed,
        available: buf.len(),
    }
}

/// Decodes the fixed header at the start of `buf`. Checks the magic and that the length field
/// can hold a header; does not check the CRC nor that `buf` holds the whole batch.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let magic = match buf.get(POS_MAGIC) {
        Some(&b) => i8::from_be_bytes([b]),
        None => return Err(truncated(HEADER_LEN, buf)),
    };
    if magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(magic));
    }
    let batch_length = be_i32(buf, POS_LENGTH).ok_or_else(|| truncated(HEADER_LEN, buf))?;
    if usize::try_from(batch_length).map_or(true, |len| len < HEADER_LEN - LOG_OVERHEAD) {
        return Err(BatchError::BadLength(batch_length));
    }
    let header = buf
        .get(..HEADER_LEN)
        .ok_or_else(|| truncated(HEADER_LEN, buf))?;
    let field = || truncated(HEADER_LEN, buf);
    Ok(BatchHeader {
        base_offset: be_i64(header, 0).ok_or_else(field)?,
        batch_length,
        partition_leader_epoch: be_i32(header, POS_EPOCH).ok_or_else(field)?,
        magic,
        crc: be_u32(header, POS_CRC).ok_or_else(field)?,
        attributes: be_i16(header, POS_ATTRIBUTES).ok_or_else(field)?,
        last_offset_delta: be_i32(header, POS_LAST_OFFSET_DELTA).ok_or_else(field)?,
        base_timestamp: be_i64(header, POS_BASE_TIMESTAMP).ok_or_else(field)?,
        max_timestamp: be_i64(header, POS_MAX_TIMESTAMP).ok_or_else(field)?,
        producer_id: be_i64(header, POS_PRODUCER_ID).ok_or_else(field)?,
        producer_epoch: be_i16(header, POS_PRODUCER_EPOCH).ok_or_else(field)?,
        base_sequence: be_i32(header, POS_BASE_SEQUENCE).ok_or_else(field)?,
        record_count: be_i32(header, POS_RECORD_COUNT).ok_or_else(field)?,
    })
}

/// Parses the header and checks that `buf` holds the whole batch and that its CRC32C matches.
/// Returns the header and the batch's bytes (`buf` may continue past the batch).
pub(crate) fn parse_checked(buf: &[u8]) -> Result<(BatchHeader, &[u8]), BatchError> {
    let header = parse_header(buf)?;
    let total = header.total_len();
    let batch = buf.get(..total).ok_or_else(|| truncated(total, buf))?;
    let computed = crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default());
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok((header, batch))
}

/// Validates a batch from a produce request: exactly one v2 batch spanning the whole buffer,
/// CRC32C intact, a consistent record count, and (uncompressed batches only) every record's
/// framing. Compressed batches are not decompressed; their CRC protects the payload.
pub fn validate_produce_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = parse_header(buf)?;
    let total = header.total_len();
    if buf.len() < total {
        return Err(truncated(total, buf));
    }
    if let Some(rest) = buf.get(total..).filter(|rest| !rest.is_empty()) {
        return Err(if parse_header(rest).is_ok() {
            BatchError::MultipleBatches
        } else {
            BatchError::LengthMismatch {
                declared: total,
                actual: buf.len(),
            }
        });
    }
    let (header, batch) = parse_checked(buf)?;
    if header.compression() > MAX_COMPRESSION_CODEC {
        return Err(BatchError::UnsupportedCompression(header.compression()));
    }
    if header.record_count <= 0
        || i64::from(header.last_offset_delta) + 1 != i64::from(header.record_count)
    {
        return Err(BatchError::BadRecordCount {
            count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if header.is_control() {
        return Err(BatchError::ControlBatch);
    }
    if header.has_producer_id() && header.base_sequence < 0 {
        return Err(BatchError::InvalidSequence {
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
        });
    }
    if header.compression() == 0 {
        let records = batch.get(HEADER_LEN..).unwrap_or_default();
        let mut walker = RecordWalker::new(records, header.record_count);
        let mut index: i32 = 0;
        for record in &mut walker {
            let record = record?;
            if record.offset_delta != index {
                return Err(BatchError::MalformedRecord {
                    index,
                    reason: "offset delta does not match the record's position",
                });
            }
            index = index.saturating_add(1);
        }
        walker.finish()?;
    }
    Ok(header)
}

/// For compacted topics: fails unless every record of the (validated) batch has a key.
/// Compressed batches are decompressed to look at their records.
pub fn require_keys(batch: &[u8]) -> Result<(), BatchError> {
    let header = parse_header(batch)?;
    let section = batch
        .get(HEADER_LEN..header.total_len())
        .ok_or_else(|| truncated(header.total_len(), batch))?;
    let records = super::records::decompress(header.compression(), section)
        .map_err(BatchError::Undecompressable)?;
    let mut walker = RecordWalker::new(&records, header.record_count);
    for (index, record) in (0..).zip(&mut walker) {
        if record?.key.is_none() {
            return Err(BatchError::MissingKey { index });
        }
    }
    walker.finish()
}

/// Writes the broker-assigned base offset (bytes 0..8) and partition leader epoch (bytes
/// 12..16) into a batch header. Both fields lie outside the CRC, so the CRC stays valid.
/// A buffer shorter than 16 bytes is left unchanged.
pub fn write_offset_and_epoch(header: &mut [u8], base_offset: i64, leader_epoch: i32) {
    if header.len() < POS_MAGIC {
        return;
    }
    put(header, 0, &base_offset.to_be_bytes());
    put(header, POS_EPOCH, &leader_epoch.to_be_bytes());
}

/// Returns a copy of the batch's header switched to LogAppendTime: timestamp-type bit set,
/// `max_timestamp = now_ms`, and the CRC recomputed over the new header tail plus the
/// untouched records (`batch` must hold the whole batch; its records are not copied).
pub fn log_append_time_header(batch: &[u8], now_ms: i64) -> Result<[u8; HEADER_LEN], BatchError> {
    let parsed = parse_header(batch)?;
    let total = parsed.total_len();
    let records = batch
        .get(HEADER_LEN..total)
        .ok_or_else(|| truncated(total, batch))?;
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(
        batch
            .get(..HEADER_LEN)
            .ok_or_else(|| truncated(total, batch))?,
    );
    let attributes = parsed.attributes | ATTR_LOG_APPEND_TIME;
    put(&mut header, POS_ATTRIBUTES, &attributes.to_be_bytes());
    put(&mut header, POS_MAX_TIMESTAMP, &now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(header.get(CRC_START..).unwrap_or_default()),
        records,
    );
    put(&mut header, POS_CRC, &crc.to_be_bytes());
    Ok(header)
}

/// A stored batch rebuilt around a new record section (log compaction): the header of
/// `original` with its length, record count, max timestamp and `attributes` replaced and the
/// CRC32C recomputed, followed by `records` (compressed as `attributes` say). Base offset, last
/// offset delta, base timestamp and producer fields are kept, so every kept record keeps its
/// offset and timestamp.
pub(crate) fn rebuild_batch(
    original: &[u8],
    records: &[u8],
    record_count: i32,
    max_timestamp: i64,
    attributes: i16,
) -> Result<Vec<u8>, BatchError> {
    let head = original
        .get(..HEADER_LEN)
        .ok_or_else(|| truncated(HEADER_LEN, original))?;
    let length = i32::try_from(HEADER_LEN - LOG_OVERHEAD + records.len())
        .map_err(|_| BatchError::BadLength(i32::MAX))?;
    let mut out = Vec::with_capacity(HEADER_LEN + records.len());
    out.extend_from_slice(head);
    out.extend_from_slice(records);
    put(&mut out, POS_LENGTH, &length.to_be_bytes());
    put(&mut out, POS_ATTRIBUTES, &attributes.to_be_bytes());
    put(&mut out, POS_MAX_TIMESTAMP, &max_timestamp.to_be_bytes());
    put(&mut out, POS_RECORD_COUNT, &record_count.to_be_bytes());
    let crc = crc32c::crc32c(out.get(CRC_START..).unwrap_or_default());
    put(&mut out, POS_CRC, &crc.to_be_bytes());
    Ok(out)
}

/// Iterates over the batches laid end to end in a buffer, yielding `(position, header)` for
/// each complete batch. At the first torn or damaged batch it yields that error once and
/// stops; [`BatchIter::valid_len`] then tells how many bytes held whole batches.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    verify_crc: bool,
    done: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates without checking CRCs (lengths and magic are always checked).
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            verify_crc: false,
            done: false,
        }
    }

    /// Also verifies each batch's CRC32C, stopping at the first mismatch.
    pub fn verify_crc(mut self, verify: bool) -> Self {
        self.verify_crc = verify;
        self
    }

    /// Bytes covered by the whole batches yielded so far.
    pub fn valid_len(&self) -> usize {
        self.pos
    }
}

impl Iterator for BatchIter<'_> {
    type Item = Result<(usize, BatchHeader), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let result = if self.verify_crc {
            parse_checked(rest).map(|(header, _)| header)
        } else {
            parse_header(rest).and_then(|header| {
                if rest.len() < header.total_len() {
                    Err(truncated(header.total_len(), rest))
                } else {
                    Ok(header)
                }
            })
        };
        match result {
            Ok(header) => {
                let start = self.pos;
                self.pos = self.pos.saturating_add(header.total_len());
                Some(Ok((start, header)))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::log::testutil::{batch_bytes, TestRecord};

    fn sample() -> Vec<u8> {
        batch_bytes(&[
            TestRecord::new(1_000, b"k1", b"first"),
            TestRecord::new(1_005, b"k2", b"second").with_header(b"h", Some(b"v")),
            TestRecord::null_key(990, b"third"),
        ])
    }

    #[test]
    fn valid_batch_parses_with_expected_fields() {
        let buf = sample();
        let header = validate_produce_batch(&buf).unwrap();
        assert_eq!(header.magic, 2);
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_005);
        assert_eq!(header.total_len(), buf.len());
        assert_eq!(header.compression(), 0);
        assert!(!header.is_control());
        assert!(!header.is_transactional());
        assert!(!header.timestamp_type_is_log_append());
        assert_eq!(header.last_offset(), 2);
    }

    #[test]
    fn bad_crc_is_corrupt() {
        let mut buf = sample();
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        let err = validate_produce_batch(&buf).unwrap_err();
        assert!(matches!(err, BatchError::CrcMismatch { .. }), "{err:?}");
        assert!(err.is_corrupt());
    }

    #[test]
    fn wrong_magic_is_invalid() {
        let mut buf = sample();
        buf[POS_MAGIC] = 1;
        let err = validate_produce_batch(&buf).unwrap_err();
        assert_eq!(err, BatchError::UnsupportedMagic(1));
        assert!(!err.is_corrupt());
    }

    #[test]
    fn truncated_buffer_is_corrupt() {
        let buf = sample();
        let err = validate_produce_batch(&buf[..buf.len() - 3]).unwrap_err();
        assert_eq!(
            err,
            BatchError::Truncated {
                needed: buf.len(),
                available: buf.len() - 3
            }
        );
        assert!(err.is_corrupt());
        let err = validate_produce_batch(&buf[..10]).unwrap_err();
        assert!(err.is_corrupt());
    }

    #[test]
    fn two_batches_are_invalid() {
        let mut buf = sample();
        buf.extend_from_slice(&sample());
        let err = validate_produce_batch(&buf).unwrap_err();
        assert_eq!(err, BatchError::MultipleBatches);
        assert!(!err.is_corrupt());
    }

    #[test]
    fn trailing_garbage_is_a_length_mismatch() {
        let mut buf = sample();
        let len = buf.len();
        buf.extend_from_slice(&[0, 1, 2]);
        assert_eq!(
            validate_produce_batch(&buf).unwrap_err(),
            BatchError::LengthMismatch {
                declared: len,
                actual: len + 3
            }
        );
    }

    #[test]
    fn short_length_field_is_corrupt() {
        let mut buf = sample();
        put(&mut buf, POS_LENGTH, &10i32.to_be_bytes());
        let err = validate_produce_batch(&buf).unwrap_err();
        assert_eq!(err, BatchError::BadLength(10));
        assert!(err.is_corrupt());
    }

    /// Rewrites a header field and fixes the CRC so that only the rule under test fails.
    fn with_field(mut buf: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
        put(&mut buf, at, bytes);
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        put(&mut buf, POS_CRC, &crc.to_be_bytes());
        buf
    }

    #[test]
    fn bad_record_counts_are_invalid() {
        for (count, delta) in [(0, -1), (-3, 2), (4, 2), (2, 2)] {
            let buf = with_field(sample(), POS_RECORD_COUNT, &i32::to_be_bytes(count));
            let buf = with_field(buf, POS_LAST_OFFSET_DELTA, &i32::to_be_bytes(delta));
            let err = validate_produce_batch(&buf).unwrap_err();
            assert!(
                matches!(err, BatchError::BadRecordCount { .. }),
                "count {count} delta {delta}: {err:?}"
            );
            assert!(!err.is_corrupt());
        }
    }

    #[test]
    fn fewer_records_than_counted_is_invalid() {
        // Claim 4 records (consistent with the delta) while 3 are present.
        let buf = with_field(sample(), POS_RECORD_COUNT, &4i32.to_be_bytes());
        let buf = with_field(buf, POS_LAST_OFFSET_DELTA, &3i32.to_be_bytes());
        let err = validate_produce_batch(&buf).unwrap_err();
        assert!(
            matches!(err, BatchError::MalformedRecord { index: 3, .. }),
            "{err:?}"
        );
        assert!(!err.is_corrupt());
    }

    #[test]
    fn malformed_record_varints_are_invalid() {
        // The first record's length varint sits right after the header; make it enormous.
        let mut buf = sample();
        buf[HEADER_LEN] = 0x7e; // zigzag 63: longer than the record
        let buf = with_field(buf, 0, &0i64.to_be_bytes());
        let err = validate_produce_batch(&buf).unwrap_err();
        assert!(
            matches!(err, BatchError::MalformedRecord { index: 0, .. }),
            "{err:?}"
        );

        // A varint that never terminates.
        let mut buf = sample();
        for b in &mut buf[HEADER_LEN..HEADER_LEN + 6] {
            *b = 0xff;
        }
        let buf = with_field(buf, 0, &0i64.to_be_bytes());
        let err = validate_produce_batch(&buf).unwrap_err();
        assert!(
            matches!(err, BatchError::MalformedRecord { index: 0, .. }),
            "{err:?}"
        );
        assert!(!err.is_corrupt());
    }

    #[test]
    fn wrong_offset_delta_is_invalid() {
        // Record 0 body: len, attributes(0), timestamp delta(0), offset delta (zigzag 0 = 0).
        let mut buf = sample();
        assert_eq!(buf[HEADER_LEN + 3], 0, "offset delta of record 0");
        buf[HEADER_LEN + 3] = 2; // zigzag 1
        let buf = with_field(buf, 0, &0i64.to_be_bytes());
        let err = validate_produce_batch(&buf).unwrap_err();
        assert!(
            matches!(err, BatchError::MalformedRecord { index: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn control_batches_and_bad_sequences_are_invalid() {
        let attrs = ATTR_CONTROL.to_be_bytes();
        let buf = with_field(sample(), POS_ATTRIBUTES, &attrs);
        assert_eq!(
            validate_produce_batch(&buf).unwrap_err(),
            BatchError::ControlBatch
        );

        let buf = with_field(sample(), POS_PRODUCER_ID, &7i64.to_be_bytes());
        assert_eq!(
            validate_produce_batch(&buf).unwrap_err(),
            BatchError::InvalidSequence {
                producer_id: 7,
                base_sequence: -1
            }
        );

        let attrs = 5i16.to_be_bytes();
        let buf = with_field(sample(), POS_ATTRIBUTES, &attrs);
        assert_eq!(
            validate_produce_batch(&buf).unwrap_err(),
            BatchError::UnsupportedCompression(5)
        );
    }

    #[test]
    fn compressed_batches_are_accepted_without_walking_records() {
        let buf = crate::log::testutil::compressed_batch(
            &[(10, b"a".as_slice()), (20, b"b"), (30, b"c")],
            kafka_protocol::records::Compression::Gzip,
        );
        let header = validate_produce_batch(&buf).unwrap();
        assert_eq!(header.compression(), 1);
        assert_eq!(header.record_count, 3);
    }

    #[test]
    fn no_panic_on_any_truncation_or_byte_flip() {
        let valid = sample();
        for len in 0..valid.len() {
            assert!(
                validate_produce_batch(&valid[..len]).is_err(),
                "prefix {len}"
            );
            let _ = BatchIter::new(&valid[..len]).verify_crc(true).count();
            let _ = parse_header(&valid[..len]);
        }
        let mut accepted = 0;
        for at in 0..valid.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut buf = valid.clone();
                buf[at] ^= flip;
                if validate_produce_batch(&buf).is_ok() {
                    accepted += 1;
                }
                let _ = BatchIter::new(&buf).count();
                let _ = log_append_time_header(&buf, 5);
                // Also re-seal the CRC so the record walker sees the damage.
                let crc = crc32c::crc32c(&buf[CRC_START..]);
                put(&mut buf, POS_CRC, &crc.to_be_bytes());
                let _ = validate_produce_batch(&buf);
            }
        }
        // Only bytes outside the CRC that carry no rule (base offset, epoch) may change freely.
        assert_eq!(accepted, (8 + 4) * 3);
    }

    #[test]
    fn offset_and_epoch_patch_keeps_crc_valid() {
        let mut buf = sample();
        write_offset_and_epoch(&mut buf, 42, 7);
        let header = validate_produce_batch(&buf).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.partition_leader_epoch, 7);
        assert_eq!(header.last_offset(), 44);
        let mut short = [0u8; 5];
        write_offset_and_epoch(&mut short, 1, 1);
        assert_eq!(short, [0u8; 5]);
    }

    #[test]
    fn log_append_time_header_sets_type_time_and_crc() {
        let buf = sample();
        let header = log_append_time_header(&buf, 123_456).unwrap();
        let mut patched = header.to_vec();
        patched.extend_from_slice(&buf[HEADER_LEN..]);
        let parsed = validate_produce_batch(&patched).unwrap();
        assert!(parsed.timestamp_type_is_log_append());
        assert_eq!(parsed.max_timestamp, 123_456);
        assert_eq!(parsed.base_timestamp, 1_000);
        assert_eq!(&patched[HEADER_LEN..], &buf[HEADER_LEN..]);
    }

    #[test]
    fn iterator_yields_positions_and_stops_at_torn_batch() {
        let one = sample();
        let mut buf = one.clone();
        buf.extend_from_slice(&one);
        buf.extend_from_slice(&one[..20]);
        let mut iter = BatchIter::new(&buf).verify_crc(true);
        let positions: Vec<usize> = iter
            .by_ref()
            .map_while(Result::ok)
            .map(|(p, _)| p)
            .collect();
        assert_eq!(positions, vec![0, one.len()]);
        assert_eq!(iter.valid_len(), 2 * one.len());
        assert!(iter.next().is_none());

        let mut iter = BatchIter::new(&buf);
        assert!(iter.next().unwrap().is_ok());
        assert!(iter.next().unwrap().is_ok());
        let err = iter.next().unwrap().unwrap_err();
        assert!(matches!(err, BatchError::Truncated { .. }), "{err:?}");
        assert!(iter.next().is_none());
    }

    #[test]
    fn iterator_stops_at_crc_mismatch_only_when_asked() {
        let one = sample();
        let mut buf = one.clone();
        let mut bad = one.clone();
        bad[HEADER_LEN + 5] ^= 0x10;
        buf.extend_from_slice(&bad);
        assert_eq!(BatchIter::new(&buf).filter(Result::is_ok).count(), 2);
        let results: Vec<_> = BatchIter::new(&buf).verify_crc(true).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(BatchError::CrcMismatch { .. })));
    }
}
