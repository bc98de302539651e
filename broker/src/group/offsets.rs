//! Committed offsets: kept in memory for reads and made durable in the internal
//! `__consumer_offsets` topic, whose records use Kafka's own key and value layouts
//! (OffsetCommitKey v1, OffsetCommitValue v3, a null value deleting the key), so the topic reads
//! the same as Kafka's. The state is rebuilt at start by replaying that topic.
//!
//! A commit is acknowledged only after its batch is in the log; memory is updated after.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::RwLock;

use super::metadata::{group_key, group_value, parse_group_key, parse_group_value, StoredGroup};
use crate::log::batch::BatchIter;
use crate::log::LogError;
use crate::topics::{Topic, TopicRegistry};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

const KEY_OFFSET_V1: i16 = 1;
const VALUE_OFFSET_V3: i16 = 3;

/// A committed offset of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
    /// When it was committed, ms since the epoch.
    pub commit_timestamp: i64,
}

/// (topic, partition)
pub type TopicPartition = (String, i32);

/// Java's `String.hashCode`, which Kafka uses to place a group on an offsets partition.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of `group`: abs(hashCode) mod partitions, as Kafka.
pub fn coordinator_partition(group: &str, partitions: i32) -> i32 {
    let h = java_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

fn put_str(buf: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.put_slice(&s.as_bytes()[..len]);
}

fn get_str(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    let len = len as usize;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok()
}

/// OffsetCommitKey v1: version, group, topic, partition.
fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + group.len() + topic.len());
    b.put_i16(KEY_OFFSET_V1);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

/// OffsetCommitValue v3: version, offset, leader epoch, metadata, commit timestamp.
fn offset_value(c: &CommittedOffset) -> Bytes {
    let meta = c.metadata.as_deref().unwrap_or("");
    let mut b = BytesMut::with_capacity(26 + meta.len());
    b.put_i16(VALUE_OFFSET_V3);
    b.put_i64(c.offset);
    b.put_i32(c.leader_epoch);
    put_str(&mut b, meta);
    b.put_i64(c.commit_timestamp);
    b.freeze()
}

/// The offset after the last whole batch in `data`.
fn batches_end(data: &[u8]) -> i64 {
    BatchIter::new(data)
        .filter_map(Result::ok)
        .map(|(_, h)| h.last_offset().saturating_add(1))
        .max()
        .unwrap_or(i64::MIN)
}

fn parse_key(mut k: Bytes) -> Option<(String, TopicPartition)> {
    if k.remaining() < 2 {
        return None;
    }
    match k.get_i16() {
        0 | KEY_OFFSET_V1 => {
            let group = get_str(&mut k)?;
            let topic = get_str(&mut k)?;
            (k.remaining() >= 4).then(|| (group, (topic, k.get_i32())))
        }
        _ => None, // group metadata and anything newer: not offsets
    }
}

fn parse_value(mut v: Bytes) -> Option<CommittedOffset> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=3).contains(&version) || v.remaining() < 8 {
        return None;
    }
    let offset = v.get_i64();
    let leader_epoch = if version >= 3 && v.remaining() >= 4 {
        v.get_i32()
    } else {
        -1
    };
    let metadata = get_str(&mut v)?;
    let commit_timestamp = if v.remaining() >= 8 { v.get_i64() } else { -1 };
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata: (!metadata.is_empty()).then_some(metadata),
        commit_timestamp,
    })
}

/// Why a commit could not be made durable.
#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    /// The internal topic or its partition is missing.
    #[error("the {OFFSETS_TOPIC} partition {0} is not available")]
    Unavailable(i32),
    /// Writing the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Encoding the batch failed.
    #[error("encoding offsets: {0}")]
    Encode(String),
}

/// Committed offsets of every group.
#[derive(Default)]
pub struct OffsetStore {
    committed: RwLock<BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>>,
}

