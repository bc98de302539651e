//! Committed offsets: kept in memory for reads and made durable in the internal
//! `__consumer_offsets` topic, whose records use Kafka's own key and value layouts
//! (OffsetCommitKey v1, OffsetCommitValue v3, a null value deleting the key), so the topic reads
//! the same as Kafka's. The state is rebuilt by replaying that topic: all of it at the start of
//! a single broker, one partition at a time in a cluster, when this broker becomes the leader of
//! that partition (and so the coordinator of its groups).
//!
//! Only the partition's leader appends, at its current leader epoch. A commit is acknowledged
//! only after its batch is on every in-sync replica (at once on a single broker); memory is
//! updated after.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use parking_lot::RwLock;

use super::metadata::{group_key, group_value, parse_group_key, parse_group_value, StoredGroup};
use crate::log::batch::BatchIter;
use crate::log::LogError;
use crate::topics::{Partition, Topic, TopicRegistry};

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
    /// This broker does not lead the group's partition (at the leader epoch it loaded the
    /// partition at), or stopped leading it before the records were replicated.
    #[error("this broker is not the coordinator of the group")]
    NotCoordinator,
    /// The in-sync replicas did not all acknowledge the records in time.
    #[error("the in-sync replicas did not acknowledge the offsets in time")]
    Timeout,
    /// Writing the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Encoding the batch failed.
    #[error("encoding offsets: {0}")]
    Encode(String),
}

impl OffsetStoreError {
    /// The Kafka error code a group API answers for this failure.
    pub fn code(&self) -> i16 {
        match self {
            OffsetStoreError::NotCoordinator => ResponseError::NotCoordinator.code(),
            OffsetStoreError::Timeout => ResponseError::RequestTimedOut.code(),
            _ => ResponseError::CoordinatorNotAvailable.code(),
        }
    }
}

/// Committed offsets by group.
pub type GroupOffsets = BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>;

/// What a replay of (part of) the internal topic found.
#[derive(Default)]
pub struct Replayed {
    /// Committed offsets by group.
    pub offsets: GroupOffsets,
    /// The latest record of every group (None: deleted).
    groups: BTreeMap<String, Option<StoredGroup>>,
    /// Offset records applied.
    pub records: usize,
}

impl Replayed {
    /// The stored groups (groups whose latest record is a tombstone are left out).
    pub fn groups(&self) -> BTreeMap<String, StoredGroup> {
        self.groups
            .iter()
            .filter_map(|(id, g)| g.clone().map(|g| (id.clone(), g)))
            .collect()
    }
}

/// Sets (Some) or deletes (None) one committed offset in `all`.
fn apply_to(
    all: &mut GroupOffsets,
    group: String,
    tp: TopicPartition,
    value: Option<CommittedOffset>,
) {
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

/// Replays one partition of the internal topic into `into`, from its log start to the log end
/// as of the call. The log is locked one read at a time.
pub fn replay_partition(p: &Partition, into: &mut Replayed) -> Result<(), LogError> {
    let (mut next, end) = {
        let log = p.log.lock();
        (log.log_start_offset(), log.log_end_offset())
    };
    while next < end {
        let mut data = {
            let log = p.log.lock();
            log.read(next.max(log.log_start_offset()), 1 << 20, end)?
        };
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
                    into.groups.insert(group, value);
                    continue;
                }
                let Some((group, tp)) = parse_key(key) else {
                    continue;
                };
                apply_to(&mut into.offsets, group, tp, r.value.and_then(parse_value));
                into.records += 1;
            }
        }
        next = next.max(read_end);
    }
    Ok(())
}

/// Committed offsets of every group.
#[derive(Default)]
pub struct OffsetStore {
    committed: RwLock<GroupOffsets>,
}

