//! The topics this broker hosts: names, ids, partitions with their logs, config overrides.
//!
//! Owns the partition logs and the metadata file. Creation writes partition directories before
//! the metadata file names them; deletion removes the topic from the metadata file before its
//! directories, so a crash at any point leaves no topic pointing at missing data (stray
//! directories are removed at start). It never speaks the Kafka protocol.

mod cleaner;
pub mod config;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::log::{Log, LogError};
use crate::metrics::{Metrics, PartitionGauges};
use crate::producer::{ProducerIdAllocator, ProducerStates};
use crate::replication::state::{Progress, ReplicaState};
use crate::replication::throttle::ReplicationQuotas;
use store::{MetaFile, TopicRecord};

/// Longest legal topic name, as Kafka.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why a topic operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The name breaks Kafka's naming rules.
    #[error("{0}")]
    InvalidName(String),
    /// The topic exists.
    #[error("Topic '{0}' already exists.")]
    AlreadyExists(String),
    /// No such topic.
    #[error("Topic '{0}' does not exist.")]
    Unknown(String),
    /// A bad partition count.
    #[error("{0}")]
    InvalidPartitions(String),
    /// A bad config.
    #[error(transparent)]
    InvalidConfig(#[from] config::InvalidConfig),
    /// Disk trouble.
    #[error("storage error: {0}")]
    Storage(String),
}

impl From<LogError> for TopicError {
    fn from(e: LogError) -> Self {
        TopicError::Storage(e.to_string())
    }
}

impl From<std::io::Error> for TopicError {
    fn from(e: std::io::Error) -> Self {
        TopicError::Storage(e.to_string())
    }
}

/// Checks a topic name against Kafka's rules.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(TopicError::InvalidName(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicError::InvalidName(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(TopicError::InvalidName(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Names that differ only by '.' versus '_' collide in metric names, so Kafka refuses them.
fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// One partition of a topic.
pub struct Partition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub index: i32,
    /// The log. Appends and reads take this lock; reads are positional and short.
    pub log: Mutex<Log>,
    /// Idempotent producers of this partition. Taken only while holding `log`, so that the
    /// sequence check and the append are one step.
    pub producers: Mutex<ProducerStates>,
    /// Gauges of this partition.
    pub gauges: PartitionGauges,
    /// Who leads, the ISR, the high watermark. Lock order: `log`, then `replica`.
    pub replica: Mutex<ReplicaState>,
    /// The high watermark and leadership, for acks=all waits.
    pub progress: watch::Sender<Progress>,
}

impl Partition {
    /// Publishes `state`'s high watermark and leadership to waiters (when they changed).
    pub fn publish(&self, state: &ReplicaState) {
        let now = state.progress();
        self.progress.send_if_modified(|p| {
            let changed = *p != now;
            *p = now;
            changed
        });
        self.gauges.high_watermark.set(now.high_watermark);
        self.gauges.isr_size.set(state.isr.len() as i64);
        self.gauges.replicas.set(state.replicas.len() as i64);
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.replica.lock().high_watermark
    }

    /// Refreshes the gauges from the log.
    pub fn update_gauges(&self, log: &Log) {
        self.gauges.log_end_offset.set(log.log_end_offset());
        self.gauges.log_start_offset.set(log.log_start_offset());
        self.gauges
            .size_bytes
            .set(i64::try_from(log.size_bytes()).unwrap_or(i64::MAX));
        self.gauges.segments.set(log.segment_count() as i64);
    }
}

/// One topic.
pub struct Topic {
    /// Name.
    pub name: Arc<str>,
    /// Topic id.
    pub id: Uuid,
    /// Partitions, by index.
    pub partitions: RwLock<Vec<Arc<Partition>>>,
    /// Config overrides.
    pub configs: RwLock<BTreeMap<String, String>>,
}

impl Topic {
    /// Internal topics (`__consumer_offsets`) are written only by the broker itself.
    pub fn is_internal(&self) -> bool {
        &*self.name == crate::group::offsets::OFFSETS_TOPIC
    }

    /// The partition with this index.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let parts = self.partitions.read();
        usize::try_from(index)
            .ok()
            .and_then(|i| parts.get(i).cloned())
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }
}

