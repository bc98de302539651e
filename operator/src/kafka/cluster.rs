//! Cluster-wide requests of the admin client: ElectLeaders, DescribeQuorum (the controller
//! quorum) and ListPartitionReassignments. Asks and reports; deciding is the caller's.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    DescribeQuorumRequest, ElectLeadersRequest, ListPartitionReassignmentsRequest,
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
