//! The record-level half of log compaction: the map of each key's latest offset in the dirty
//! section, the keep/drop rule, and the rewrite of one stored batch.
//!
//! It never touches files and never panics on stored bytes: a batch whose records cannot be
//! decompressed or parsed is kept whole (and contributes no keys), which only keeps more data.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::log::batch::{rebuild_batch, BatchHeader, ATTR_COMPRESSION_MASK, HEADER_LEN};
use crate::log::records::{compress, decompress, RecordMeta, RecordWalker};

/// Bytes an entry of [`OffsetMap`] costs beyond its key (the offset, the key's vector, the
/// hash table's slot), for the memory bound of a pass.
const ENTRY_OVERHEAD: usize = 48;

/// Latest offset of every key seen in the dirty section.
#[derive(Debug, Default)]
pub(crate) struct OffsetMap {
    latest: HashMap<Vec<u8>, i64>,
    bytes: usize,
}

impl OffsetMap {
    pub(crate) fn len(&self) -> usize {
        self.latest.len()
    }

    /// Approximate memory held by the map.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Remembers every keyed record of `batch` (a whole stored batch). Control batches and
    /// unreadable batches add nothing.
    pub(crate) fn add_batch(&mut self, batch: &[u8], header: &BatchHeader) {
        if header.is_control() {
            return;
        }
        let Ok(section) = record_section(batch, header) else {
            return;
        };
        for record in RecordWalker::new(&section, header.record_count) {
            let Ok(record) = record else {
                return;
            };
            if let Some(key) = record.key {
                let offset = record_offset(header, &record);
                match self.latest.get_mut(key) {
                    Some(slot) => *slot = (*slot).max(offset),
                    None => {
                        self.bytes += key.len() + ENTRY_OVERHEAD;
                        self.latest.insert(key.to_vec(), offset);
                    }
                }
            }
        }
    }
}

/// Why a record goes or stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Keep,
    /// A later record has the same key.
    Superseded,
    /// A tombstone older than `delete.retention.ms`.
    ExpiredTombstone,
    /// No key: a compacted log cannot hold it (Kafka's cleaner drops these too).
    Keyless,
}

/// The rules of one cleaning pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub(crate) map: &'a OffsetMap,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
}

impl Rules<'_> {
    /// The fate of one record: kept while it is the latest for its key, and, for a tombstone,
    /// while `timestamp + delete.retention.ms > now`.
    pub(crate) fn fate(
        &self,
        key: Option<&[u8]>,
        value_is_null: bool,
        offset: i64,
        timestamp: i64,
    ) -> Fate {
        let Some(key) = key else {
            return Fate::Keyless;
        };
        if self.map.latest(key).is_some_and(|latest| latest > offset) {
            return Fate::Superseded;
        }
        if value_is_null && self.tombstone_expiry(timestamp) <= self.now_ms {
            return Fate::ExpiredTombstone;
        }
        Fate::Keep
    }

    /// When a tombstone stamped `timestamp` may go.
    pub(crate) fn tombstone_expiry(&self, timestamp: i64) -> i64 {
        timestamp.saturating_add(self.delete_retention_ms)
    }
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// Every record stays: the stored bytes are copied as they are.
    Unchanged,
    /// Some records went: the batch rebuilt around the others (possibly none, see
    /// [`filter_batch`]).
    Rebuilt(Vec<u8>),
    /// Every record went and the batch is not needed.
    Dropped,
}

/// The outcome of [`filter_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    pub(crate) filtered: Filtered,
    pub(crate) removed_records: u64,
    /// The earliest time a kept tombstone of this batch may go.
    pub(crate) tombstone_expiry: Option<i64>,
}

impl BatchOutcome {
    fn unchanged() -> Self {
        Self {
            filtered: Filtered::Unchanged,
            removed_records: 0,
            tombstone_expiry: None,
        }
    }
}

