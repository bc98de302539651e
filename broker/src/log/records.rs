//! The records inside a v2 batch: zigzag varint decoding, a bounds-checked walker over the
//! record framing (used by produce validation and timestamp lookups), and decompression of a
//! compressed batch's record section.
//!
//! The walker reads only what it needs (offset and timestamp deltas) and never allocates per
//! record; it must never panic or loop unboundedly on hostile bytes (each record consumes at
//! least one byte).

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::batch::BatchError;

/// One record inside a batch's (uncompressed) record section, borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordMeta<'a> {
    pub(crate) offset_delta: i32,
    pub(crate) timestamp_delta: i64,
    /// The key, `None` when null.
    pub(crate) key: Option<&'a [u8]>,
    /// True for a null value (a tombstone on a compacted topic).
    pub(crate) value_is_null: bool,
    /// The whole record as stored, its length varint included.
    pub(crate) raw: &'a [u8],
}

/// A read position over a byte slice; every read is bounds-checked.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let b = *self.buf.get(self.pos).ok_or("unexpected end of record")?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(len).ok_or("length overflows")?;
        let out = self.buf.get(self.pos..end).ok_or("length exceeds record")?;
        self.pos = end;
        Ok(out)
    }

    /// Unsigned LEB128 of at most `max_bytes` bytes.
    fn unsigned(&mut self, max_bytes: u32) -> Result<u64, &'static str> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long")
    }

    /// Zigzag varint (Kafka `varint`), at most 5 bytes.
    fn varint(&mut self) -> Result<i32, &'static str> {
        // Truncation to 32 bits mirrors Kafka's decoder, which ignores overflowing bits.
        let raw = self.unsigned(5)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Zigzag varlong (Kafka `varlong`), at most 10 bytes.
    fn varlong(&mut self) -> Result<i64, &'static str> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A varint length followed by that many bytes; -1 means null (`None`) when `nullable`.
    fn sized(&mut self, nullable: bool) -> Result<Option<&'a [u8]>, &'static str> {
        let len = self.varint()?;
        if len == -1 && nullable {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| "negative length")?;
        self.take(len).map(Some)
    }

    fn skip_sized(&mut self, nullable: bool) -> Result<(), &'static str> {
        self.sized(nullable).map(|_| ())
    }
}

/// Parses one record body (everything after its length varint); `raw` is the whole record.
fn parse_record<'a>(body: &'a [u8], raw: &'a [u8]) -> Result<RecordMeta<'a>, &'static str> {
    let mut cur = Cursor::new(body);
    let _attributes = cur.byte()?;
    let timestamp_delta = cur.varlong()?;
    let offset_delta = cur.varint()?;
    let key = cur.sized(true)?;
    let value_is_null = cur.sized(true)?.is_none();
    let headers = cur.varint()?;
    if headers < 0 {
        return Err("negative header count");
    }
    for _ in 0..headers {
        cur.skip_sized(false)?; // header key (never null)
        cur.skip_sized(true)?; // header value
    }
    if cur.remaining() != 0 {
        return Err("record length does not match its fields");
    }
    Ok(RecordMeta {
        offset_delta,
        timestamp_delta,
        key,
        value_is_null,
        raw,
    })
}

/// Walks `count` records laid end to end in a batch's (uncompressed) record section.
/// Yields at most `count` items and stops after the first error; call [`RecordWalker::finish`]
/// afterwards to check that the records filled the section exactly.
pub(crate) struct RecordWalker<'a> {
    cur: Cursor<'a>,
    index: i32,
    count: i32,
    failed: bool,
}

impl<'a> RecordWalker<'a> {
    pub(crate) fn new(records: &'a [u8], count: i32) -> Self {
        Self {
            cur: Cursor::new(records),
            index: 0,
            count,
            failed: false,
        }
    }

    fn error(&self, reason: &'static str) -> BatchError {
        BatchError::MalformedRecord {
            index: self.index,
            reason,
        }
    }

    /// Succeeds when all `count` records were read and no bytes are left over.
    pub(crate) fn finish(self) -> Result<(), BatchError> {
        if self.index < self.count {
            return Err(self.error("fewer records than the record count"));
        }
        if self.cur.remaining() != 0 {
            return Err(self.error("bytes left after the last record"));
        }
        Ok(())
    }

    fn next_record(&mut self) -> Result<RecordMeta<'a>, &'static str> {
        let start = self.cur.pos;
        let len = self.cur.varint()?;
        let len = usize::try_from(len).map_err(|_| "negative record length")?;
        let body = self.cur.take(len)?;
        let raw = self.cur.buf.get(start..self.cur.pos).unwrap_or_default();
        parse_record(body, raw)
    }
}

impl<'a> Iterator for RecordWalker<'a> {
    type Item = Result<RecordMeta<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.index >= self.count {
            return None;
        }
        match self.next_record() {
            Ok(meta) => {
                self.index += 1;
                Some(Ok(meta))
            }
            Err(reason) => {
                self.failed = true;
                Some(Err(self.error(reason)))
            }
        }
    }
}

