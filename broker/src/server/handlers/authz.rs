//! The authorizer in front of the handlers: Kafka's checks per API (KafkaApis), applied to the
//! decoded request before its handler runs and to the response after.
//!
//! A request the principal may not make at all is answered here with the API's authorization
//! error. For per-resource APIs the denied topics, groups or config resources are taken out
//! of the request, so the handler never acts on them, and put back into the response with
//! TOPIC_AUTHORIZATION_FAILED (29), GROUP_AUTHORIZATION_FAILED (30),
//! CLUSTER_AUTHORIZATION_FAILED (31) or TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53). Listings
//! (Metadata for all topics, ListGroups) leave out what the principal may not describe.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::Session;

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;

/// Kafka's resource types in DescribeConfigs/IncrementalAlterConfigs.
const CONFIG_TOPIC: i8 = 2;

/// What was taken out of a request, to be answered as denied in its response.
#[derive(Default)]
pub(super) struct Denied {
    /// Topics (with the partitions asked for) and the code to answer each partition with.
    topics: Vec<(StrBytes, Vec<i32>, i16)>,
    /// Groups, coordinator keys or topic names answered as a whole.
    names: Vec<(StrBytes, i16)>,
    /// Config resources (type, name).
    configs: Vec<(i8, StrBytes)>,
}

impl Denied {
    fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.names.is_empty() && self.configs.is_empty()
    }
}

/// Moves the items `keep` refuses out of `items`, returning them.
fn take_denied<T>(items: &mut Vec<T>, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
    let (kept, denied): (Vec<T>, Vec<T>) = std::mem::take(items).into_iter().partition(|t| keep(t));
    *items = kept;
    denied
}

fn message(code: i16) -> Option<StrBytes> {
    let text = match code {
        TOPIC_DENIED => "Topic authorization failed",
        GROUP_DENIED => "Group authorization failed",
        CLUSTER_DENIED => "Cluster authorization failed",
        _ => "Transactional Id authorization failed",
    };
    Some(StrBytes::from_static_str(text))
}

/// The whole answer of a cluster API the principal may not use: `$response` with
/// CLUSTER_AUTHORIZATION_FAILED and its message, as the `$api` variant.
macro_rules! cluster_denied {
    ($api:ident, $response:ident) => {
        Err(Box::new((
            ApiKey::$api,
            ResponseKind::$api(
                $response::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(message(CLUSTER_DENIED)),
            ),
            CLUSTER_DENIED,
        )))
    };
}

impl Broker {
    fn topic_ok(&self, session: &Session, op: AclOperation, name: &str) -> bool {
        self.authorized(session, op, ResourceType::Topic, name)
    }

    fn group_ok(&self, session: &Session, op: AclOperation, name: &str) -> bool {
        self.authorized(session, op, ResourceType::Group, name)
    }