impl OffsetStore {
    /// Replays every partition of the internal topic: the committed offsets, and the latest
    /// record of every stored group (groups whose latest record is a tombstone are left out).
    pub fn load(topic: &Topic) -> Result<(OffsetStore, BTreeMap<String, StoredGroup>), LogError> {
        let store = OffsetStore::default();
        let mut groups: BTreeMap<String, Option<StoredGroup>> = BTreeMap::new();
        let mut applied = 0usize;
        for p in topic.partitions.read().iter() {
            let log = p.log.lock();
            let end = log.log_end_offset();
            let mut next = log.log_start_offset();
            while next < end {
                let mut data = log.read(next, 1 << 20, end)?;
                if data.is_empty() {
                    break;
                }
                // Compaction leaves gaps and may leave empty batches: continue after the last
                // batch read even when its last records are gone.
                let read_end = batches_end(&data);
                while data.has_remaining() {
                    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        RecordBatchDecoder::decode(&mut data)
                    }));
                    let Ok(Ok(set)) = decoded else {
                        return Err(LogError::Corrupt(format!(
                            "{OFFSETS_TOPIC}-{} near offset {next}: undecodable batch",
                            p.index
                        )));
                    };
                    for r in set.records {
                        if r.offset < next {
                            continue;
                        }
                        next = r.offset + 1;
                        let Some(key) = r.key else {
                            continue;
                        };
                        if let Some(group) = parse_group_key(key.clone()) {
                            let value = r.value.and_then(|v| parse_group_value(group.clone(), v));
                            groups.insert(group, value);
                            continue;
                        }
                        let Some((group, tp)) = parse_key(key) else {
                            continue;
                        };
                        store.apply(group, tp, r.value.and_then(parse_value));
                        applied += 1;
                    }
                }
                next = next.max(read_end);
            }
        }
        if applied > 0 {
            tracing::info!(
                records = applied,
                groups = store.committed.read().len(),
                "replayed committed offsets"
            );
        }
        let groups = groups
            .into_iter()
            .filter_map(|(id, g)| g.map(|g| (id, g)))
            .collect();
        Ok((store, groups))
    }

    fn apply(&self, group: String, tp: TopicPartition, value: Option<CommittedOffset>) {
        let mut all = self.committed.write();
        match value {
            Some(v) => {
                all.entry(group).or_default().insert(tp, v);
            }
            None => {
                if let Some(g) = all.get_mut(&group) {
                    g.remove(&tp);
                    if g.is_empty() {
                        all.remove(&group);
                    }
                }
            }
        }
    }

    /// Appends one batch of offset records (a `None` value deletes) to the group's partition,
    /// then applies them in memory.
    fn write(
        &self,
        registry: &TopicRegistry,
        group: &str,
        entries: Vec<(TopicPartition, Option<CommittedOffset>)>,
        now_ms: i64,
    ) -> Result<(), OffsetStoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let records = entries
            .iter()
            .map(|((t, p), v)| (offset_key(group, t, *p), v.as_ref().map(offset_value)))
            .collect();
        append_records(registry, group, records, now_ms)?;
        for (tp, v) in entries {
            self.apply(group.to_string(), tp, v);
        }
        Ok(())
    }

    /// Stores group records (None deletes the group's record), each in its group's partition.
    pub fn store_groups(
        &self,
        registry: &TopicRegistry,
        changes: Vec<(String, Option<StoredGroup>)>,
        now_ms: i64,
    ) -> Result<(), OffsetStoreError> {
        for (group, stored) in changes {
            let record = (group_key(&group), stored.as_ref().map(group_value));
            append_records(registry, &group, vec![record], now_ms)?;
        }
        Ok(())
    }
}

/// Appends one batch of (key, value) records to `group`'s partition of the internal topic
/// (created on first use); the records are in the log when this returns.
fn append_records(
    registry: &TopicRegistry,
    group: &str,
    entries: Vec<(Bytes, Option<Bytes>)>,
    now_ms: i64,
) -> Result<(), OffsetStoreError> {
    let topic = super::Groups::ensure_offsets_topic(registry)
        .map_err(|_| OffsetStoreError::Unavailable(-1))?;
    let index = coordinator_partition(group, topic.partition_count());
    let partition = topic
        .partition(index)
        .ok_or(OffsetStoreError::Unavailable(index))?;
    let records: Vec<Record> = entries
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant;
            // this gives the batch base sequence -1 (no producer id).
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| OffsetStoreError::Encode(e.to_string()))?;
    {
        let mut log = partition.log.lock();
        log.append(&batch, 0, now_ms)?;
        partition.update_gauges(&log);
    }
    registry.appended.notify_waiters();
    Ok(())
}

impl OffsetStore {
    /// Commits offsets for a group.
    pub fn commit(
        &self,
        registry: &TopicRegistry,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
        now_ms: i64,
    ) -> Result<(), OffsetStoreError> {
        self.write(
            registry,
            group,
            offsets.into_iter().map(|(tp, c)| (tp, Some(c))).collect(),
            now_ms,
        )
    }