/// Decompresses the record section of a batch compressed with `codec` (1 gzip, 2 snappy,
/// 3 lz4, 4 zstd). The output size is bounded only by the codec's own limits.
pub(crate) fn decompress(codec: u8, data: &[u8]) -> Result<Bytes, String> {
    let mut input = data;
    let result = match codec {
        0 => return Ok(Bytes::copy_from_slice(data)),
        1 => Gzip::decompress(&mut input, |out: &mut Bytes| Ok(out.clone())),
        2 => Snappy::decompress(&mut input, |out: &mut Bytes| Ok(out.clone())),
        3 => Lz4::decompress(&mut input, |out: &mut Bytes| Ok(out.clone())),
        4 => Zstd::decompress(&mut input, |out: &mut Bytes| Ok(out.clone())),
        other => return Err(format!("unknown compression codec {other}")),
    };
    result.map_err(|err| format!("{err:#}"))
}

/// Compresses a record section with `codec` (the inverse of [`decompress`]).
pub(crate) fn compress(codec: u8, data: &[u8]) -> Result<Vec<u8>, String> {
    fn with<C: Compressor<BytesMut, BufMut = BytesMut>>(data: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut out = BytesMut::new();
        C::compress(&mut out, |buf: &mut BytesMut| {
            buf.extend_from_slice(data);
            Ok(())
        })?;
        Ok(out.to_vec())
    }
    let result = match codec {
        0 => return Ok(data.to_vec()),
        1 => with::<Gzip>(data),
        2 => with::<Snappy>(data),
        3 => with::<Lz4>(data),
        4 => with::<Zstd>(data),
        other => return Err(format!("unknown compression codec {other}")),
    };
    result.map_err(|err| format!("{err:#}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn zigzag32(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        crate::log::testutil::put_varint(&mut out, i64::from(v));
        out
    }

    #[test]
    fn varints_round_trip_edge_values() {
        for v in [0, 1, -1, 63, -64, 64, 300, i32::MAX, i32::MIN] {
            let bytes = zigzag32(v);
            let mut cur = Cursor::new(&bytes);
            assert_eq!(cur.varint().unwrap(), v);
            assert_eq!(cur.remaining(), 0);
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut bytes = Vec::new();
            crate::log::testutil::put_varint(&mut bytes, v);
            let mut cur = Cursor::new(&bytes);
            assert_eq!(cur.varlong().unwrap(), v);
        }
    }

    #[test]
    fn overlong_and_short_varints_fail() {
        let mut cur = Cursor::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert_eq!(cur.varint(), Err("varint too long"));
        let mut cur = Cursor::new(&[0x80]);
        assert!(cur.varint().is_err());
        let mut cur = Cursor::new(&[0xff; 11]);
        assert_eq!(cur.varlong(), Err("varint too long"));
    }

    #[test]
    fn walker_reads_deltas_and_checks_the_section_is_filled() {
        let batch = crate::log::testutil::batch_bytes(&[
            crate::log::testutil::TestRecord::new(100, b"a", b"x"),
            crate::log::testutil::TestRecord::new(90, b"b", b"y"),
        ]);
        let records = &batch[crate::log::batch::HEADER_LEN..];
        let metas: Vec<RecordMeta> = RecordWalker::new(records, 2)
            .collect::<Result<_, _>>()
            .unwrap();
        let deltas: Vec<(i32, i64)> = metas
            .iter()
            .map(|m| (m.offset_delta, m.timestamp_delta))
            .collect();
        assert_eq!(deltas, vec![(0, 0), (1, -10)]);
        assert_eq!(metas[0].key, Some(&b"a"[..]));
        assert!(!metas[1].value_is_null);
        let raw_len: usize = metas.iter().map(|m| m.raw.len()).sum();
        assert_eq!(raw_len, records.len(), "raw spans cover the section");
        let mut walker = RecordWalker::new(records, 1);
        assert_eq!(walker.by_ref().count(), 1);
        assert!(walker.finish().is_err(), "a byte tail is left over");
        let mut walker = RecordWalker::new(records, 3);
        let results: Vec<_> = walker.by_ref().collect();
        assert_eq!(results.len(), 3);
        assert!(results[2].is_err());
        assert!(walker.finish().is_err());
    }

    #[test]
    fn compress_round_trips_every_codec() {
        let data = b"some records some records some records".repeat(20);
        for codec in 0..=4 {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed).unwrap(),
                Bytes::from(data.clone())
            );
        }
        assert!(compress(5, b"").is_err());
    }

    #[test]
    fn decompress_rejects_garbage_and_unknown_codecs() {
        assert!(decompress(1, b"not gzip").is_err());
        assert!(decompress(4, b"not zstd").is_err());
        assert!(decompress(7, b"").is_err());
        assert_eq!(decompress(0, b"abc").unwrap(), Bytes::from_static(b"abc"));
    }
}