/// Every topic of the broker.
pub struct TopicRegistry {
    /// The settings of the flags.
    broker: Arc<BrokerConfig>,
    /// The dynamic broker configs and the flags with them applied: what topics without an
    /// override of their own follow.
    dynamic: RwLock<DynamicConfigs>,
    /// The replication throttles of this broker (bounds from the dynamic configs).
    quotas: ReplicationQuotas,
    data_dir: PathBuf,
    cluster_id: String,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes changes to the topic set and the metadata file.
    change: Mutex<()>,
    metrics: Arc<Metrics>,
    /// Woken after every append, for long-polling fetches.
    pub appended: Notify,
    /// Producer ids for InitProducerId.
    pub producer_ids: ProducerIdAllocator,
    /// Part of a cluster: the metadata quorum decides topics and leaders; partitions open
    /// without a leader and with the checkpointed high watermark.
    clustered: bool,
    /// High watermarks read from [`HW_CHECKPOINT_FILE`] at start (cluster mode).
    hw_checkpoint: BTreeMap<String, i64>,
    /// Why the log directory is offline, once a write to it failed (full disk, I/O error,
    /// read-only file system). As in Kafka, it stays offline until the process restarts:
    /// nothing is written there any more, and in a cluster the broker gives up its
    /// leaderships and fences itself.
    log_dir_failure: tokio::sync::watch::Sender<Option<String>>,
}

/// The dynamic broker configs (Kafka names) this broker follows.
#[derive(Clone)]
struct DynamicConfigs {
    /// Cluster-wide defaults (the BROKER resource "").
    defaults: BTreeMap<String, String>,
    /// This broker's own (the BROKER resource named by its id), before the defaults.
    own: BTreeMap<String, String>,
    /// The flags with the defaults, then this broker's own configs, applied.
    effective: Arc<BrokerConfig>,
}

/// High watermarks of every partition, written periodically and at clean shutdown.
pub const HW_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";

/// The flags with `defaults`, then `own`, applied; an entry that does not apply is skipped
/// with a warning.
fn effective_config(
    broker: &BrokerConfig,
    defaults: &BTreeMap<String, String>,
    own: &BTreeMap<String, String>,
) -> BrokerConfig {
    let mut out = broker.clone();
    for (k, v) in defaults.iter().chain(own) {
        if let Err(e) = config::set_dynamic(&mut out, k, v) {
            tracing::warn!(key = %k, error = %e, "ignoring a dynamic broker config");
        }
    }
    out
}

fn partition_key(topic: &str, index: i32) -> String {
    format!("{topic}-{index}")
}

fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}

