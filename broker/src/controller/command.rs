//! Metadata commands (the payload of Raft log entries) and the typed refusal an apply returns.
//! Commands are data only; they never touch the image themselves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::security::acl::AclBinding;
use crate::security::store::ScramChange;

/// A change to the cluster metadata, proposed to the controller quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// A broker (re)registers. A new broker starts fenced; a new incarnation of a registered
    /// broker fences the old one. The first heartbeat unfences it.
    RegisterBroker {
        /// Broker id.
        id: i32,
        /// Host clients connect to.
        host: String,
        /// Kafka port.
        port: i32,
        /// Rack.
        rack: Option<String>,
        /// Process lifetime id.
        incarnation_id: String,
        /// host:port of the replication listener.
        #[serde(default)]
        replication: String,
        /// Every Kafka listener's advertised endpoint.
        #[serde(default)]
        listeners: Vec<super::image::Endpoint>,
    },
    /// The broker missed its session, lost its connection to the controller or shuts down:
    /// it leaves ISRs and gives up leaderships.
    FenceBroker {
        /// Broker id.
        id: i32,
        /// Only this incarnation of the broker (a no-op when another one is registered now):
        /// a fence meant for an old process never hits its successor. `None`: whichever.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incarnation: Option<String>,
    },
    /// The broker heartbeats again: it leads the offline partitions it can.
    UnfenceBroker {
        /// Broker id.
        id: i32,
    },
    /// Create a topic with an explicit assignment (one replica list per partition).
    CreateTopic {
        /// Topic name.
        name: String,
        /// Topic id.
        id: Uuid,
        /// Replicas of each partition, preferred leader first.
        assignment: Vec<Vec<i32>>,
        /// Topic configs.
        configs: BTreeMap<String, String>,
    },
    /// Delete a topic.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Append partitions to a topic.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// Replicas of each new partition.
        assignment: Vec<Vec<i32>>,
    },
    /// Set and remove topic configs.
    AlterConfigs {
        /// Topic name.
        topic: String,
        /// Configs to set.
        set: BTreeMap<String, String>,
        /// Config keys to remove (back to the default).
        remove: Vec<String>,
    },
    /// Set and remove cluster-wide dynamic broker defaults (Kafka's BROKER resource ""): the
    /// defaults of every topic without an override of its own.
    AlterBrokerDefaults {
        /// Broker configs to set, by Kafka name.
        set: BTreeMap<String, String>,
        /// Broker config names to remove (back to the broker's flag).
        remove: Vec<String>,
    },
    /// A partition leader changes its ISR (Kafka's AlterPartition), compare-and-set on epochs.
    AlterPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The broker asking: must be the current leader.
        broker_id: i32,
        /// The leader epoch the leader has.
        leader_epoch: i32,
        /// The partition epoch the leader has.
        partition_epoch: i32,
        /// The ISR wanted.
        new_isr: Vec<i32>,
    },
    /// A broker takes the block of [`PRODUCER_ID_BLOCK`] producer ids starting at `first`,
    /// which must be the image's `next_producer_id` (compare-and-set: a broker that raced
    /// another is refused with the current value and asks again). Kafka's AllocateProducerIds.
    AllocateProducerIds {
        /// The broker asking.
        broker_id: i32,
        /// The first id of the block, as the broker last saw `next_producer_id`.
        first: i64,
    },
    /// Starts, replaces or cancels (`target: None`) the reassignment of one partition
    /// (Kafka's AlterPartitionReassignments).
    AlterReassignment {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The replicas wanted; `None` cancels the reassignment in progress.
        target: Option<Vec<i32>>,
        /// The topic's `min.insync.replicas` as the broker taking the request knows it.
        min_isr: i32,
    },
    /// Leadership goes back to the partition's preferred replica (the first of its
    /// assignment), which must be live and in the ISR: Kafka's preferred leader election.
    ElectPreferredLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// Kafka's UNCLEAN leader election (ElectLeaders) of a partition without a leader: a live
    /// ISR member leads when there is one, else the first live replica in assignment order,
    /// which becomes the whole ISR (records it lacks are lost), whatever the topic's
    /// `unclean.leader.election.enable`.
    ElectUncleanLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// Kafka's UnregisterBroker: the broker's record leaves the metadata (a decommissioned
    /// broker no longer counts as fenced). It is fenced first (it leaves ISRs, except as
    /// the last member, and gives up leaderships); its replica assignments stay, as in Kafka.
    /// A broker process still running registers again on its next heartbeat.
    UnregisterBroker {
        /// Broker id.
        id: i32,
    },
    /// Set and remove one broker's dynamic configs (Kafka's BROKER resource named by its id),
    /// which come before the cluster-wide defaults on that broker. The broker need not be
    /// registered yet (as in Kafka, a config may wait for its broker).
    AlterBrokerConfigs {
        /// The broker the configs are for (>= 0).
        broker_id: i32,
        /// Broker configs to set, by Kafka name.
        set: BTreeMap<String, String>,
        /// Broker config names to remove (back to the cluster-wide default or the flag).
        remove: Vec<String>,
    },
    /// Kafka's AlterUserScramCredentials, already checked by the broker that took it: remove
    /// and set users' SCRAM credentials.
    AlterScramCredentials(ScramChange),
    /// Kafka's CreateAcls, already validated: add ACL bindings (present ones are no-ops).
    CreateAcls {
        /// The bindings.
        bindings: Vec<AclBinding>,
    },
    /// Kafka's DeleteAcls, resolved from its filters by the broker that took it: remove these
    /// exact bindings (absent ones are no-ops).
    DeleteAcls {
        /// The bindings.
        bindings: Vec<AclBinding>,
    },
}

