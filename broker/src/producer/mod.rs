//! Idempotent producers: producer id allocation and the per-partition sequence checks that
//! turn retried batches into duplicates instead of second copies.
//!
//! Owns only bookkeeping: it never writes the log. The produce path asks [`ProducerStates::check`]
//! before appending and calls [`ProducerStates::record`] after. At every segment roll the state
//! is snapshotted ([`snapshot`]); at start it is the newest snapshot plus the batch headers
//! stored after it, replayed through `record` (the whole log when there is no snapshot).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::log::BatchHeader;

pub mod snapshot;

/// Batches remembered per producer and partition, as Kafka (max.in.flight 5).
pub const DEDUP_WINDOW: usize = 5;

/// Producer ids handed out between two writes of the allocation file.
const ID_BLOCK: i64 = 1000;

/// File in the data dir holding the first producer id not yet handed out in a block.
const ID_FILE: &str = "producer-id-block";

/// Hands out producer ids that are never reused, even across restarts: ids are reserved in
/// blocks, and the end of the current block is persisted before any id of it is used.
pub struct ProducerIdAllocator {
    path: PathBuf,
    /// (next id, end of the reserved block)
    state: Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    /// Reads the allocation file in `data_dir` (a new data dir starts at 0).
    pub fn open(data_dir: &Path) -> std::io::Result<ProducerIdAllocator> {
        let path = data_dir.join(ID_FILE);
        let next = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<i64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdAllocator {
            path,
            state: Mutex::new((next, next)),
        })
    }

    /// A fresh producer id.
    pub fn allocate(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock();
        if state.0 >= state.1 {
            let end = state
                .1
                .checked_add(ID_BLOCK)
                .ok_or_else(|| std::io::Error::other("producer ids exhausted"))?;
            crate::topics::store::write_atomically(&self.path, end.to_string().as_bytes())?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// Newest batch max timestamp seen (ms): the producer expires
    /// `producer.id.expiration.ms` after it.
    last_timestamp: i64,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: answer with its original base offset.
    Duplicate {
        /// Base offset the batch got the first time.
        base_offset: i64,
    },
}

/// Why a batch of an idempotent producer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// A gap or a reordering: OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error(
        "out of order sequence number for producer {producer_id}: expected {expected}, got {got}"
    )]
    OutOfOrder {
        /// Producer id.
        producer_id: i64,
        /// Sequence expected next.
        expected: i32,
        /// Sequence received.
        got: i32,
    },
    /// An epoch older than the producer's current one: INVALID_PRODUCER_EPOCH.
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    StaleEpoch {
        /// Producer id.
        producer_id: i64,
        /// Current epoch.
        current: i16,
        /// Epoch received.
        got: i16,
    },
}

/// Sequences wrap from i32::MAX to 0.
fn seq_add(seq: i32, delta: i32) -> i32 {
    ((i64::from(seq) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
}

fn meta(h: &BatchHeader) -> BatchMeta {
    BatchMeta {
        first_seq: h.base_sequence,
        last_seq: seq_add(h.base_sequence, h.last_offset_delta),
        base_offset: h.base_offset,
    }
}

/// The idempotent producers of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Checks a batch before it is appended. Batches without a producer id always append.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        if h.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let incoming = meta(h);
        let out_of_order = |expected| SequenceError::OutOfOrder {
            producer_id: h.producer_id,
            expected,
            got: incoming.first_seq,
        };
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Nothing is known of this producer: new, or its state expired or was removed
            // with its batches by retention. As in Kafka, any sequence starts it.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: h.producer_id,
                current: entry.epoch,
                got: h.producer_epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            // A new epoch starts its sequences again.
            return if incoming.first_seq == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(out_of_order(0))
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == incoming.first_seq && b.last_seq == incoming.last_seq)
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
            });
        }
        let expected = entry.batches.back().map_or(0, |b| seq_add(b.last_seq, 1));
        if incoming.first_seq == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(out_of_order(expected))
        }
    }

    /// Remembers a stored batch (its header carries the assigned base offset).
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 || h.is_control() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
        if h.producer_epoch > entry.epoch || entry.batches.is_empty() {
            entry.epoch = entry.epoch.max(h.producer_epoch);
        }
        if h.producer_epoch < entry.epoch {
            return;
        }
        if entry
            .batches
            .back()
            .is_some_and(|b| b.base_offset >= h.base_offset)
        {
            return;
        }
        if h.producer_epoch > entry.epoch {
            entry.batches.clear();
        }
        entry.batches.push_back(meta(h));
        while entry.batches.len() > DEDUP_WINDOW {
            entry.batches.pop_front();
        }
    }

    /// Forgets the producers whose newest batch is older than `expiration_ms` at `now_ms`
    /// (Kafka's `producer.id.expiration.ms`), so the state does not grow forever; returns how
    /// many went. A forgotten producer that writes again starts afresh at any sequence.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        let cutoff = now_ms.saturating_sub(expiration_ms);
        self.producers.retain(|_, e| e.last_timestamp >= cutoff);
        before - self.producers.len()
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