impl TopicRegistry {
    /// Opens the data dir: reads the metadata file, recovers every partition log, removes
    /// directories no topic names.
    pub fn open(broker: Arc<BrokerConfig>, metrics: Arc<Metrics>) -> anyhow::Result<TopicRegistry> {
        let data_dir = broker.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| anyhow::anyhow!("creating data dir {}: {e}", data_dir.display()))?;
        let meta = match store::load(&data_dir)? {
            Some(meta) => meta,
            None => {
                let meta = MetaFile {
                    version: 1,
                    cluster_id: store::new_cluster_id(),
                    node_id: broker.node_id,
                    topics: vec![],
                    broker_defaults: BTreeMap::new(),
                    broker_configs: BTreeMap::new(),
                };
                store::save(&data_dir, &meta)?;
                meta
            }
        };
        if meta.node_id != broker.node_id {
            anyhow::bail!(
                "data dir {} belongs to node {}, not --node-id {}",
                data_dir.display(),
                meta.node_id,
                broker.node_id
            );
        }
        let clustered = broker.controller_quorum_voters.is_some();
        let hw_checkpoint = if clustered {
            match crate::log::checkpoint::read_offsets(&data_dir.join(HW_CHECKPOINT_FILE)) {
                Ok(m) => m,
                Err(crate::log::CheckpointError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    BTreeMap::new()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring the high watermark checkpoint");
                    BTreeMap::new()
                }
            }
        } else {
            BTreeMap::new()
        };
        let cluster_id = match &broker.controller_quorum_voters {
            Some(v) => store::cluster_id_for(&v.to_string()),
            None => meta.cluster_id.clone(),
        };
        let effective = Arc::new(effective_config(
            &broker,
            &meta.broker_defaults,
            &meta.broker_configs,
        ));
        let quotas = ReplicationQuotas::new(metrics.clone());
        quotas.configure(&meta.broker_configs, &meta.broker_defaults);
        let registry = TopicRegistry {
            clustered,
            hw_checkpoint,
            dynamic: RwLock::new(DynamicConfigs {
                defaults: meta.broker_defaults.clone(),
                own: meta.broker_configs.clone(),
                effective,
            }),
            quotas,
            broker,
            data_dir: data_dir.clone(),
            cluster_id,
            topics: RwLock::new(BTreeMap::new()),
            change: Mutex::new(()),
            metrics,
            appended: Notify::new(),
            producer_ids: ProducerIdAllocator::open(&data_dir)?,
            log_dir_failure: tokio::sync::watch::channel(None).0,
        };
        let mut topics = BTreeMap::new();
        for rec in &meta.topics {
            let topic = registry.open_topic(rec)?;
            topics.insert(rec.name.clone(), topic);
        }
        *registry.topics.write() = topics;
        registry.remove_strays()?;
        Ok(registry)
    }

    fn open_topic(&self, rec: &TopicRecord) -> Result<Arc<Topic>, TopicError> {
        let name: Arc<str> = Arc::from(rec.name.as_str());
        let mut parts = Vec::with_capacity(rec.partitions.max(0) as usize);
        for i in 0..rec.partitions {
            parts.push(self.open_partition(&name, i, &rec.configs)?);
        }
        Ok(Arc::new(Topic {
            name,
            id: rec.id,
            partitions: RwLock::new(parts),
            configs: RwLock::new(rec.configs.clone()),
        }))
    }

    fn open_partition(
        &self,
        topic: &Arc<str>,
        index: i32,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Arc<Partition>, TopicError> {
        let log_config = config::log_config(overrides, &self.broker());
        let log = Log::open(partition_dir(&self.data_dir, topic, index), log_config)?;
        let producers = ProducerStates::load(&log)?;
        if !producers.is_empty() {
            tracing::info!(topic = %topic, partition = index, producers = producers.len(), "rebuilt producer state");
        }
        let state = if self.clustered {
            ReplicaState::unknown(
                self.broker.node_id,
                self.checkpointed_hw(topic, index, &log),
            )
        } else {
            ReplicaState::standalone(self.broker.node_id, log.log_end_offset())
        };
        let p = Partition {
            topic: topic.clone(),
            index,
            log: Mutex::new(log),
            producers: Mutex::new(producers),
            gauges: self.metrics.partition(topic, index),
            progress: watch::channel(state.progress()).0,
            replica: Mutex::new(state),
        };
        p.publish(&p.replica.lock());
        p.update_gauges(&p.log.lock());
        Ok(Arc::new(p))
    }

    /// The checkpointed high watermark of a partition, capped at its log end (0 if none).
    fn checkpointed_hw(&self, topic: &str, index: i32, log: &Log) -> i64 {
        self.hw_checkpoint
            .get(&partition_key(topic, index))
            .copied()
            .unwrap_or(0)
            .clamp(log.log_start_offset(), log.log_end_offset())
    }

    /// Writes every partition's high watermark to [`HW_CHECKPOINT_FILE`].
    pub fn write_hw_checkpoint(&self) {
        if !self.clustered {
            return;
        }
        let offsets: BTreeMap<String, i64> = self
            .all_partitions()
            .iter()
            .map(|p| (partition_key(&p.topic, p.index), p.high_watermark()))
            .collect();
        let path = self.data_dir.join(HW_CHECKPOINT_FILE);
        if let Err(e) = crate::log::checkpoint::write_offsets(&path, &offsets) {
            tracing::warn!(error = %e, "could not write the high watermark checkpoint");
        }
    }

    /// Whether the metadata quorum decides this broker's topics.
    pub fn is_clustered(&self) -> bool {
        self.clustered
    }

    /// Removes partition directories that no topic names (left by a crash mid-create or
    /// mid-delete).
    fn remove_strays(&self) -> anyhow::Result<()> {
        let topics = self.topics.read();
        for entry in std::fs::read_dir(&self.data_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only partition directories (`<topic>-<index>`) are ours to remove: the quorum's
            // directory and anything else a user keeps here stay.
            let partition_like = name
                .rsplit_once('-')
                .is_some_and(|(t, idx)| !t.is_empty() && idx.parse::<u32>().is_ok());
            if !partition_like {
                continue;
            }
            let known = name.rsplit_once('-').is_some_and(|(topic, idx)| {
                idx.parse::<i32>()
                    .is_ok_and(|i| topics.get(topic).is_some_and(|t| i < t.partition_count()))
            });
            if !known {
                tracing::warn!(dir = %entry.path().display(), "removing a directory no topic names");
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    fn save(&self) -> Result<(), TopicError> {
        let topics = self.topics.read();
        let meta = MetaFile {
            version: 1,
            cluster_id: self.cluster_id.clone(),
            node_id: self.broker.node_id,
            topics: topics
                .values()
                .map(|t| TopicRecord {
                    name: t.name.to_string(),
                    id: t.id,
                    partitions: t.partition_count(),
                    configs: t.configs.read().clone(),
                })
                .collect(),
            broker_defaults: self.dynamic.read().defaults.clone(),
            broker_configs: self.dynamic.read().own.clone(),
        };
        store::save(&self.data_dir, &meta)?;
        Ok(())
    }

    /// The broker's settings as topics follow them: the flags with the cluster-wide dynamic
    /// defaults and this broker's own dynamic configs applied.
    pub fn broker(&self) -> Arc<BrokerConfig> {
        self.dynamic.read().effective.clone()
    }

    /// The broker's settings as its flags gave them.
    pub fn static_broker(&self) -> &BrokerConfig {
        &self.broker
    }

    /// The cluster-wide dynamic defaults (Kafka names).
    pub fn dynamic_defaults(&self) -> BTreeMap<String, String> {
        self.dynamic.read().defaults.clone()
    }

    /// This broker's own dynamic configs (Kafka names).
    pub fn dynamic_broker_configs(&self) -> BTreeMap<String, String> {
        self.dynamic.read().own.clone()
    }

    /// The replication throttles of this broker.
    pub fn replication_quotas(&self) -> &ReplicationQuotas {
        &self.quotas
    }

    /// Replaces the cluster-wide dynamic defaults and applies them to the log of every topic
    /// that has no override of its own (persisted with the topics). An entry this version
    /// cannot apply (from the metadata log of another version) is skipped with a warning.
    pub fn set_dynamic_defaults(
        &self,
        defaults: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let own = self.dynamic_broker_configs();
        self.set_dynamic(defaults, own)
    }

    /// Replaces this broker's own dynamic configs (which come before the cluster-wide
    /// defaults) and applies them as [`TopicRegistry::set_dynamic_defaults`] does.
    pub fn set_dynamic_broker_configs(
        &self,
        own: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let defaults = self.dynamic_defaults();
        self.set_dynamic(defaults, own)
    }

    fn set_dynamic(
        &self,
        defaults: BTreeMap<String, String>,
        own: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let _guard = self.change.lock();
        let effective = Arc::new(effective_config(&self.broker, &defaults, &own));
        let next = DynamicConfigs {
            defaults: defaults.clone(),
            own: own.clone(),
            effective: effective.clone(),
        };
        let previous = std::mem::replace(&mut *self.dynamic.write(), next);
        if let Err(e) = self.save() {
            *self.dynamic.write() = previous;
            return Err(e);
        }
        self.quotas.configure(&own, &defaults);
        for topic in self.all() {
            let log_config = config::log_config(&topic.configs.read(), &effective);
            for p in topic.partitions.read().iter() {
                p.log.lock().set_config(log_config.clone());
            }
        }
        tracing::info!(?defaults, ?own, "changed the dynamic broker configs");
        Ok(())
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// A topic by id.
    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// Every topic, in name order.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// Checks that a topic could be created, without creating it.
    pub fn check_create(
        &self,
        name: &str,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        validate_name(name)?;
        let topics = self.topics.read();
        if topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let key = collision_key(name);
        if let Some(other) = topics.keys().find(|t| collision_key(t) == key) {
            return Err(TopicError::InvalidName(format!(
                "Topic '{name}' collides with existing topic: {other}"
            )));
        }
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions must be larger than 0, got {partitions}."
            )));
        }
        if partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {partitions} is above this broker's limit of 100000."
            )));
        }
        config::validate_all(configs)?;
        Ok(())
    }

    /// Creates a topic.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        self.create_with_id(name, Uuid::new_v4(), partitions, configs)
    }

    /// Creates a topic with a given id (in a cluster, the id the controller assigned).
    pub fn create_with_id(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.change.lock();
        self.check_create(name, partitions, &configs)?;
        let rec = TopicRecord {
            name: name.to_string(),
            id,
            partitions,
            configs,
        };
        let topic = match self.open_topic(&rec) {
            Ok(t) => t,
            Err(e) => {
                for i in 0..partitions {
                    let _ = std::fs::remove_dir_all(partition_dir(&self.data_dir, name, i));
                }
                return Err(e);
            }
        };
        self.topics.write().insert(name.to_string(), topic.clone());
        if let Err(e) = self.save() {
            self.topics.write().remove(name);
            return Err(e);
        }
        tracing::info!(topic = name, partitions, id = %rec.id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data.
    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.change.lock();
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        if let Err(e) = self.save() {
            self.topics.write().insert(name.to_string(), topic);
            return Err(e);
        }
        for p in topic.partitions.read().iter() {
            self.metrics.remove_partition(name, p.index);
            if let Err(e) = std::fs::remove_dir_all(partition_dir(&self.data_dir, name, p.index)) {
                tracing::warn!(topic = name, partition = p.index, error = %e, "removing partition dir");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        self.appended.notify_waiters();
        Ok(topic)
    }

    /// Checks that a topic could grow to `count` partitions.
    pub fn check_partitions(&self, name: &str, count: i32) -> Result<Arc<Topic>, TopicError> {
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partition_count();
        if count < current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if count == current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {count} is above this broker's limit of 100000."
            )));
        }
        Ok(topic)
    }

    /// Grows a topic to `count` partitions.
    pub fn add_partitions(&self, name: &str, count: i32) -> Result<(), TopicError> {
        let _guard = self.change.lock();
        let topic = self.check_partitions(name, count)?;
        let current = topic.partition_count();
        let overrides = topic.configs.read().clone();
        let mut added = Vec::new();
        for i in current..count {
            match self.open_partition(&topic.name, i, &overrides) {
                Ok(p) => added.push(p),
                Err(e) => {
                    for j in current..=i {
                        let _ = std::fs::remove_dir_all(partition_dir(&self.data_dir, name, j));
                    }
                    return Err(e);
                }
            }
        }
        topic.partitions.write().extend(added);
        if let Err(e) = self.save() {
            topic.partitions.write().truncate(current as usize);
            return Err(e);
        }
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides (already validated) and applies them to its logs.
    pub fn set_configs(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let _guard = self.change.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        config::validate_all(&overrides)?;
        let previous = std::mem::replace(&mut *topic.configs.write(), overrides.clone());
        if let Err(e) = self.save() {
            *topic.configs.write() = previous;
            return Err(e);
        }
        let log_config = config::log_config(&overrides, &self.broker());
        for p in topic.partitions.read().iter() {
            p.log.lock().set_config(log_config.clone());
        }
        tracing::info!(topic = name, ?overrides, "changed topic configs");
        Ok(())
    }

    /// Every partition of every topic.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.all()
            .iter()
            .flat_map(|t| t.partitions.read().clone())
            .collect()
    }

    /// Runs retention on every partition.
    pub fn apply_retention(&self, now_ms: i64) {
        for p in self.all_partitions() {
            let mut log = p.log.lock();
            match log.apply_retention(now_ms) {
                Ok(report) => {
                    if report.deleted_segments > 0 {
                        tracing::info!(topic = %p.topic, partition = p.index,
                            segments = report.deleted_segments, bytes = report.deleted_bytes,
                            log_start_offset = log.log_start_offset(), "retention deleted segments");
                        // The deleted batches may be all the log knew of some producer; the
                        // state as of the log end keeps them known across a restart.
                        let producers = p.producers.lock();
                        if !producers.is_empty() {
                            if let Err(e) =
                                producers.write_snapshot(log.dir(), log.log_end_offset())
                            {
                                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "could not write the producer snapshot");
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                }
            }
            p.update_gauges(&log);
        }
    }

    /// Runs the time-based flush policy on every partition.
    pub fn flush_due(&self, now_ms: i64) {
        if self.log_dir_failure().is_some() {
            return;
        }
        for p in self.all_partitions() {
            if let Err(e) = p.log.lock().flush_if_due(now_ms) {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
                self.note_write_error(&e);
            }
        }
    }

    /// Takes note of an error of a write to the log directory: a failed file operation (not a
    /// refused batch) takes the directory offline. Returns whether it is offline now.
    pub fn note_write_error(&self, e: &crate::log::LogError) -> bool {
        use crate::log::{CheckpointError, LogError};
        let failed = matches!(
            e,
            LogError::Io { .. } | LogError::Checkpoint(CheckpointError::Io { .. })
        );
        if failed {
            let reason = e.to_string();
            self.log_dir_failure.send_if_modified(|current| {
                if current.is_some() {
                    return false;
                }
                tracing::error!(data_dir = %self.data_dir.display(), error = %reason,
                    "a write to the log directory failed: the directory is offline until restart");
                *current = Some(reason.clone());
                true
            });
        }
        self.log_dir_failure.borrow().is_some()
    }

    /// Why the log directory is offline, if it is.
    pub fn log_dir_failure(&self) -> Option<String> {
        self.log_dir_failure.borrow().clone()
    }

    /// Follows the log directory's state (`Some(reason)` once offline).
    pub fn watch_log_dir(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.log_dir_failure.subscribe()
    }

    /// Forgets idempotent producers silent for longer than `producer.id.expiration.ms`.
    pub fn expire_producers(&self, now_ms: i64) {
        let expiration = self.static_broker().producer_id_expiration_ms;
        let mut total = 0;
        for p in self.all_partitions() {
            total += p.producers.lock().expire(now_ms, expiration);
        }
        if total > 0 {
            tracing::info!(
                producers = total,
                expiration_ms = expiration,
                "expired idle producer state"
            );
        }
    }

    /// Flushes and closes every log (clean shutdown).
    pub fn close(&self) {
        self.write_hw_checkpoint();
        for p in self.all_partitions() {
            if let Err(e) = p.log.lock().close() {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "close failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(dir: &Path) -> TopicRegistry {
        let cfg = Arc::new(BrokerConfig::for_tests(dir.to_path_buf()));
        TopicRegistry::open(cfg, Arc::new(Metrics::new().unwrap())).unwrap()
    }

    #[test]
    fn names_follow_kafkas_rules() {
        for ok in ["a", "A.b_c-9", &"x".repeat(249)] {
            validate_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a b", "a/b", "é", &"x".repeat(250)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topics_survive_reopen_and_strays_go() {
        let dir = tempfile::tempdir().unwrap();
        let id;
        {
            let r = registry(dir.path());
            let t = r
                .create(
                    "orders",
                    3,
                    BTreeMap::from([("retention.ms".into(), "1000".into())]),
                )
                .unwrap();
            id = t.id;
            assert!(matches!(
                r.create("orders", 1, BTreeMap::new()),
                Err(TopicError::AlreadyExists(_))
            ));
            assert!(r.create("a.b", 1, BTreeMap::new()).is_ok());
            assert!(matches!(
                r.create("a_b", 1, BTreeMap::new()),
                Err(TopicError::InvalidName(_))
            ));
            assert!(matches!(
                r.create("bad", 0, BTreeMap::new()),
                Err(TopicError::InvalidPartitions(_))
            ));
            assert!(matches!(
                r.create(
                    "bad",
                    1,
                    BTreeMap::from([("retention.ms".into(), "x".into())])
                ),
                Err(TopicError::InvalidConfig(_))
            ));
            assert!(!dir.path().join("bad-0").exists());
            r.add_partitions("orders", 5).unwrap();
            assert!(r.add_partitions("orders", 4).is_err());
            r.delete("a.b").unwrap();
            r.close();
        }
        std::fs::create_dir(dir.path().join("ghost-0")).unwrap();
        std::fs::create_dir(dir.path().join("quorum")).unwrap();
        let r = registry(dir.path());
        let t = r.get("orders").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partition_count(), 5);
        assert_eq!(
            t.configs.read().get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert!(r.get("a.b").is_none());
        assert!(!dir.path().join("ghost-0").exists());
        assert!(
            dir.path().join("quorum").exists(),
            "not a partition directory"
        );
        assert!(!dir.path().join("a.b-0").exists());
        assert!(r.get_by_id(id).is_some());
    }
}