/// What applying a command produced: `Ok` or the reason it was refused. A refused command leaves
/// the image unchanged.
pub type ApplyResult = Result<(), Refusal>;

/// Why a command was refused. Each maps to one Kafka error code in the front end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// UNKNOWN_BROKER / BROKER_ID_NOT_REGISTERED.
    #[error("broker {0} is not registered")]
    UnknownBroker(i32),
    /// TOPIC_ALREADY_EXISTS.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// TOPIC_ALREADY_EXISTS (same id).
    #[error("topic id {0} is already in use")]
    TopicIdInUse(Uuid),
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("partition {partition} of topic {topic:?} does not exist")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// INVALID_REPLICA_ASSIGNMENT / INVALID_PARTITIONS.
    #[error("invalid replica assignment: {0}")]
    InvalidAssignment(String),
    /// INVALID_CONFIG.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// NOT_LEADER_OR_FOLLOWER.
    #[error("broker {broker} is not the leader (leader is {leader})")]
    NotLeader {
        /// The broker that asked.
        broker: i32,
        /// The current leader.
        leader: i32,
    },
    /// FENCED_LEADER_EPOCH.
    #[error("leader epoch {given} is stale (current {current})")]
    FencedLeaderEpoch {
        /// Epoch in the request.
        given: i32,
        /// Epoch in the image.
        current: i32,
    },
    /// INVALID_UPDATE_VERSION.
    #[error("partition epoch {given} is stale (current {current})")]
    InvalidUpdateVersion {
        /// Epoch in the request.
        given: i32,
        /// Epoch in the image.
        current: i32,
    },
    /// INELIGIBLE_REPLICA.
    #[error("broker {broker} cannot be in the ISR: {reason}")]
    IneligibleReplica {
        /// The broker.
        broker: i32,
        /// Why not.
        reason: String,
    },
    /// INVALID_REQUEST.
    #[error("invalid ISR: {0}")]
    InvalidIsr(String),
    /// NO_REASSIGNMENT_IN_PROGRESS.
    #[error("partition {partition} of topic {topic:?} has no reassignment in progress")]
    NoReassignmentInProgress {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// Another broker took the block first (the proposer retries at `next`).
    #[error("producer id block at {given} is taken: the next free block starts at {next}")]
    ProducerIdBlockTaken {
        /// The block start asked for.
        given: i64,
        /// The image's next free producer id.
        next: i64,
    },
    /// ELECTION_NOT_NEEDED: the partition already has the leader the election would give it.
    #[error("partition {partition} of topic {topic:?} needs no election")]
    ElectionNotNeeded {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is not a live ISR member.
    #[error("the preferred leader of partition {partition} of topic {topic:?} is not a live member of the ISR")]
    PreferredLeaderNotAvailable {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE: no replica of the partition is live.
    #[error("no replica of partition {partition} of topic {topic:?} is live")]
    EligibleLeadersNotAvailable {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
}

/// Producer ids in one block handed to a broker (as Kafka's controller does).
pub const PRODUCER_ID_BLOCK: i64 = 1000;
