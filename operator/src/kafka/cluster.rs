//! Cluster-wide requests of the admin client: ElectLeaders, DescribeQuorum (the controller
//! quorum), List/AlterPartitionReassignments and DescribeLogDirs (per broker). Asks and
//! reports; deciding is the caller's.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DescribeLogDirsRequest, DescribeQuorumRequest,
    ElectLeadersRequest, ListPartitionReassignmentsRequest,
};

use super::{ms, topic_name, AdminClient, AdminError, KafkaError};

/// ElectLeaders election type PREFERRED.
const PREFERRED: i8 = 0;
/// ElectLeaders election type UNCLEAN.
const UNCLEAN: i8 = 1;
/// ELECTION_NOT_NEEDED: the partition already has the leader the election would give it.
pub const ELECTION_NOT_NEEDED: i16 = 84;
/// The controller quorum's log, as DescribeQuorum names it.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Reassignments in progress: (topic, partition) → (adding replicas, removing replicas).
pub type Reassignments = BTreeMap<(String, i32), (Vec<i32>, Vec<i32>)>;

/// One partition's outcome of AlterPartitionReassignments (`error_code` 0: accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentResult {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Kafka error code (0, NO_REASSIGNMENT_IN_PROGRESS, INVALID_REPLICA_ASSIGNMENT, ...).
    pub error_code: i16,
    /// The broker's message, when it sent one.
    pub message: Option<String>,
}

/// One log directory of a broker, as DescribeLogDirs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirInfo {
    /// The directory.
    pub path: String,
    /// Kafka error code of the directory (0: online; KAFKA_STORAGE_ERROR: offline).
    pub error_code: i16,
    /// Bytes of each partition in it, by (topic, partition).
    pub partition_bytes: BTreeMap<(String, i32), i64>,
    /// The volume's size and free bytes (-1 when unknown).
    pub total_bytes: i64,
    /// Free bytes of the volume (-1 when unknown).
    pub usable_bytes: i64,
}

/// One partition's outcome of ElectLeaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Kafka error code: 0 elected, [`ELECTION_NOT_NEEDED`] already led by that replica,
    /// anything else failed.
    pub error_code: i16,
    /// The broker's message, when it sent one.
    pub message: Option<String>,
}

impl ElectionResult {
    /// True when the partition has the wanted leader (elected now or already).
    pub fn is_ok(&self) -> bool {
        self.error_code == 0 || self.error_code == ELECTION_NOT_NEEDED
    }
}

/// One replica of the controller quorum's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// Node id.
    pub replica_id: i32,
    /// One past the replica's last log entry as the leader knows it (-1: unknown).
    pub log_end_offset: i64,
    /// When the replica last fetched from the leader (ms since the epoch), when known.
    pub last_fetch_ms: Option<i64>,
    /// When the replica last had the leader's whole log (ms since the epoch), when known.
    pub last_caught_up_ms: Option<i64>,
}

/// The controller quorum, as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// Leader id.
    pub leader_id: i32,
    /// Leader epoch (the Raft term).
    pub leader_epoch: i32,
    /// High watermark of the metadata log.
    pub high_watermark: i64,
    /// Voters.
    pub voters: Vec<ReplicaState>,
    /// Observers (brokers that are not voters).
    pub observers: Vec<ReplicaState>,
}

fn known(ts: i64) -> Option<i64> {
    (ts >= 0).then_some(ts)
}

fn replica(r: &kafka_protocol::messages::describe_quorum_response::ReplicaState) -> ReplicaState {
    ReplicaState {
        replica_id: r.replica_id.0,
        log_end_offset: r.log_end_offset,
        last_fetch_ms: known(r.last_fetch_timestamp),
        last_caught_up_ms: known(r.last_caught_up_timestamp),
    }
}

