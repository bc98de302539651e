//! Consumer groups and offsets: ListGroups on every broker, DescribeGroups and OffsetFetch at
//! a group's coordinator (FindCoordinator first), ListOffsets at each partition's leader. Only
//! asks; it never commits, joins or resets anything.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    ListOffsetsRequest, OffsetFetchRequest,
};

use super::{s, topic_name, AdminClient, AdminError, KafkaError};

/// Committed or end offsets by (topic, partition).
pub type PartitionOffsets = BTreeMap<(String, i32), i64>;

/// FindCoordinator key type of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// NOT_COORDINATOR: the group moved; find its coordinator again.
const NOT_COORDINATOR: i16 = 16;
/// COORDINATOR_LOAD_IN_PROGRESS: the coordinator is still loading the group.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// ListOffsets timestamp asking for the log end offset.
const LATEST: i64 = -1;
/// ListOffsets timestamp asking for the log start offset.
const EARLIEST: i64 = -2;
/// LEADER_NOT_AVAILABLE: the partition has no leader now.
const LEADER_NOT_AVAILABLE: i16 = 5;
/// ListOffsets isolation level READ_UNCOMMITTED.
const READ_UNCOMMITTED: i8 = 0;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`; empty for a group that only commits offsets).
    pub protocol_type: String,
    /// Group state (`Stable`, `Empty`...), when the broker reports it (ListGroups v4+).
    pub state: Option<String>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Group state (`Stable`, `Empty`, `Dead` for an unknown group...).
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Number of members.
    pub members: usize,
}

/// Whether a coordinator error calls for finding the coordinator again.
fn coordinator_moved(e: &AdminError) -> bool {
    e.kafka()
        .is_some_and(|k| k.code == NOT_COORDINATOR || k.code == COORDINATOR_LOAD_IN_PROGRESS)
}

impl AdminClient {
    /// Every group of every live broker (ListGroups to each, merged by group id).
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, AdminError> {
        let brokers = self.metadata(Some(&[])).await?.brokers;
        let mut groups: BTreeMap<String, GroupListing> = BTreeMap::new();
        for b in brokers {
            let request = ListGroupsRequest::default();
            let (response, version) = self.call_node(b.id, "ListGroups", 0, 4, &request).await?;
            if let Some(e) = KafkaError::from_code(
                "ListGroups",
                Some(&format!("broker {}", b.id)),
                response.error_code,
                None,
            ) {
                return Err(e.into());
            }
            for g in response.groups {
                let id = g.group_id.0.to_string();
                groups.insert(
                    id.clone(),
                    GroupListing {
                        group_id: id,
                        protocol_type: g.protocol_type.to_string(),
                        state: (version >= 4).then(|| g.group_state.to_string()),
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// The coordinator of `group` (FindCoordinator at the bootstrap); its address is learned.
    async fn find_coordinator(&self, group: &str) -> Result<i32, AdminError> {
        // v4 batches keys (`coordinator_keys`); older versions take one `key`.
        let (response, version) = self
            .with_conn(async |c| {
                let version = c.version::<FindCoordinatorRequest>("FindCoordinator", 0, 4)?;
                let request = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
                let request = if version >= 4 {
                    request.with_coordinator_keys(vec![s(group)])
                } else {
                    request.with_key(s(group))
                };
                c.call("FindCoordinator", version, version, &request).await
            })
            .await?;
        let (code, message, node, host, port) = if version >= 4 {
            let Some(c) = response.coordinators.into_iter().next() else {
                return Err(AdminError::Protocol {
                    api: "FindCoordinator",
                    message: "no coordinator in the answer".into(),
                });
            };
            (c.error_code, c.error_message, c.node_id, c.host, c.port)
        } else {
            (
                response.error_code,
                response.error_message,
                response.node_id,
                response.host,
                response.port,
            )
        };
        if let Some(e) =
            KafkaError::from_code("FindCoordinator", Some(group), code, message.as_deref())
        {
            return Err(e.into());
        }
        self.learn_node(node.0, &host, port).await;
        Ok(node.0)
    }

    /// DescribeGroups for `groups`, each at its coordinator; an unknown group comes back in
    /// state `Dead`, as Kafka answers it.
    pub async fn describe_groups(
        &self,
        groups: &[String],
    ) -> Result<Vec<GroupDescription>, AdminError> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let mut retried = false;
            loop {
                let node = self.find_coordinator(group).await?;
                match self.describe_group_at(node, group).await {
                    Err(e) if !retried && coordinator_moved(&e) => {
                        tracing::debug!(group, error = %e, "group coordinator moved; asking again");
                        retried = true;
                    }
                    other => {
                        out.push(other?);
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    async fn describe_group_at(
        &self,
        node: i32,
        group: &str,
    ) -> Result<GroupDescription, AdminError> {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
        let (response, _) = self
            .call_node(node, "DescribeGroups", 0, 5, &request)
            .await?;
        let Some(g) = response.groups.into_iter().next() else {
            return Err(AdminError::Protocol {
                api: "DescribeGroups",
                message: format!("no answer for group {group}"),
            });
        };
        if let Some(e) = KafkaError::from_code(
            "DescribeGroups",
            Some(group),
            g.error_code,
            g.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        Ok(GroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            members: g.members.len(),
        })
    }

    /// The offsets `group` committed, by partition (OffsetFetch for all partitions at the
    /// coordinator, found again once on NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS);
    /// partitions without a committed offset are left out.
    pub async fn committed_offsets(&self, group: &str) -> Result<PartitionOffsets, AdminError> {
        let mut retried = false;
        loop {
            let node = self.find_coordinator(group).await?;
            match self.committed_offsets_at(node, group).await {
                Err(e) if !retried && coordinator_moved(&e) => {
                    tracing::debug!(group, error = %e, "group coordinator moved; asking again");
                    retried = true;
                }
                other => return other,
            }
        }
    }

    async fn committed_offsets_at(
        &self,
        node: i32,
        group: &str,
    ) -> Result<PartitionOffsets, AdminError> {
        // v2–7: one group per request, a null topic list meaning every partition.
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(None);
        let (response, _) = self.call_node(node, "OffsetFetch", 2, 7, &request).await?;
        if let Some(e) =
            KafkaError::from_code("OffsetFetch", Some(group), response.error_code, None)
        {
            return Err(e.into());
        }
        let mut offsets = PartitionOffsets::new();
        for t in response.topics {
            let topic = t.name.0.to_string();
            for p in t.partitions {
                if let Some(e) = KafkaError::from_code(
                    "OffsetFetch",
                    Some(&format!("{group} {topic}-{}", p.partition_index)),
                    p.error_code,
                    None,
                ) {
                    return Err(e.into());
                }
                if p.committed_offset >= 0 {
                    offsets.insert((topic.clone(), p.partition_index), p.committed_offset);
                }
            }
        }
        Ok(offsets)
    }

    /// The log end offsets of `partitions` (ListOffsets latest, read_uncommitted), asked of
    /// each partition's leader, one request per leader.
    pub async fn end_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<PartitionOffsets, AdminError> {
        self.offsets_at(partitions, LATEST).await
    }

    /// The log start offsets of `partitions` (ListOffsets earliest), as [`Self::end_offsets`].
    pub async fn start_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<PartitionOffsets, AdminError> {
        self.offsets_at(partitions, EARLIEST).await
    }

    async fn offsets_at(
        &self,
        partitions: &[(String, i32)],
        timestamp: i64,
    ) -> Result<PartitionOffsets, AdminError> {
        let topics: Vec<String> = partitions
            .iter()
            .map(|(t, _)| t.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if topics.is_empty() {
            return Ok(PartitionOffsets::new());
        }
        let md = self.metadata(Some(&topics)).await?;
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let resource = format!("{topic}-{partition}");
            let leader = md
                .topics
                .get(topic)
                .and_then(|t| t.partitions.iter().find(|p| p.partition == *partition))
                .map(|p| p.leader);
            let leader = match leader {
                None => {
                    return Err(refused(
                        "ListOffsets",
                        &resource,
                        super::UNKNOWN_TOPIC_OR_PARTITION,
                    )
                    .into())
                }
                Some(l) if l < 0 => {
                    return Err(refused("ListOffsets", &resource, LEADER_NOT_AVAILABLE).into());
                }
                Some(l) => l,
            };
            by_leader
                .entry(leader)
                .or_default()
                .entry(topic.clone())
                .or_default()
                .push(*partition);
        }
        let mut out = PartitionOffsets::new();
        for (leader, topics) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(READ_UNCOMMITTED)
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
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let (response, _) = self
                .call_node(leader, "ListOffsets", 1, 7, &request)
                .await?;
            for t in response.topics {
                let topic = t.name.0.to_string();
                for p in t.partitions {
                    if let Some(e) = KafkaError::from_code(
                        "ListOffsets",
                        Some(&format!("{topic}-{}", p.partition_index)),
                        p.error_code,
                        None,
                    ) {
                        return Err(e.into());
                    }
                    out.insert((topic.clone(), p.partition_index), p.offset);
                }
            }
        }
        Ok(out)
    }
}

/// A Kafka error this client concludes itself (from Metadata) rather than reads in a response.
fn refused(api: &'static str, resource: &str, code: i16) -> KafkaError {
    KafkaError {
        api,
        resource: Some(resource.to_string()),
        code,
        name: super::code_name(code),
        message: None,
    }
}