impl OffsetStore {
    /// Replays every partition of the internal topic: the committed offsets, and the latest
    /// record of every stored group (groups whose latest record is a tombstone are left out).
    pub fn load(topic: &Topic) -> Result<(OffsetStore, BTreeMap<String, StoredGroup>), LogError> {
        let mut replayed = Replayed::default();
        for p in topic.partitions.read().iter() {
            replay_partition(p, &mut replayed)?;
        }
        if replayed.records > 0 {
            tracing::info!(
                records = replayed.records,
                groups = replayed.offsets.len(),
                "replayed committed offsets"
            );
        }
        let groups = replayed.groups();
        let store = OffsetStore {
            committed: RwLock::new(replayed.offsets),
        };
        Ok((store, groups))
    }

    /// Adds the offsets of groups loaded from one partition, replacing what memory had of
    /// those groups.
    pub fn install(&self, offsets: GroupOffsets) {
        let mut all = self.committed.write();
        for (group, committed) in offsets {
            all.insert(group, committed);
        }
    }

    /// Forgets the offsets of every group `unloaded` names; returns how many groups went.
    pub fn unload(&self, unloaded: impl Fn(&str) -> bool) -> usize {
        let mut all = self.committed.write();
        let before = all.len();
        all.retain(|g, _| !unloaded(g));
        before - all.len()
    }

    fn apply(&self, group: String, tp: TopicPartition, value: Option<CommittedOffset>) {
        apply_to(&mut self.committed.write(), group, tp, value);
    }

    /// Appends one batch of offset records (a `None` value deletes) to the group's partition,
    /// waits until the in-sync replicas have it (until `deadline`), then applies them in
    /// memory.
    async fn write(
        &self,
        to: WriteTarget<'_>,
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
        let appended = append_records(to.registry, group, records, now_ms, to.fence)?;
        appended.replicated(to.deadline).await?;
        for (tp, v) in entries {
            self.apply(group.to_string(), tp, v);
        }
        Ok(())
    }

    /// Stores group records (None deletes the group's record), each in its group's partition,
    /// without waiting for their replication. `fence` gives the leader epoch each group's
    /// record must be written at; groups it refuses are skipped.
    pub fn store_groups(
        &self,
        registry: &TopicRegistry,
        changes: Vec<(String, Option<StoredGroup>)>,
        now_ms: i64,
        fence: impl Fn(&str) -> Result<Option<i32>, i16>,
    ) -> Result<(), OffsetStoreError> {
        for (group, stored) in changes {
            let Ok(epoch) = fence(&group) else {
                tracing::debug!(group = %group, "not the coordinator any more: record not stored");
                continue;
            };
            let record = (group_key(&group), stored.as_ref().map(group_value));
            append_records(registry, &group, vec![record], now_ms, epoch)?;
        }
        Ok(())
    }
}

/// Records appended to a partition of the internal topic, and what their replication waits
/// for.
pub struct Appended {
    partition: std::sync::Arc<Partition>,
    /// The high watermark that covers the records.
    required: i64,
    leader_epoch: i32,
}

impl Appended {
    /// Waits until every in-sync replica has the records (at once on a single broker): the
    /// leadership ending first is NOT_COORDINATOR, the deadline passing REQUEST_TIMED_OUT.
    pub async fn replicated(&self, deadline: tokio::time::Instant) -> Result<(), OffsetStoreError> {
        crate::replication::wait_for_high_watermark(
            &self.partition,
            self.required,
            self.leader_epoch,
            deadline,
        )
        .await
        .map_err(|e| {
            if e.code() == ResponseError::RequestTimedOut.code() {
                OffsetStoreError::Timeout
            } else {
                OffsetStoreError::NotCoordinator
            }
        })
    }
}