    /// Deletes some of a group's offsets (those it has).
    pub fn delete(
        &self,
        registry: &TopicRegistry,
        group: &str,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<(), OffsetStoreError> {
        let present: Vec<_> = {
            let all = self.committed.read();
            partitions
                .iter()
                .filter(|tp| all.get(group).is_some_and(|g| g.contains_key(*tp)))
                .cloned()
                .collect()
        };
        self.write(
            registry,
            group,
            present.into_iter().map(|tp| (tp, None)).collect(),
            now_ms,
        )
    }

    /// Deletes every offset of a group.
    pub fn delete_group(
        &self,
        registry: &TopicRegistry,
        group: &str,
        now_ms: i64,
    ) -> Result<(), OffsetStoreError> {
        let all: Vec<_> = self
            .committed
            .read()
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default();
        self.delete(registry, group, &all, now_ms)
    }

    /// The committed offset of one partition.
    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.committed
            .read()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// Every committed offset of a group.
    pub fn group(&self, group: &str) -> Vec<(TopicPartition, CommittedOffset)> {
        self.committed
            .read()
            .get(group)
            .map(|g| g.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Groups that have committed offsets.
    pub fn groups(&self) -> Vec<String> {
        self.committed.read().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_placement_matches_kafka() {
        // String.hashCode is s[0]*31^(n-1) + ... + s[n-1] in wrapping 32-bit arithmetic.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("my-group"), -1_906_497_762);
        assert_eq!(coordinator_partition("my-group", 50), 12);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("ab"), 97 * 31 + 98);
        for g in ["g", "my-group", "consumer-1", "ä-group"] {
            let p = coordinator_partition(g, 50);
            assert!((0..50).contains(&p));
        }
        assert_eq!(coordinator_partition("a", 50), 97 % 50);
    }

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let c = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: Some("m".into()),
            commit_timestamp: 1000,
        };
        let key = offset_key("grp", "orders", 7);
        assert_eq!(&key[..2], &[0, 1], "key version 1");
        assert_eq!(
            parse_key(key),
            Some(("grp".to_string(), ("orders".to_string(), 7)))
        );
        let value = offset_value(&c);
        assert_eq!(&value[..2], &[0, 3], "value version 3");
        assert_eq!(parse_value(value), Some(c));
        let none = CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp: 5,
        };
        assert_eq!(parse_value(offset_value(&none)), Some(none));
        assert_eq!(
            parse_key(Bytes::from_static(&[0, 2, 0, 1, b'g'])),
            None,
            "group metadata keys are skipped"
        );
        assert_eq!(
            parse_key(Bytes::from_static(&[0, 1, 0, 9])),
            None,
            "truncated"
        );
        assert_eq!(parse_value(Bytes::from_static(&[0, 3, 1])), None);
    }

    #[test]
    fn replay_after_compaction_keeps_latest_commits_and_forgets_deleted_groups() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::config::BrokerConfig::for_tests(dir.path().into());
        cfg.offsets_topic_num_partitions = 1;
        let metrics = Arc::new(crate::metrics::Metrics::new().unwrap());
        let registry = TopicRegistry::open(Arc::new(cfg), metrics).unwrap();
        let topic = super::super::Groups::ensure_offsets_topic(&registry).unwrap();
        let mut configs = topic.configs.read().clone();
        assert_eq!(
            configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        for (k, v) in [
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "0"),
        ] {
            configs.insert(k.into(), v.into());
        }
        registry.set_configs(OFFSETS_TOPIC, configs).unwrap();
        let store = OffsetStore::default();
        let now = crate::server::now_ms();
        let commit = |group: &str, round: i64| {
            let offsets = (0..3)
                .map(|p| {
                    let c = CommittedOffset {
                        offset: round * 10 + i64::from(p),
                        leader_epoch: -1,
                        metadata: None,
                        commit_timestamp: now,
                    };
                    (("t".to_string(), p), c)
                })
                .collect();
            store.commit(&registry, group, offsets, now).unwrap();
        };
        for round in 0..40 {
            commit("g", round);
            commit("gone", round);
        }
        store.delete_group(&registry, "gone", now).unwrap();
        for round in 40..60 {
            commit("g", round);
        }
        let partition = topic.partition(0).unwrap();
        let end = partition.log.lock().log_end_offset();
        assert!(registry.clean_logs(now + 1) >= 1, "a pass ran");
        let log = partition.log.lock();
        let mut batches = 0;
        log.for_each_batch_header(|_| batches += 1).unwrap();
        assert!(batches < 60, "{batches} batches left of 103");
        assert_eq!(log.log_end_offset(), end);
        drop(log);
        let (loaded, _) = OffsetStore::load(&topic).unwrap();
        assert_eq!(loaded.group("g"), store.group("g"));
        assert_eq!(loaded.group("g")[0].1.offset, 590);
        assert!(loaded.group("gone").is_empty());
        assert_eq!(loaded.groups(), vec!["g".to_string()]);
    }
}
