//! The requests a roll's gates read: consumer groups and their committed offsets, log end
//! offsets, the metadata quorum, and the preferred leader election that follows a restart.
//! Requests that must reach one broker (a group's coordinator, a partition's leader) open a
//! connection to it from the addresses Metadata gives.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, ElectLeadersRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest,
};

use super::conn::Conn;
use super::{ms, s, topic_name, AdminClient, AdminError, KafkaError};

/// The metadata quorum's topic.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Kafka error code ELECTION_NOT_NEEDED: the preferred leader leads already.
pub const ELECTION_NOT_NEEDED: i16 = 84;

/// A consumer group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// `consumer` for Kafka consumers, empty for groups that only commit offsets.
    pub protocol_type: String,
    /// Group state (`Stable`, `Empty`, ...), when the broker reports it.
    pub state: String,
}

/// One partition's answer to ElectLeaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Kafka error code (0, or ELECTION_NOT_NEEDED, ...).
    pub error_code: i16,
    /// The broker's message, when any.
    pub message: Option<String>,
}

/// One replica of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    /// Node id.
    pub replica_id: i32,
    /// Its log end offset as the leader knows it.
    pub log_end_offset: i64,
    /// When it last fetched from the leader (leader's clock, ms), if known.
    pub last_fetch_ms: Option<i64>,
    /// When it was last caught up with the leader (leader's clock, ms), if known.
    pub last_caught_up_ms: Option<i64>,
}

/// The metadata quorum as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// Leader id (-1 when none).
    pub leader_id: i32,
    /// Leader epoch (the term).
    pub leader_epoch: i32,
    /// The quorum's high watermark.
    pub high_watermark: i64,
    /// Voters.
    pub voters: Vec<QuorumReplica>,
    /// Observers.
    pub observers: Vec<QuorumReplica>,
}

fn known(ts: i64) -> Option<i64> {
    (ts >= 0).then_some(ts)
}

impl AdminClient {
    /// Runs `f` on a fresh connection to `addr` (a coordinator, a leader).
    async fn at<T>(
        &self,
        addr: &str,
        f: impl AsyncFnOnce(&mut Conn) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let mut conn =
            Conn::connect(addr, self.timeout)
                .await
                .map_err(|reason| AdminError::Connect {
                    addresses: addr.to_string(),
                    reason,
                })?;
        f(&mut conn).await
    }

    /// The `host:port` of every live broker, by id.
    async fn broker_addresses(&self) -> Result<BTreeMap<i32, String>, AdminError> {
        let meta = self.metadata(Some(&[])).await?;
        Ok(meta
            .brokers
            .iter()
            .map(|b| (b.id, format!("{}:{}", b.host, b.port)))
            .collect())
    }