/// The record section of a stored batch, decompressed.
fn record_section<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<Cow<'a, [u8]>, String> {
    let section = batch
        .get(HEADER_LEN..header.total_len())
        .ok_or("batch shorter than its length field")?;
    if header.compression() == 0 {
        return Ok(Cow::Borrowed(section));
    }
    decompress(header.compression(), section).map(|b| Cow::Owned(b.to_vec()))
}

fn record_offset(header: &BatchHeader, record: &RecordMeta<'_>) -> i64 {
    header
        .base_offset
        .saturating_add(i64::from(record.offset_delta))
}

fn record_timestamp(header: &BatchHeader, record: &RecordMeta<'_>) -> i64 {
    if header.timestamp_type_is_log_append() {
        header.max_timestamp
    } else {
        header.base_timestamp.saturating_add(record.timestamp_delta)
    }
}

/// Applies `rules` to every record of `batch`. A batch losing every record is dropped unless
/// `keep_empty` (the last batch of its producer id: producer state is rebuilt from the log), in
/// which case it stays as an empty, uncompressed batch with the same offsets and producer
/// fields, as Kafka does. Control batches and batches that cannot be read stay unchanged.
pub(crate) fn filter_batch(
    batch: &[u8],
    header: &BatchHeader,
    rules: &Rules<'_>,
    keep_empty: bool,
) -> BatchOutcome {
    if header.is_control() {
        return BatchOutcome::unchanged();
    }
    let Ok(section) = record_section(batch, header) else {
        return BatchOutcome::unchanged();
    };
    let mut kept: Vec<RecordMeta<'_>> = Vec::new();
    let mut total = 0u64;
    let mut expiry: Option<i64> = None;
    let mut max_timestamp = -1i64;
    for record in RecordWalker::new(&section, header.record_count) {
        let Ok(record) = record else {
            return BatchOutcome::unchanged();
        };
        total += 1;
        let (offset, ts) = (
            record_offset(header, &record),
            record_timestamp(header, &record),
        );
        if rules.fate(record.key, record.value_is_null, offset, ts) == Fate::Keep {
            if record.value_is_null {
                let at = rules.tombstone_expiry(ts);
                expiry = Some(expiry.map_or(at, |e| e.min(at)));
            }
            max_timestamp = max_timestamp.max(ts);
            kept.push(record);
        }
    }
    let removed_records = total.saturating_sub(kept.len() as u64);
    let filtered = if removed_records == 0 {
        Filtered::Unchanged
    } else if kept.is_empty() && !keep_empty {
        Filtered::Dropped
    } else {
        match rebuild(batch, header, &kept, max_timestamp) {
            Ok(bytes) => Filtered::Rebuilt(bytes),
            Err(reason) => {
                tracing::warn!(base_offset = header.base_offset, %reason, "cannot rebuild batch; kept as is");
                return BatchOutcome::unchanged();
            }
        }
    };
    BatchOutcome {
        filtered,
        removed_records,
        tombstone_expiry: expiry,
    }
}

/// The batch holding only `kept` (raw record bytes, in order), recompressed with the batch's
/// codec; an empty batch is stored uncompressed with its original max timestamp.
fn rebuild(
    batch: &[u8],
    header: &BatchHeader,
    kept: &[RecordMeta<'_>],
    kept_max_timestamp: i64,
) -> Result<Vec<u8>, String> {
    if kept.is_empty() {
        let attributes = header.attributes & !ATTR_COMPRESSION_MASK;
        return rebuild_batch(batch, &[], 0, header.max_timestamp, attributes)
            .map_err(|e| e.to_string());
    }
    let plain: Vec<u8> = kept.iter().flat_map(|r| r.raw.iter().copied()).collect();
    let section = compress(header.compression(), &plain)?;
    let count = i32::try_from(kept.len()).map_err(|_| "too many records".to_string())?;
    let max_timestamp = if header.timestamp_type_is_log_append() {
        header.max_timestamp
    } else {
        kept_max_timestamp
    };
    rebuild_batch(batch, &section, count, max_timestamp, header.attributes)
        .map_err(|e| e.to_string())
}