impl AdminClient {
    /// ElectLeaders (v1–2): preferred or unclean, for `partitions` or (`None`) every
    /// partition. A partition answered [`ELECTION_NOT_NEEDED`] is a result like any other;
    /// only a request-level error is an `Err`.
    pub async fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<ElectionResult>, AdminError> {
        let topic_partitions = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in ps {
                by_topic.entry(t.as_str()).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect()
        });
        let request = ElectLeadersRequest::default()
            .with_election_type(if preferred { PREFERRED } else { UNCLEAN })
            .with_topic_partitions(topic_partitions)
            .with_timeout_ms(ms(self.timeout));
        let (response, _) = self
            .with_conn(async |c| c.call("ElectLeaders", 1, 2, &request).await)
            .await?;
        if let Some(e) = KafkaError::from_code("ElectLeaders", None, response.error_code, None) {
            return Err(e.into());
        }
        Ok(response
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic.0.to_string();
                t.partition_result.into_iter().map(move |p| ElectionResult {
                    topic: topic.clone(),
                    partition: p.partition_id,
                    error_code: p.error_code,
                    message: p.error_message.map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// DescribeQuorum (v0–2) of the controller quorum's log, asked of the bootstrap broker
    /// (which forwards it to the quorum's leader).
    pub async fn describe_quorum(&self) -> Result<QuorumInfo, AdminError> {
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic_name(METADATA_TOPIC))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let (response, _) = self
            .with_conn(async |c| c.call("DescribeQuorum", 0, 2, &request).await)
            .await?;
        if let Some(e) = KafkaError::from_code(
            "DescribeQuorum",
            None,
            response.error_code,
            response.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        let Some(p) = response
            .topics
            .iter()
            .filter(|t| t.topic_name.as_str() == METADATA_TOPIC)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == 0)
        else {
            return Err(AdminError::Protocol {
                api: "DescribeQuorum",
                message: format!("no answer for {METADATA_TOPIC}-0"),
            });
        };
        if let Some(e) = KafkaError::from_code(
            "DescribeQuorum",
            Some(METADATA_TOPIC),
            p.error_code,
            p.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        Ok(QuorumInfo {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: p.current_voters.iter().map(replica).collect(),
            observers: p.observers.iter().map(replica).collect(),
        })
    }

    /// AlterPartitionReassignments v0: each `(topic, partition) → Some(target replicas)`
    /// starts (or replaces) a move, `None` cancels the one in progress. Per-partition results.
    pub async fn alter_partition_reassignments(
        &self,
        moves: &BTreeMap<(String, i32), Option<Vec<i32>>>,
    ) -> Result<Vec<ReassignmentResult>, AdminError> {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for ((topic, partition), target) in moves {
            by_topic.entry(topic.as_str()).or_default().push(
                ReassignablePartition::default()
                    .with_partition_index(*partition)
                    .with_replicas(
                        target
                            .as_ref()
                            .map(|r| r.iter().map(|b| BrokerId(*b)).collect()),
                    ),
            );
        }
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(ms(self.timeout))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        ReassignableTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let (response, _) = self
            .with_conn(async |c| c.call("AlterPartitionReassignments", 0, 0, &request).await)
            .await?;
        if let Some(e) = KafkaError::from_code(
            "AlterPartitionReassignments",
            None,
            response.error_code,
            response.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        Ok(response
            .responses
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| ReassignmentResult {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    error_code: p.error_code,
                    message: p.error_message.map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// DescribeLogDirs of broker `node` for every partition it holds: its log directories
    /// with the bytes of each partition (what a plan weighs partitions by).
    pub async fn describe_log_dirs(&self, node: i32) -> Result<Vec<LogDirInfo>, AdminError> {
        let request = DescribeLogDirsRequest::default().with_topics(None);
        let (response, _) = self
            .call_node(node, "DescribeLogDirs", 1, 4, &request)
            .await?;
        if let Some(e) = KafkaError::from_code("DescribeLogDirs", None, response.error_code, None) {
            return Err(e.into());
        }
        Ok(response
            .results
            .into_iter()
            .map(|d| LogDirInfo {
                path: d.log_dir.to_string(),
                error_code: d.error_code,
                partition_bytes: d
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| ((t.name.0.to_string(), p.partition_index), p.partition_size))
                    })
                    .collect(),
                total_bytes: d.total_bytes,
                usable_bytes: d.usable_bytes,
            })
            .collect())
    }

    /// Every partition reassignment in progress (ListPartitionReassignments v0, all topics).
    pub async fn list_partition_reassignments(&self) -> Result<Reassignments, AdminError> {
        let request = ListPartitionReassignmentsRequest::default()
            .with_topics(None)
            .with_timeout_ms(ms(self.timeout));
        let (response, _) = self
            .with_conn(async |c| c.call("ListPartitionReassignments", 0, 0, &request).await)
            .await?;
        if let Some(e) = KafkaError::from_code(
            "ListPartitionReassignments",
            None,
            response.error_code,
            response.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        let mut out = Reassignments::new();
        for t in response.topics {
            let topic = t.name.0.to_string();
            for p in t.partitions {
                out.insert(
                    (topic.clone(), p.partition_index),
                    (
                        p.adding_replicas.iter().map(|b| b.0).collect(),
                        p.removing_replicas.iter().map(|b| b.0).collect(),
                    ),
                );
            }
        }
        Ok(out)
    }
}