/// Appends one batch of (key, value) records to `group`'s partition of the internal topic
/// (created on first use by a single broker) as its leader, at the current leader epoch, and
/// moves the high watermark as a produce does. `fence`, when given, is the leader epoch the
/// caller loaded the partition at: a different current epoch means another leadership came in
/// between, and nothing is written. The records are in the local log when this returns.
fn append_records(
    registry: &TopicRegistry,
    group: &str,
    entries: Vec<(Bytes, Option<Bytes>)>,
    now_ms: i64,
    fence: Option<i32>,
) -> Result<Appended, OffsetStoreError> {
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
    let appended = {
        // Leadership cannot change while the log lock is held (the replica manager takes it
        // first), so the check and the append are one step.
        let mut log = partition.log.lock();
        let leader_epoch = {
            let state = partition.replica.lock();
            if !state.is_leader() || fence.is_some_and(|e| e != state.leader_epoch) {
                return Err(OffsetStoreError::NotCoordinator);
            }
            state.leader_epoch
        };
        let info = log.append(&batch, leader_epoch, now_ms)?;
        {
            let mut state = partition.replica.lock();
            state.advance_high_watermark(log.log_end_offset());
            partition.publish(&state);
        }
        partition.update_gauges(&log);
        Appended {
            partition: partition.clone(),
            required: info.last_offset + 1,
            leader_epoch,
        }
    };
    registry.appended.notify_waiters();
    Ok(appended)
}

/// Where and how long a write of offsets goes: the registry, the leader epoch the group's
/// partition was loaded at (None on a single broker) and the deadline for its replication.
#[derive(Clone, Copy)]
pub struct WriteTarget<'a> {
    /// The topics.
    pub registry: &'a TopicRegistry,
    /// See [`append_records`].
    pub fence: Option<i32>,
    /// Until when the in-sync replicas may take to acknowledge the records.
    pub deadline: tokio::time::Instant,
}

impl OffsetStore {
    /// Commits offsets for a group.
    pub async fn commit(
        &self,
        to: WriteTarget<'_>,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
        now_ms: i64,
    ) -> Result<(), OffsetStoreError> {
        self.write(
            to,
            group,
            offsets.into_iter().map(|(tp, c)| (tp, Some(c))).collect(),
            now_ms,
        )
        .await
    }