/// A batch header of `count` records from producer `pid`, for tests.
#[cfg(test)]
pub(crate) fn test_header(
    pid: i64,
    epoch: i16,
    seq: i32,
    count: i32,
    base_offset: i64,
) -> BatchHeader {
    BatchHeader {
        base_offset,
        batch_length: 0,
        partition_leader_epoch: 0,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: count - 1,
        base_timestamp: 0,
        max_timestamp: 0,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        record_count: count,
    }
}

#[cfg(test)]
mod tests {
    use super::test_header as h;
    use super::*;

    #[test]
    fn sequences_append_deduplicate_and_refuse_gaps() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&h(7, 0, 0, 3, -1)), Ok(SequenceCheck::Append));
        s.record(&h(7, 0, 0, 3, 10));
        assert_eq!(s.check(&h(7, 0, 3, 2, -1)), Ok(SequenceCheck::Append));
        s.record(&h(7, 0, 3, 2, 13));
        // A retry of either batch is a duplicate with its original offset.
        assert_eq!(
            s.check(&h(7, 0, 0, 3, -1)),
            Ok(SequenceCheck::Duplicate { base_offset: 10 })
        );
        assert_eq!(
            s.check(&h(7, 0, 3, 2, -1)),
            Ok(SequenceCheck::Duplicate { base_offset: 13 })
        );
        // A gap, and a batch that overlaps without matching.
        assert!(matches!(
            s.check(&h(7, 0, 6, 1, -1)),
            Err(SequenceError::OutOfOrder {
                expected: 5,
                got: 6,
                ..
            })
        ));
        assert!(matches!(
            s.check(&h(7, 0, 1, 1, -1)),
            Err(SequenceError::OutOfOrder { .. })
        ));
        // An unknown producer starts at any sequence (its state may have expired, as in
        // Kafka); non-idempotent batches always append.
        assert_eq!(s.check(&h(8, 0, 4, 1, -1)), Ok(SequenceCheck::Append));
        assert_eq!(s.check(&h(-1, -1, -1, 5, -1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut s = ProducerStates::default();
        s.record(&h(1, 2, 0, 1, 0));
        assert!(matches!(
            s.check(&h(1, 1, 1, 1, -1)),
            Err(SequenceError::StaleEpoch {
                current: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            s.check(&h(1, 3, 5, 1, -1)),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert_eq!(s.check(&h(1, 3, 0, 1, -1)), Ok(SequenceCheck::Append));
        s.record(&h(1, 3, 0, 1, 1));
        assert_eq!(s.check(&h(1, 3, 1, 1, -1)), Ok(SequenceCheck::Append));
        assert!(matches!(
            s.check(&h(1, 2, 1, 1, -1)),
            Err(SequenceError::StaleEpoch { .. })
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&h(3, 0, i, 1, i64::from(i)));
        }
        assert!(
            matches!(
                s.check(&h(3, 0, 1, 1, -1)),
                Err(SequenceError::OutOfOrder { .. })
            ),
            "fell out of the window"
        );
        assert_eq!(
            s.check(&h(3, 0, 2, 1, -1)),
            Ok(SequenceCheck::Duplicate { base_offset: 2 })
        );
        let mut w = ProducerStates::default();
        w.record(&h(4, 0, i32::MAX - 1, 2, 0));
        assert_eq!(
            w.check(&h(4, 0, 0, 1, -1)),
            Ok(SequenceCheck::Append),
            "i32::MAX wraps to 0"
        );
    }

    #[test]
    fn producers_expire_after_their_newest_batch() {
        let mut s = ProducerStates::default();
        let at = |pid, seq, offset, ts| {
            let mut header = h(pid, 0, seq, 1, offset);
            header.max_timestamp = ts;
            header
        };
        s.record(&at(1, 0, 0, 1_000));
        s.record(&at(2, 0, 1, 1_000));
        s.record(&at(2, 1, 2, 5_000));
        assert_eq!(s.expire(5_999, 2_000), 1, "producer 1 went quiet at 1 s");
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.check(&at(2, 1, -1, 0)),
            Ok(SequenceCheck::Duplicate { base_offset: 2 }),
            "producer 2 is still known"
        );
        assert_eq!(s.expire(7_000, 2_000), 0, "5 s + 2 s is not past yet");
        assert_eq!(s.expire(7_001, 2_000), 1);
        assert!(s.is_empty());
        // Producer 1 comes back mid-stream: it appends instead of failing.
        assert_eq!(s.check(&at(1, 9, -1, 8_000)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn allocated_ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIdAllocator::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).unwrap();
        assert_eq!(
            b.allocate().unwrap(),
            ID_BLOCK,
            "a restart skips the rest of the block"
        );
    }
}