    /// Checks `request` before its handler: `Err` is the whole answer (every part denied
    /// with one code), `Ok` the parts taken out of the request.
    pub(super) fn authorize_request(
        &self,
        request: &mut RequestKind,
        version: i16,
        session: &Session,
    ) -> Result<Denied, Box<(ApiKey, ResponseKind, i16)>> {
        if self.security.authorizer.is_none() {
            return Ok(Denied::default());
        }
        use AclOperation as Op;
        let mut d = Denied::default();
        let cluster = |op: Op| self.cluster_authorized(session, op);
        let whole = |api: ApiKey, kind: ResponseKind, code: i16| Err(Box::new((api, kind, code)));
        match request {
            RequestKind::Produce(r) => {
                if let Some(txn) = &r.transactional_id {
                    if !self.authorized(session, Op::Write, ResourceType::TransactionalId, txn) {
                        let topics = std::mem::take(&mut r.topic_data);
                        d.topics = topics
                            .into_iter()
                            .map(|t| {
                                (
                                    t.name.0,
                                    t.partition_data.iter().map(|p| p.index).collect(),
                                    TXN_DENIED,
                                )
                            })
                            .collect();
                        return Ok(d);
                    }
                }
                for t in take_denied(&mut r.topic_data, |t| {
                    self.topic_ok(session, Op::Write, &t.name)
                }) {
                    d.topics.push((
                        t.name.0,
                        t.partition_data.iter().map(|p| p.index).collect(),
                        TOPIC_DENIED,
                    ));
                }
            }
            RequestKind::Fetch(r) => {
                if r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0 {
                    // A follower's fetch: CLUSTER_ACTION (brokers replicate over their own port).
                    if !cluster(Op::ClusterAction) {
                        for t in std::mem::take(&mut r.topics) {
                            d.topics.push((
                                t.topic.0,
                                t.partitions.iter().map(|p| p.partition).collect(),
                                CLUSTER_DENIED,
                            ));
                        }
                    }
                } else {
                    for t in take_denied(&mut r.topics, |t| {
                        self.topic_ok(session, Op::Read, &t.topic)
                    }) {
                        d.topics.push((
                            t.topic.0,
                            t.partitions.iter().map(|p| p.partition).collect(),
                            TOPIC_DENIED,
                        ));
                    }
                }
            }
            RequestKind::ListOffsets(r) => {
                for t in take_denied(&mut r.topics, |t| {
                    self.topic_ok(session, Op::Describe, &t.name)
                }) {
                    d.topics.push((
                        t.name.0,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                        TOPIC_DENIED,
                    ));
                }
            }
            RequestKind::OffsetForLeaderEpoch(r) => {
                let follower = r.replica_id.0 >= 0;
                if follower && !cluster(Op::ClusterAction) {
                    for t in std::mem::take(&mut r.topics) {
                        d.topics.push((
                            t.topic.0,
                            t.partitions.iter().map(|p| p.partition).collect(),
                            CLUSTER_DENIED,
                        ));
                    }
                } else if !follower {
                    for t in take_denied(&mut r.topics, |t| {
                        self.topic_ok(session, Op::Describe, &t.topic)
                    }) {
                        d.topics.push((
                            t.topic.0,
                            t.partitions.iter().map(|p| p.partition).collect(),
                            TOPIC_DENIED,
                        ));
                    }
                }
            }
            RequestKind::Metadata(r) => {
                let auto_create = r.allow_auto_topic_creation;
                if let Some(topics) = &mut r.topics {
                    for t in take_denied(topics, |t| match &t.name {
                        // By id (v10+): answered by the handler; listings are filtered after.
                        None => true,
                        Some(n) => {
                            self.topic_ok(session, Op::Describe, n)
                                && (!auto_create
                                    || self.registry.get(n.as_str()).is_some()
                                    || self.authorized_quietly(
                                        session,
                                        Op::Create,
                                        ResourceType::Cluster,
                                        CLUSTER_NAME,
                                    )
                                    || self.topic_ok(session, Op::Create, n))
                        }
                    }) {
                        if let Some(n) = t.name {
                            d.names.push((n.0, TOPIC_DENIED));
                        }
                    }
                }
            }
            RequestKind::CreateTopics(r)
                if !self.authorized_quietly(
                    session,
                    Op::Create,
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                ) =>
            {
                for t in take_denied(&mut r.topics, |t| {
                    self.topic_ok(session, Op::Create, &t.name)
                }) {
                    d.names.push((t.name.0, TOPIC_DENIED));
                }
            }
            RequestKind::DeleteTopics(r) => {
                let name_of = |n: &Option<TopicName>, id: uuid::Uuid| -> Option<String> {
                    match n {
                        Some(n) => Some(n.to_string()),
                        None => self.registry.get_by_id(id).map(|t| t.name.to_string()),
                    }
                };
                if version >= 6 {
                    for t in take_denied(&mut r.topics, |t| {
                        name_of(&t.name, t.topic_id)
                            .is_none_or(|n| self.topic_ok(session, Op::Delete, &n))
                    }) {
                        let n = name_of(&t.name, t.topic_id).unwrap_or_default();
                        d.names.push((StrBytes::from_string(n), TOPIC_DENIED));
                    }
                } else {
                    for n in take_denied(&mut r.topic_names, |n| {
                        self.topic_ok(session, Op::Delete, n)
                    }) {
                        d.names.push((n.0, TOPIC_DENIED));
                    }
                }
            }
            RequestKind::CreatePartitions(r) => {
                for t in take_denied(&mut r.topics, |t| {
                    self.topic_ok(session, Op::Alter, &t.name)
                }) {
                    d.names.push((t.name.0, TOPIC_DENIED));
                }
            }
            RequestKind::DescribeConfigs(r) => {
                for c in take_denied(&mut r.resources, |c| {
                    if c.resource_type == CONFIG_TOPIC {
                        self.topic_ok(session, Op::DescribeConfigs, &c.resource_name)
                    } else {
                        cluster(Op::DescribeConfigs)
                    }
                }) {
                    d.configs.push((c.resource_type, c.resource_name));
                }
            }
            RequestKind::IncrementalAlterConfigs(r) => {
                for c in take_denied(&mut r.resources, |c| {
                    if c.resource_type == CONFIG_TOPIC {
                        self.topic_ok(session, Op::AlterConfigs, &c.resource_name)
                    } else {
                        cluster(Op::AlterConfigs)
                    }
                }) {
                    d.configs.push((c.resource_type, c.resource_name));
                }
            }
            RequestKind::FindCoordinator(r) => {
                let (rt, code) = if r.key_type == 1 {
                    (ResourceType::TransactionalId, TXN_DENIED)
                } else {
                    (ResourceType::Group, GROUP_DENIED)
                };
                if version >= 4 {
                    for k in take_denied(&mut r.coordinator_keys, |k| {
                        self.authorized(session, Op::Describe, rt, k)
                    }) {
                        d.names.push((k, code));
                    }
                } else if !self.authorized(session, Op::Describe, rt, &r.key) {
                    let resp = FindCoordinatorResponse::default()
                        .with_error_code(code)
                        .with_error_message(message(code))
                        .with_node_id((-1).into())
                        .with_port(-1);
                    return whole(
                        ApiKey::FindCoordinator,
                        ResponseKind::FindCoordinator(resp),
                        code,
                    );
                }
            }
            RequestKind::JoinGroup(r) if !self.group_ok(session, Op::Read, &r.group_id) => {
                let resp = JoinGroupResponse::default()
                    .with_error_code(GROUP_DENIED)
                    .with_generation_id(-1);
                return whole(
                    ApiKey::JoinGroup,
                    ResponseKind::JoinGroup(resp),
                    GROUP_DENIED,
                );
            }
            RequestKind::SyncGroup(r) if !self.group_ok(session, Op::Read, &r.group_id) => {
                let resp = SyncGroupResponse::default().with_error_code(GROUP_DENIED);
                return whole(
                    ApiKey::SyncGroup,
                    ResponseKind::SyncGroup(resp),
                    GROUP_DENIED,
                );
            }
            RequestKind::Heartbeat(r) if !self.group_ok(session, Op::Read, &r.group_id) => {
                let resp = HeartbeatResponse::default().with_error_code(GROUP_DENIED);
                return whole(
                    ApiKey::Heartbeat,
                    ResponseKind::Heartbeat(resp),
                    GROUP_DENIED,
                );
            }
            RequestKind::LeaveGroup(r) if !self.group_ok(session, Op::Read, &r.group_id) => {
                let resp = LeaveGroupResponse::default().with_error_code(GROUP_DENIED);
                return whole(
                    ApiKey::LeaveGroup,
                    ResponseKind::LeaveGroup(resp),
                    GROUP_DENIED,
                );
            }
            RequestKind::OffsetCommit(r) => {
                let group_ok = self.group_ok(session, Op::Read, &r.group_id);
                let denied = if group_ok {
                    take_denied(&mut r.topics, |t| self.topic_ok(session, Op::Read, &t.name))
                } else {
                    std::mem::take(&mut r.topics)
                };
                let code = if group_ok { TOPIC_DENIED } else { GROUP_DENIED };
                for t in denied {
                    d.topics.push((
                        t.name.0,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                        code,
                    ));
                }
                if !group_ok {
                    // Nothing left to commit: the handler would still touch the group.
                    let topics = d
                        .topics
                        .drain(..)
                        .map(|(name, parts, code)| {
                            OffsetCommitResponseTopic::default()
                                .with_name(name.into())
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|p| {
                                            OffsetCommitResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    let resp = OffsetCommitResponse::default().with_topics(topics);
                    return whole(
                        ApiKey::OffsetCommit,
                        ResponseKind::OffsetCommit(resp),
                        GROUP_DENIED,
                    );
                }
            }
            RequestKind::OffsetFetch(r) => {
                if version >= 8 {
                    for g in take_denied(&mut r.groups, |g| {
                        self.group_ok(session, Op::Describe, &g.group_id)
                    }) {
                        d.names.push((g.group_id.0, GROUP_DENIED));
                    }
                } else if !self.group_ok(session, Op::Describe, &r.group_id) {
                    let resp = OffsetFetchResponse::default().with_error_code(GROUP_DENIED);
                    return whole(
                        ApiKey::OffsetFetch,
                        ResponseKind::OffsetFetch(resp),
                        GROUP_DENIED,
                    );
                }
            }
            RequestKind::DescribeGroups(r) => {
                for g in take_denied(&mut r.groups, |g| self.group_ok(session, Op::Describe, g)) {
                    d.names.push((g.0, GROUP_DENIED));
                }
            }
            RequestKind::DeleteGroups(r) => {
                for g in take_denied(&mut r.groups_names, |g| {
                    self.group_ok(session, Op::Delete, g)
                }) {
                    d.names.push((g.0, GROUP_DENIED));
                }
            }
            RequestKind::OffsetDelete(r) => {
                if !self.group_ok(session, Op::Delete, &r.group_id) {
                    let resp = OffsetDeleteResponse::default().with_error_code(GROUP_DENIED);
                    return whole(
                        ApiKey::OffsetDelete,
                        ResponseKind::OffsetDelete(resp),
                        GROUP_DENIED,
                    );
                }
                for t in take_denied(&mut r.topics, |t| self.topic_ok(session, Op::Read, &t.name)) {
                    d.topics.push((
                        t.name.0,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                        TOPIC_DENIED,
                    ));
                }
            }
            RequestKind::DeleteRecords(r) => {
                for t in take_denied(&mut r.topics, |t| {
                    self.topic_ok(session, Op::Delete, &t.name)
                }) {
                    d.topics.push((
                        t.name.0,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                        TOPIC_DENIED,
                    ));
                }
            }
            RequestKind::InitProducerId(r) => {
                let ok = match &r.transactional_id {
                    Some(txn) => {
                        self.authorized(session, Op::Write, ResourceType::TransactionalId, txn)
                    }
                    None => {
                        self.authorized_quietly(
                            session,
                            Op::IdempotentWrite,
                            ResourceType::Cluster,
                            CLUSTER_NAME,
                        ) || self.authorized_any(session, Op::Write, ResourceType::Topic)
                            || self.authorized_any(
                                session,
                                Op::Write,
                                ResourceType::TransactionalId,
                            )
                    }
                };
                if !ok {
                    let code = if r.transactional_id.is_some() {
                        TXN_DENIED
                    } else {
                        CLUSTER_DENIED
                    };
                    let resp = InitProducerIdResponse::default()
                        .with_error_code(code)
                        .with_producer_id((-1).into())
                        .with_producer_epoch(-1);
                    return whole(
                        ApiKey::InitProducerId,
                        ResponseKind::InitProducerId(resp),
                        code,
                    );
                }
            }
            RequestKind::ElectLeaders(r) if !cluster(Op::Alter) => {
                let results = r
                    .topic_partitions
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| {
                        ReplicaElectionResult::default()
                            .with_topic(t.topic)
                            .with_partition_result(
                                t.partitions
                                    .into_iter()
                                    .map(|p| {
                                        PartitionResult::default()
                                            .with_partition_id(p)
                                            .with_error_code(CLUSTER_DENIED)
                                            .with_error_message(message(CLUSTER_DENIED))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                let resp = ElectLeadersResponse::default()
                    .with_error_code(if version >= 1 { CLUSTER_DENIED } else { 0 })
                    .with_replica_election_results(results);
                return whole(
                    ApiKey::ElectLeaders,
                    ResponseKind::ElectLeaders(resp),
                    CLUSTER_DENIED,
                );
            }
            RequestKind::DescribeLogDirs(_) if !cluster(Op::Describe) => {
                // Before v3 there is no error field: Kafka answers an empty result.
                let resp = DescribeLogDirsResponse::default().with_error_code(if version >= 3 {
                    CLUSTER_DENIED
                } else {
                    0
                });
                return whole(
                    ApiKey::DescribeLogDirs,
                    ResponseKind::DescribeLogDirs(resp),
                    CLUSTER_DENIED,
                );
            }
            RequestKind::AlterPartitionReassignments(_) if !cluster(Op::Alter) => {
                return cluster_denied!(
                    AlterPartitionReassignments,
                    AlterPartitionReassignmentsResponse
                );
            }
            RequestKind::ListPartitionReassignments(_) if !cluster(Op::Describe) => {
                return cluster_denied!(
                    ListPartitionReassignments,
                    ListPartitionReassignmentsResponse
                );
            }
            RequestKind::DescribeCluster(_) if !cluster(Op::Describe) => {
                return cluster_denied!(DescribeCluster, DescribeClusterResponse);
            }
            RequestKind::UnregisterBroker(_) if !cluster(Op::Alter) => {
                return cluster_denied!(UnregisterBroker, UnregisterBrokerResponse);
            }
            RequestKind::DescribeQuorum(_) if !cluster(Op::Describe) => {
                return cluster_denied!(DescribeQuorum, DescribeQuorumResponse);
            }
            RequestKind::AddRaftVoter(_) if !cluster(Op::Alter) => {
                return cluster_denied!(AddRaftVoter, AddRaftVoterResponse);
            }
            RequestKind::RemoveRaftVoter(_) if !cluster(Op::Alter) => {
                return cluster_denied!(RemoveRaftVoter, RemoveRaftVoterResponse);
            }
            // ApiVersions, SASL, ListGroups (filtered after), the ACL and SCRAM APIs (checked
            // in their handlers).
            _ => {}
        }
        Ok(d)
    }

    /// Puts the denied parts back into the response and filters listings. Returns the code to
    /// count the request under (the first denial when the handler's code is 0).
    pub(super) fn authorize_response(
        &self,
        response: &mut ResponseKind,
        denied: Denied,
        session: &Session,
        code: i16,
    ) -> i16 {
        if self.security.authorizer.is_none() {
            return code;
        }
        use AclOperation as Op;
        let first = denied
            .topics
            .first()
            .map(|t| t.2)
            .or(denied.names.first().map(|n| n.1))
            .or((!denied.configs.is_empty()).then_some(TOPIC_DENIED));
        let code = if code == 0 { first.unwrap_or(0) } else { code };
        match response {
            ResponseKind::Metadata(r) => {
                // A listing (or topics named by id) leaves out what may not be described.
                r.topics.retain(|t| {
                    t.name.as_ref().is_none_or(|n| {
                        t.error_code != 0
                            || self.authorized_quietly(
                                session,
                                Op::Describe,
                                ResourceType::Topic,
                                n,
                            )
                    })
                });
                for (name, code) in denied.names {
                    r.topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(name.into()))
                            .with_error_code(code),
                    );
                }
            }
            ResponseKind::ListGroups(r)
                if !self.authorized_quietly(
                    session,
                    Op::Describe,
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                ) =>
            {
                r.groups.retain(|g| {
                    self.authorized_quietly(session, Op::Describe, ResourceType::Group, &g.group_id)
                });
            }
            ResponseKind::OffsetFetch(r) => {
                // Committed offsets of topics the principal may not describe are not shown.
                let hidden = |name: &str| !self.topic_ok(session, Op::Describe, name);
                for t in r.topics.iter_mut().filter(|t| hidden(&t.name)) {
                    for p in &mut t.partitions {
                        p.error_code = TOPIC_DENIED;
                        p.committed_offset = -1;
                        p.metadata = None;
                    }
                }
                for g in &mut r.groups {
                    for t in g.topics.iter_mut().filter(|t| hidden(&t.name)) {
                        for p in &mut t.partitions {
                            p.error_code = TOPIC_DENIED;
                            p.committed_offset = -1;
                            p.metadata = None;
                        }
                    }
                }
                for (group, code) in denied.names {
                    r.groups.push(
                        OffsetFetchResponseGroup::default()
                            .with_group_id(group.into())
                            .with_error_code(code),
                    );
                }
            }
            _ if denied.is_empty() => {}
            ResponseKind::Produce(r) => {
                for (name, parts, code) in denied.topics {
                    r.responses.push(
                        TopicProduceResponse::default()
                            .with_name(name.into())
                            .with_partition_responses(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        PartitionProduceResponse::default()
                                            .with_index(p)
                                            .with_error_code(code)
                                            .with_base_offset(-1)
                                            .with_log_append_time_ms(-1)
                                            .with_log_start_offset(-1)
                                            .with_error_message(message(code))
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            ResponseKind::ListOffsets(r) => {
                for (name, parts, code) in denied.topics {
                    r.topics.push(
                        ListOffsetsTopicResponse::default()
                            .with_name(name.into())
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                            .with_timestamp(-1)
                                            .with_offset(-1)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            ResponseKind::OffsetForLeaderEpoch(r) => {
                for (name, parts, code) in denied.topics {
                    r.topics.push(
                        OffsetForLeaderTopicResult::default()
                            .with_topic(name.into())
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        EpochEndOffset::default()
                                            .with_partition(p)
                                            .with_error_code(code)
                                            .with_leader_epoch(-1)
                                            .with_end_offset(-1)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            ResponseKind::CreateTopics(r) => {
                for (name, code) in denied.names {
                    r.topics.push(
                        CreatableTopicResult::default()
                            .with_name(name.into())
                            .with_error_code(code)
                            .with_error_message(message(code))
                            .with_num_partitions(-1)
                            .with_replication_factor(-1),
                    );
                }
            }
            ResponseKind::DeleteTopics(r) => {
                for (name, code) in denied.names {
                    r.responses.push(
                        DeletableTopicResult::default()
                            .with_name(Some(name.into()))
                            .with_error_code(code)
                            .with_error_message(message(code)),
                    );
                }
            }
            ResponseKind::CreatePartitions(r) => {
                for (name, code) in denied.names {
                    r.results.push(
                        CreatePartitionsTopicResult::default()
                            .with_name(name.into())
                            .with_error_code(code)
                            .with_error_message(message(code)),
                    );
                }
            }
            ResponseKind::DescribeConfigs(r) => {
                for (rt, name) in denied.configs {
                    let code = if rt == CONFIG_TOPIC {
                        TOPIC_DENIED
                    } else {
                        CLUSTER_DENIED
                    };
                    r.results.push(
                        DescribeConfigsResult::default()
                            .with_resource_type(rt)
                            .with_resource_name(name)
                            .with_error_code(code)
                            .with_error_message(message(code)),
                    );
                }
            }
            ResponseKind::IncrementalAlterConfigs(r) => {
                for (rt, name) in denied.configs {
                    let code = if rt == CONFIG_TOPIC {
                        TOPIC_DENIED
                    } else {
                        CLUSTER_DENIED
                    };
                    r.responses.push(
                        AlterConfigsResourceResponse::default()
                            .with_resource_type(rt)
                            .with_resource_name(name)
                            .with_error_code(code)
                            .with_error_message(message(code)),
                    );
                }
            }
            ResponseKind::FindCoordinator(r) => {
                for (key, code) in denied.names {
                    r.coordinators.push(
                        Coordinator::default()
                            .with_key(key)
                            .with_node_id((-1).into())
                            .with_port(-1)
                            .with_error_code(code)
                            .with_error_message(message(code)),
                    );
                }
            }
            ResponseKind::OffsetCommit(r) => {
                for (name, parts, code) in denied.topics {
                    r.topics.push(
                        OffsetCommitResponseTopic::default()
                            .with_name(name.into())
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            ResponseKind::DescribeGroups(r) => {
                for (group, code) in denied.names {
                    r.groups.push(
                        DescribedGroup::default()
                            .with_group_id(group.into())
                            .with_error_code(code)
                            .with_error_message(message(code)),
                    );
                }
            }
            ResponseKind::DeleteGroups(r) => {
                for (group, code) in denied.names {
                    r.results.push(
                        DeletableGroupResult::default()
                            .with_group_id(group.into())
                            .with_error_code(code),
                    );
                }
            }
            ResponseKind::OffsetDelete(r) => {
                for (name, parts, code) in denied.topics {
                    r.topics.push(
                        OffsetDeleteResponseTopic::default()
                            .with_name(name.into())
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            ResponseKind::DeleteRecords(r) => {
                for (name, parts, code) in denied.topics {
                    r.topics.push(
                        DeleteRecordsTopicResult::default()
                            .with_name(name.into())
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        DeleteRecordsPartitionResult::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                            .with_low_watermark(-1)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            _ => {}
        }
        code
    }

    /// Puts denied topics back into a Fetch response.
    pub(super) fn authorize_fetch_response(&self, response: &mut FetchResponse, denied: Denied) {
        for (name, parts, code) in denied.topics {
            response.responses.push(
                FetchableTopicResponse::default()
                    .with_topic(name.into())
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|p| {
                                PartitionData::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                                    .with_high_watermark(-1)
                                    .with_last_stable_offset(-1)
                                    .with_log_start_offset(-1)
                            })
                            .collect(),
                    ),
            );
        }
    }
}