    /// Deletes some of a group's offsets (those it has).
    pub async fn delete(
        &self,
        to: WriteTarget<'_>,
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
            to,
            group,
            present.into_iter().map(|tp| (tp, None)).collect(),
            now_ms,
        )
        .await
    }

    /// Deletes every offset of a group.
    pub async fn delete_group(
        &self,
        to: WriteTarget<'_>,
        group: &str,
        now_ms: i64,
    ) -> Result<(), OffsetStoreError> {
        let all: Vec<_> = self
            .committed
            .read()
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default();
        self.delete(to, group, &all, now_ms).await
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

    fn target(registry: &TopicRegistry) -> WriteTarget<'_> {
        WriteTarget {
            registry,
            fence: None,
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn replay_after_compaction_keeps_latest_commits_and_forgets_deleted_groups() {
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
        let commit = |group: &'static str, round: i64| {
            let offsets: Vec<_> = (0..3)
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
            (group, offsets)
        };
        for round in 0..40 {
            for g in ["g", "gone"] {
                let (g, offsets) = commit(g, round);
                store
                    .commit(target(&registry), g, offsets, now)
                    .await
                    .unwrap();
            }
        }
        store
            .delete_group(target(&registry), "gone", now)
            .await
            .unwrap();
        for round in 40..60 {
            let (g, offsets) = commit("g", round);
            store
                .commit(target(&registry), g, offsets, now)
                .await
                .unwrap();
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

    /// Committed offsets of `group` for partitions 0..3 of topic "t", at `base`.
    fn offsets(base: i64) -> Vec<(TopicPartition, CommittedOffset)> {
        (0..3)
            .map(|p| {
                let c = CommittedOffset {
                    offset: base + i64::from(p),
                    leader_epoch: -1,
                    metadata: None,
                    commit_timestamp: 1,
                };
                (("t".to_string(), p), c)
            })
            .collect()
    }

    #[tokio::test]
    async fn one_partition_replays_only_its_groups_and_unload_forgets_them() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::config::BrokerConfig::for_tests(dir.path().into());
        cfg.offsets_topic_num_partitions = 4;
        let metrics = Arc::new(crate::metrics::Metrics::new().unwrap());
        let registry = TopicRegistry::open(Arc::new(cfg), metrics).unwrap();
        let topic = super::super::Groups::ensure_offsets_topic(&registry).unwrap();
        let groups = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let store = OffsetStore::default();
        for (i, g) in groups.iter().enumerate() {
            let base = 100 * i as i64;
            store
                .commit(target(&registry), g, offsets(base), 1)
                .await
                .unwrap();
        }
        store
            .store_groups(
                &registry,
                vec![(
                    "a".to_string(),
                    Some(StoredGroup {
                        group_id: "a".into(),
                        protocol_type: "consumer".into(),
                        generation: 3,
                        protocol_name: Some("range".into()),
                        leader: None,
                        state_timestamp: 1,
                        members: vec![],
                    }),
                )],
                1,
                |_| Ok(None),
            )
            .unwrap();
        let home = coordinator_partition("a", 4);
        let mut replayed = Replayed::default();
        replay_partition(&topic.partition(home).unwrap(), &mut replayed).unwrap();
        let expected: Vec<String> = groups
            .iter()
            .filter(|g| coordinator_partition(g, 4) == home)
            .map(|g| g.to_string())
            .collect();
        assert!(expected.len() < groups.len(), "the groups spread out");
        assert_eq!(
            replayed.offsets.keys().cloned().collect::<Vec<_>>(),
            expected
        );
        assert_eq!(replayed.records, 3 * expected.len());
        assert_eq!(replayed.groups().keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(replayed.groups()["a"].generation, 3);

        // A coordinator that loses the partition forgets exactly its groups, and gets them
        // back, as committed, when it loads the partition again.
        let gone = store.unload(|g| coordinator_partition(g, 4) == home);
        assert_eq!(gone, expected.len());
        assert!(store.group("a").is_empty());
        assert_eq!(store.groups().len(), groups.len() - expected.len());
        store.install(replayed.offsets);
        assert_eq!(store.groups().len(), groups.len());
        assert_eq!(store.fetch("a", "t", 2).map(|c| c.offset), Some(2));
    }

    #[tokio::test]
    async fn only_the_leader_appends_at_the_loaded_epoch() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::config::BrokerConfig::for_tests(dir.path().into());
        cfg.offsets_topic_num_partitions = 1;
        let metrics = Arc::new(crate::metrics::Metrics::new().unwrap());
        let registry = TopicRegistry::open(Arc::new(cfg), metrics).unwrap();
        let topic = super::super::Groups::ensure_offsets_topic(&registry).unwrap();
        let partition = topic.partition(0).unwrap();
        let store = OffsetStore::default();
        store
            .commit(target(&registry), "g", offsets(5), 1)
            .await
            .unwrap();
        assert_eq!(partition.high_watermark(), 3, "the high watermark moves");
        let fenced = WriteTarget {
            fence: Some(7),
            ..target(&registry)
        };
        let err = store.commit(fenced, "g", offsets(9), 1).await.unwrap_err();
        assert!(matches!(err, OffsetStoreError::NotCoordinator), "{err}");
        assert_eq!(err.code(), ResponseError::NotCoordinator.code());
        assert_eq!(store.fetch("g", "t", 0).map(|c| c.offset), Some(5));
        partition.replica.lock().leader = crate::controller::NO_LEADER;
        let err = store
            .commit(target(&registry), "g", offsets(9), 1)
            .await
            .unwrap_err();
        assert!(matches!(err, OffsetStoreError::NotCoordinator), "{err}");
        assert_eq!(partition.log.lock().log_end_offset(), 3, "nothing appended");
    }
}
