//! The metadata image: the cluster's brokers, topics, partition assignments, leaders and ISRs as
//! of one applied log index. Plain data; the rules that change it live in `apply`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::security::store::SecurityState;

/// No leader: the partition is offline.
pub const NO_LEADER: i32 = -1;

/// Topic config that lets a replica outside the ISR become leader.
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// The replicated cluster metadata as of `version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Index of the last applied Raft log entry (0 before any).
    pub version: u64,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerRecord>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicRecord>,
    /// Cluster-wide dynamic broker defaults by Kafka name (e.g. `log.retention.ms`).
    #[serde(default)]
    pub broker_defaults: BTreeMap<String, String>,
    /// The first producer id not yet handed out to any broker.
    #[serde(default)]
    pub next_producer_id: i64,
    /// Per-broker dynamic configs by broker id, then Kafka name (Kafka's BROKER resource named
    /// by the id): they come before `broker_defaults` on that broker. A broker id without
    /// configs has no entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// SCRAM credentials and ACLs.
    #[serde(default, skip_serializing_if = "SecurityState::is_empty")]
    pub security: SecurityState,
}

/// A broker's Kafka listener as clients reach it (one of Kafka's advertised.listeners).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name, upper-case (`PLAINTEXT`, `SSL`, ...).
    pub name: String,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    /// Host clients connect to.
    pub host: String,
    /// Kafka port clients connect to.
    pub port: i32,
    /// Rack, for rack-aware assignment.
    pub rack: Option<String>,
    /// Identifies one process lifetime of the broker.
    pub incarnation_id: String,
    /// host:port of the replication listener (empty when unknown).
    #[serde(default)]
    pub replication: String,
    /// The metadata version at which this incarnation registered (Kafka's broker epoch): it
    /// grows with every registration, so a request stamped with an older epoch comes from a
    /// process (or a session) that is gone.
    #[serde(default)]
    pub epoch: u64,
    /// A fenced broker leads nothing and is in no ISR (unless it was the last member).
    pub fenced: bool,
    /// Every Kafka listener of the broker; empty for a broker registered before listeners
    /// were recorded (its one endpoint is `host`/`port`).
    #[serde(default)]
    pub listeners: Vec<Endpoint>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Topic id (Kafka's topic UUID).
    pub id: Uuid,
    /// Topic configs that differ from the broker defaults.
    pub configs: BTreeMap<String, String>,
    /// Partitions, indexed by partition number.
    pub partitions: Vec<PartitionRecord>,
}

/// Replicas, ISR and leadership of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this record.
    pub partition_epoch: i32,
    /// A reassignment in progress (Kafka's KIP-455): `replicas` is then the target followed
    /// by the original replicas that are not in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassignment: Option<Reassignment>,
}

/// A partition moving from its original replicas to a target set. Replicas being added fetch
/// from the leader and join the ISR once caught up; when they all have (and enough of the
/// target is in sync), the target becomes the replica set and the others leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    /// The replica set wanted, preferred leader first.
    pub target: Vec<i32>,
    /// The replica set before the move.
    pub original: Vec<i32>,
    /// In-sync target replicas the move needs before it completes (the topic's
    /// `min.insync.replicas` when it began, capped at the target's size): finishing never
    /// leaves the partition with fewer in-sync replicas than that.
    pub min_isr: i32,
}

impl Reassignment {
    /// Target replicas that were not replicas before.
    pub fn adding(&self) -> Vec<i32> {
        self.target
            .iter()
            .copied()
            .filter(|b| !self.original.contains(b))
            .collect()
    }

    /// Original replicas that are not in the target.
    pub fn removing(&self) -> Vec<i32> {
        self.original
            .iter()
            .copied()
            .filter(|b| !self.target.contains(b))
            .collect()
    }

    /// The replica set while the move runs: the target, then the original replicas leaving.
    pub fn replicas(&self) -> Vec<i32> {
        let mut all = self.target.clone();
        all.extend(self.removing());
        all
    }
}

impl PartitionRecord {
    /// The replicas the partition will have once any reassignment completes.
    pub fn target_replicas(&self) -> &[i32] {
        match &self.reassignment {
            Some(r) => &r.target,
            None => &self.replicas,
        }
    }
}

impl MetadataImage {
    /// Whether `id` is registered and not fenced.
    pub fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// The registered brokers that are not fenced.
    pub fn live_brokers(&self) -> std::collections::BTreeSet<i32> {
        self.brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Number of registered brokers that are fenced.
    pub fn fenced_brokers(&self) -> usize {
        self.brokers.values().filter(|b| b.fenced).count()
    }

    /// A partition, if its topic and index exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionRecord> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    /// A partition to change, if its topic and index exist.
    pub fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionRecord> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get_mut(topic)?.partitions.get_mut(index)
    }
}

impl TopicRecord {
    /// Whether `unclean.leader.election.enable` is set to true on this topic.
    pub fn unclean_election(&self) -> bool {
        self.configs
            .get(UNCLEAN_LEADER_ELECTION)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}