    /// Every consumer group of the cluster: ListGroups asked of every live broker (each knows
    /// the groups it coordinates), merged.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, AdminError> {
        let mut out: BTreeMap<String, GroupListing> = BTreeMap::new();
        for addr in self.broker_addresses().await?.values() {
            let request = ListGroupsRequest::default();
            let (response, _) = self
                .at(addr, async |c| c.call("ListGroups", 0, 4, &request).await)
                .await?;
            if let Some(e) = KafkaError::from_code("ListGroups", None, response.error_code, None) {
                return Err(e.into());
            }
            for g in response.groups {
                out.insert(
                    g.group_id.to_string(),
                    GroupListing {
                        group_id: g.group_id.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        state: g.group_state.to_string(),
                    },
                );
            }
        }
        Ok(out.into_values().collect())
    }

    /// The `host:port` of a group's coordinator.
    async fn coordinator(&self, group: &str) -> Result<String, AdminError> {
        let request = FindCoordinatorRequest::default()
            .with_key(s(group))
            .with_coordinator_keys(vec![s(group)]);
        let (response, version) = self
            .with_conn(async |c| c.call("FindCoordinator", 0, 4, &request).await)
            .await?;
        let (code, message, host, port) = if version >= 4 {
            let Some(c) = response.coordinators.into_iter().next() else {
                return Err(AdminError::Protocol {
                    api: "FindCoordinator",
                    message: "no coordinator in the answer".into(),
                });
            };
            (c.error_code, c.error_message, c.host, c.port)
        } else {
            (
                response.error_code,
                response.error_message,
                response.host,
                response.port,
            )
        };
        if let Some(e) =
            KafkaError::from_code("FindCoordinator", Some(group), code, message.as_deref())
        {
            return Err(e.into());
        }
        Ok(format!("{host}:{port}"))
    }

    /// The offsets `group` has committed, by (topic, partition); partitions without a commit
    /// are left out.
    pub async fn committed_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<(String, i32), i64>, AdminError> {
        let coordinator = self.coordinator(group).await?;
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(None)
            .with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(None)]);
        let (response, version) = self
            .at(&coordinator, async |c| {
                c.call("OffsetFetch", 1, 8, &request).await
            })
            .await?;
        let mut out = BTreeMap::new();
        if version >= 8 {
            for g in response.groups {
                if let Some(e) =
                    KafkaError::from_code("OffsetFetch", Some(group), g.error_code, None)
                {
                    return Err(e.into());
                }
                for t in g.topics {
                    for p in t.partitions.iter().filter(|p| p.committed_offset >= 0) {
                        out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
                    }
                }
            }
        } else {
            if let Some(e) =
                KafkaError::from_code("OffsetFetch", Some(group), response.error_code, None)
            {
                return Err(e.into());
            }
            for t in response.topics {
                for p in t.partitions.iter().filter(|p| p.committed_offset >= 0) {
                    out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
                }
            }
        }
        Ok(out)
    }

    /// The log end offsets (ListOffsets latest, read uncommitted) of `partitions`, each asked
    /// of its leader. Partitions without a leader are left out.
    pub async fn end_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>, AdminError> {
        let mut topics: Vec<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            return Ok(BTreeMap::new());
        }
        let meta = self.metadata(Some(&topics)).await?;
        let addresses: BTreeMap<i32, String> = meta
            .brokers
            .iter()
            .map(|b| (b.id, format!("{}:{}", b.host, b.port)))
            .collect();
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let leader = meta
                .topics
                .get(topic)
                .and_then(|t| t.partitions.iter().find(|p| p.partition == *partition))
                .map(|p| p.leader)
                .unwrap_or(-1);
            if leader >= 0 {
                by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(*partition);
            }
        }
        let mut out = BTreeMap::new();
        for (leader, topics) in by_leader {
            let Some(addr) = addresses.get(&leader) else {
                continue;
            };
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(0)
                .with_timeout_ms(ms(self.timeout))
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(
                                    ps.iter()
                                        .map(|p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(*p)
                                                .with_current_leader_epoch(-1)
                                                .with_timestamp(-1)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let (response, _) = self
                .at(addr, async |c| c.call("ListOffsets", 1, 7, &request).await)
                .await?;
            for t in response.topics {
                for p in t.partitions.iter().filter(|p| p.error_code == 0) {
                    out.insert((t.name.to_string(), p.partition_index), p.offset);
                }
            }
        }
        Ok(out)
    }

    /// ElectLeaders: PREFERRED (else UNCLEAN) for `partitions`, or for every partition when
    /// `None`. Per-partition results, ELECTION_NOT_NEEDED included.
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
            .with_election_type(if preferred { 0 } else { 1 })
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
            .flat_map(|r| {
                let topic = r.topic.to_string();
                r.partition_result.into_iter().map(move |p| ElectionResult {
                    topic: topic.clone(),
                    partition: p.partition_id,
                    error_code: p.error_code,
                    message: p.error_message.map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// DescribeQuorum of the metadata quorum.
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
            .into_iter()
            .next()
            .and_then(|t| t.partitions.into_iter().next())
        else {
            return Err(AdminError::Protocol {
                api: "DescribeQuorum",
                message: "no partition in the answer".into(),
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
        let replica =
            |r: &kafka_protocol::messages::describe_quorum_response::ReplicaState| QuorumReplica {
                replica_id: r.replica_id.0,
                log_end_offset: r.log_end_offset,
                last_fetch_ms: known(r.last_fetch_timestamp),
                last_caught_up_ms: known(r.last_caught_up_timestamp),
            };
        Ok(QuorumInfo {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: p.current_voters.iter().map(replica).collect(),
            observers: p.observers.iter().map(replica).collect(),
        })
    }
}
