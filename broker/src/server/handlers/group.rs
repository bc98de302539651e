//! Consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete.
//!
//! These translate wire versions to the coordinator's plain types and back; the rules live
//! in `group::state`.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::controller::{MetadataImage, NO_LEADER};
use crate::group::offsets::{coordinator_partition, CommittedOffset, WriteTarget, OFFSETS_TOPIC};
use crate::group::state::{
    GroupState, HeartbeatRequest as Beat, JoinRequest, LeavingMember, SyncRequest,
};
use crate::protocol::errors::ApiError;
use crate::security::Session;
use crate::server::now_ms;

/// A coordinator (node id, host, port), or why there is none.
type CoordinatorAnswer = Result<(i32, StrBytes, i32), (ResponseError, &'static str)>;

/// How long a write of offsets may wait for the in-sync replicas (offsets.commit.timeout.ms).
const OFFSET_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Per partition: the offset to write, or an error code.
type CommitOutcome = Result<CommittedOffset, i16>;

/// A partition and its committed offset, if any.
type PartitionOffset = (i32, Option<CommittedOffset>);

/// offset.metadata.max.bytes
const MAX_METADATA_BYTES: usize = 4096;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn opt(v: Option<&StrBytes>) -> Option<String> {
    v.map(|x| x.to_string())
}

impl Broker {
    pub(super) async fn find_coordinator(
        &self,
        r: FindCoordinatorRequest,
        version: i16,
        session: &Session,
    ) -> (FindCoordinatorResponse, i16) {
        let listener = session.info.listener.as_str();
        let keys: Vec<StrBytes> = if version >= 4 {
            r.coordinator_keys.clone()
        } else {
            vec![r.key.clone()]
        };
        let answers: Vec<CoordinatorAnswer> = match r.key_type {
            0 => self.group_coordinators(&keys, listener).await,
            1 => keys
                .iter()
                .map(|_| {
                    Err((
                        ResponseError::CoordinatorNotAvailable,
                        "transactions are not supported yet",
                    ))
                })
                .collect(),
            _ => keys
                .iter()
                .map(|_| {
                    Err((
                        ResponseError::InvalidRequest,
                        "unknown coordinator key type",
                    ))
                })
                .collect(),
        };
        let mut resp = FindCoordinatorResponse::default();
        if version >= 4 {
            resp.coordinators = keys
                .into_iter()
                .zip(answers)
                .map(|(key, answer)| {
                    let c = Coordinator::default().with_key(key);
                    match answer {
                        Ok((node, host, port)) => c
                            .with_node_id(BrokerId(node))
                            .with_host(host)
                            .with_port(port),
                        Err((e, m)) => c
                            .with_node_id(BrokerId(-1))
                            .with_port(-1)
                            .with_error_code(e.code())
                            .with_error_message(Some(s(m))),
                    }
                })
                .collect();
            let code = first_error(resp.coordinators.iter().map(|c| c.error_code));
            return (resp, code);
        }
        let answer = answers.into_iter().next().unwrap_or(Err((
            ResponseError::CoordinatorNotAvailable,
            "no coordinator",
        )));
        match answer {
            Ok((node, host, port)) => {
                resp.node_id = BrokerId(node);
                resp.host = host;
                resp.port = port;
                (resp, 0)
            }
            Err((e, m)) => {
                resp.error_code = e.code();
                resp.node_id = BrokerId(-1);
                resp.port = -1;
                if version >= 1 {
                    resp.error_message = Some(s(m));
                }
                (resp, e.code())
            }
        }
    }

    /// The coordinator of each group: this broker on a single broker; in a cluster the leader
    /// of the group's `__consumer_offsets` partition, the topic being created through the
    /// controller first when the image has none.
    async fn group_coordinators(
        &self,
        groups: &[StrBytes],
        listener: &str,
    ) -> Vec<CoordinatorAnswer> {
        let Some(cluster) = &self.cluster else {
            let ready = crate::group::Groups::ensure_offsets_topic(&self.registry).is_ok();
            let (host, port) = self.own_endpoint(listener);
            return groups
                .iter()
                .map(|_| {
                    if ready {
                        Ok((self.node_id, host.clone(), port))
                    } else {
                        Err((
                            ResponseError::CoordinatorNotAvailable,
                            "the offsets topic cannot be created",
                        ))
                    }
                })
                .collect();
        };
        let mut image = cluster.current_image();
        if !image.topics.contains_key(OFFSETS_TOPIC) {
            if let Err(e) = self.create_offsets_topic(&image).await {
                tracing::warn!(error = %e.message, code = e.code(), "cannot create {OFFSETS_TOPIC}");
                return groups
                    .iter()
                    .map(|_| {
                        Err((
                            ResponseError::CoordinatorNotAvailable,
                            "the offsets topic cannot be created",
                        ))
                    })
                    .collect();
            }
            image = cluster.current_image();
        }
        groups
            .iter()
            .map(|g| coordinator_in(&image, g.as_str(), listener))
            .collect()
    }

    /// Cluster mode: proposes `__consumer_offsets` to the controller, with
    /// `offsets.topic.num.partitions` partitions, the compacted configs and the configured
    /// replication factor capped at the live brokers. Another broker creating it first is fine.
    async fn create_offsets_topic(&self, image: &MetadataImage) -> Result<(), ApiError> {
        let live = image.brokers.values().filter(|b| !b.fenced).count();
        if live == 0 {
            return Err(ApiError::new(
                ResponseError::CoordinatorNotAvailable,
                "no live broker",
            ));
        }
        let config = self.registry.static_broker();
        let rf = config
            .offsets_topic_replication_factor
            .min(i16::try_from(live).unwrap_or(i16::MAX));
        let created = self
            .create_topic(
                OFFSETS_TOPIC,
                config.offsets_topic_num_partitions,
                rf,
                None,
                crate::group::Groups::offsets_topic_configs(),
                false,
            )
            .await;
        match created {
            Ok(_) => {
                tracing::info!(
                    partitions = config.offsets_topic_num_partitions,
                    replication_factor = rf,
                    "created {OFFSETS_TOPIC}"
                );
                Ok(())
            }
            Err(e) if e.code() == ResponseError::TopicAlreadyExists.code() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn join_group(
        &self,
        r: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> (JoinGroupResponse, i16) {
        let mut resp = JoinGroupResponse::default().with_member_id(r.member_id.clone());
        if version < 7 {
            resp.protocol_name = Some(StrBytes::default());
        }
        if r.group_id.is_empty() {
            let code = ResponseError::InvalidGroupId.code();
            resp.error_code = code;
            resp.generation_id = -1;
            return (resp, code);
        }
        let req = JoinRequest {
            group_id: r.group_id.to_string(),
            member_id: r.member_id.to_string(),
            group_instance_id: opt(r.group_instance_id.as_ref()),
            protocol_type: r.protocol_type.to_string(),
            protocols: r
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: if version >= 1 {
                r.rebalance_timeout_ms
            } else {
                r.session_timeout_ms
            },
            client_id: client_id.to_string(),
            client_host: client_host.to_string(),
            require_known_member_id: version >= 4,
            supports_skip_assignment: version >= 9,
        };
        let j = self.groups.join(req).await;
        resp.error_code = j.error_code;
        resp.generation_id = j.generation_id;
        resp.leader = s(j.leader);
        resp.member_id = s(j.member_id);
        if version >= 7 {
            resp.protocol_type = j.protocol_type.map(s);
            resp.protocol_name = j.protocol_name.map(s);
        } else {
            resp.protocol_name = Some(s(j.protocol_name.unwrap_or_default()));
        }
        if version >= 9 {
            resp.skip_assignment = j.skip_assignment;
        }
        resp.members = j
            .members
            .into_iter()
            .map(|m| {
                let mut out = JoinGroupResponseMember::default()
                    .with_member_id(s(m.member_id))
                    .with_metadata(m.metadata);
                if version >= 5 {
                    out.group_instance_id = m.group_instance_id.map(s);
                }
                out
            })
            .collect();
        let code = resp.error_code;
        (resp, code)
    }

    pub(super) async fn sync_group(
        &self,
        r: SyncGroupRequest,
        version: i16,
    ) -> (SyncGroupResponse, i16) {
        if r.group_id.is_empty() {
            let code = ResponseError::InvalidGroupId.code();
            return (SyncGroupResponse::default().with_error_code(code), code);
        }
        let req = SyncRequest {
            group_id: r.group_id.to_string(),
            member_id: r.member_id.to_string(),
            generation_id: r.generation_id,
            group_instance_id: opt(r.group_instance_id.as_ref()),
            protocol_type: opt(r.protocol_type.as_ref()),
            protocol_name: opt(r.protocol_name.as_ref()),
            assignments: r
                .assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                .collect(),
        };
        let out = self
            .groups
            .sync(
                req,
                self.registry.static_broker().group_max_session_timeout_ms,
            )
            .await;
        let mut resp = SyncGroupResponse::default()
            .with_error_code(out.error_code)
            .with_assignment(out.assignment);
        if version >= 5 {
            resp.protocol_type = out.protocol_type.map(s);
            resp.protocol_name = out.protocol_name.map(s);
        }
        (resp, out.error_code)
    }

    pub(super) fn heartbeat(&self, r: HeartbeatRequest) -> (HeartbeatResponse, i16) {
        if let Err(code) = self.groups.check(&r.group_id) {
            return (HeartbeatResponse::default().with_error_code(code), code);
        }
        let code = self.groups.coordinator().heartbeat(
            Beat {
                group_id: r.group_id.to_string(),
                member_id: r.member_id.to_string(),
                generation_id: r.generation_id,
                group_instance_id: opt(r.group_instance_id.as_ref()),
            },
            now_ms(),
        );
        (HeartbeatResponse::default().with_error_code(code), code)
    }

    pub(super) fn leave_group(
        &self,
        r: LeaveGroupRequest,
        version: i16,
    ) -> (LeaveGroupResponse, i16) {
        if let Err(code) = self.groups.check(&r.group_id) {
            return (LeaveGroupResponse::default().with_error_code(code), code);
        }
        let members: Vec<LeavingMember> = if version >= 3 {
            r.members
                .iter()
                .map(|m| LeavingMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: opt(m.group_instance_id.as_ref()),
                })
                .collect()
        } else {
            vec![LeavingMember {
                member_id: r.member_id.to_string(),
                group_instance_id: None,
            }]
        };
        let (top, per_member) = self.groups.leave(&r.group_id, members.clone());
        let mut resp = LeaveGroupResponse::default().with_error_code(top);
        if version >= 3 {
            resp.members = members
                .into_iter()
                .zip(per_member)
                .map(|(m, code)| {
                    MemberResponse::default()
                        .with_member_id(s(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(s))
                        .with_error_code(code)
                })
                .collect();
        } else if top == 0 {
            resp.error_code = per_member.first().copied().unwrap_or(0);
        }
        let code = first_error(
            std::iter::once(resp.error_code).chain(resp.members.iter().map(|m| m.error_code)),
        );
        (resp, code)
    }

    pub(super) async fn offset_commit(
        &self,
        r: OffsetCommitRequest,
        version: i16,
    ) -> (OffsetCommitResponse, i16) {
        let group = r.group_id.to_string();
        let mut fence = None;
        let gate = if group.is_empty() {
            Err(ResponseError::InvalidGroupId.code())
        } else {
            self.groups.check(&group).and_then(|epoch| {
                fence = epoch;
                self.groups.coordinator().validate_commit(
                    &group,
                    &r.member_id,
                    r.generation_id_or_member_epoch,
                    r.group_instance_id.as_ref().map(|i| i.as_str()),
                )
            })
        };
        let now = now_ms();
        // Per partition: Ok(offset to write) or an error code.
        let mut results: Vec<(TopicName, Vec<(i32, CommitOutcome)>)> = Vec::new();
        for t in &r.topics {
            let exists = self.registry.get(t.name.as_str());
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let result = gate.and_then(|()| {
                        if !exists.as_ref().is_some_and(|topic| {
                            p.partition_index >= 0 && p.partition_index < topic.partition_count()
                        }) {
                            return Err(ResponseError::UnknownTopicOrPartition.code());
                        }
                        if p.committed_metadata
                            .as_ref()
                            .is_some_and(|m| m.len() > MAX_METADATA_BYTES)
                        {
                            return Err(ResponseError::OffsetMetadataTooLarge.code());
                        }
                        Ok(CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: if version >= 6 {
                                p.committed_leader_epoch
                            } else {
                                -1
                            },
                            metadata: opt(p.committed_metadata.as_ref()),
                            commit_timestamp: now,
                        })
                    });
                    (p.partition_index, result)
                })
                .collect();
            results.push((t.name.clone(), parts));
        }
        let to_write: Vec<_> = results
            .iter()
            .flat_map(|(t, parts)| {
                parts.iter().filter_map(move |(p, r)| {
                    r.as_ref().ok().map(|c| ((t.to_string(), *p), c.clone()))
                })
            })
            .collect();
        let write_error = if to_write.is_empty() {
            None
        } else {
            match self
                .groups
                .offsets
                .commit(self.write_target(fence), &group, to_write, now)
                .await
            {
                Ok(()) => {
                    self.groups.coordinator().touch(&group, &r.member_id, now);
                    None
                }
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "offset commit failed");
                    Some(e.code())
                }
            }
        };
        let topics: Vec<OffsetCommitResponseTopic> = results
            .into_iter()
            .map(|(name, parts)| {
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, r)| {
                                let code = match r {
                                    Ok(_) => write_error.unwrap_or(0),
                                    Err(c) => c,
                                };
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        let code = first_error(
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        (OffsetCommitResponse::default().with_topics(topics), code)
    }

    /// Committed offsets of one group: (topic, [(partition, offset)]) for the requested
    /// partitions, or for everything committed when `topics` is None.
    fn committed_for(
        &self,
        group: &str,
        topics: Option<Vec<(TopicName, Vec<i32>)>>,
    ) -> Vec<(TopicName, Vec<PartitionOffset>)> {
        match topics {
            Some(list) => list
                .into_iter()
                .map(|(t, parts)| {
                    let offsets = parts
                        .into_iter()
                        .map(|p| (p, self.groups.offsets.fetch(group, t.as_str(), p)))
                        .collect();
                    (t, offsets)
                })
                .collect(),
            None => {
                let mut by_topic: std::collections::BTreeMap<
                    String,
                    Vec<(i32, Option<CommittedOffset>)>,
                > = Default::default();
                for ((t, p), c) in self.groups.offsets.group(group) {
                    by_topic.entry(t).or_default().push((p, Some(c)));
                }
                by_topic
                    .into_iter()
                    .map(|(t, v)| (TopicName(s(t)), v))
                    .collect()
            }
        }
    }

    pub(super) fn offset_fetch(
        &self,
        r: OffsetFetchRequest,
        version: i16,
    ) -> (OffsetFetchResponse, i16) {
        let fill = |c: &Option<CommittedOffset>| match c {
            Some(c) => (
                c.offset,
                if version >= 5 { c.leader_epoch } else { -1 },
                c.metadata.clone().unwrap_or_default(),
            ),
            None => (-1, -1, String::new()),
        };
        if version >= 8 {
            let groups = r
                .groups
                .into_iter()
                .map(|g| {
                    if let Err(code) = self.groups.check(&g.group_id) {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id)
                            .with_error_code(code);
                    }
                    let topics = g.topics.map(|ts| {
                        ts.into_iter()
                            .map(|t| (t.name, t.partition_indexes))
                            .collect()
                    });
                    let topics = self
                        .committed_for(&g.group_id, topics)
                        .into_iter()
                        .map(|(name, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(name)
                                .with_partitions(
                                    parts
                                        .iter()
                                        .map(|(p, c)| {
                                            let (offset, epoch, meta) = fill(c);
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(*p)
                                                .with_committed_offset(offset)
                                                .with_committed_leader_epoch(epoch)
                                                .with_metadata(Some(s(meta)))
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_topics(topics)
                })
                .collect::<Vec<_>>();
            let code = first_error(groups.iter().map(|g| g.error_code));
            return (OffsetFetchResponse::default().with_groups(groups), code);
        }
        if let Err(code) = self.groups.check(&r.group_id) {
            return (offset_fetch_error(&r, version, code), code);
        }
        let topics = r.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name, t.partition_indexes))
                .collect()
        });
        let topics = self
            .committed_for(&r.group_id, topics)
            .into_iter()
            .map(|(name, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        parts
                            .iter()
                            .map(|(p, c)| {
                                let (offset, epoch, meta) = fill(c);
                                let mut out = OffsetFetchResponsePartition::default()
                                    .with_partition_index(*p)
                                    .with_committed_offset(offset)
                                    .with_metadata(Some(s(meta)));
                                if version >= 5 {
                                    out.committed_leader_epoch = epoch;
                                }
                                out
                            })
                            .collect(),
                    )
            })
            .collect();
        (OffsetFetchResponse::default().with_topics(topics), 0)
    }

    pub(super) fn list_groups(
        &self,
        r: ListGroupsRequest,
        version: i16,
    ) -> (ListGroupsResponse, i16) {
        // In a cluster, only the groups this broker coordinates (all of them on a single
        // broker); while a partition it leads is loaded, its groups are missing from the list:
        // COORDINATOR_LOAD_IN_PROGRESS tells the client to ask again.
        let loading = self.groups.loading();
        let mut listed: std::collections::BTreeMap<String, (String, String)> = self
            .groups
            .coordinator()
            .list()
            .into_iter()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| self.groups.check(&g.group_id).is_ok())
            .map(|g| (g.group_id, (g.protocol_type, g.state.name().to_string())))
            .collect();
        // Groups that only commit offsets (manual assignment) exist as Empty groups.
        for g in self.groups.offsets.groups() {
            if self.groups.check(&g).is_err() {
                continue;
            }
            listed
                .entry(g)
                .or_insert_with(|| (String::new(), "Empty".to_string()));
        }
        let groups = listed
            .into_iter()
            .filter(|(_, (_, state))| {
                version < 4
                    || r.states_filter.is_empty()
                    || r.states_filter
                        .iter()
                        .any(|f| f.as_str().eq_ignore_ascii_case(state))
            })
            .map(|(id, (ptype, state))| {
                let mut g = ListedGroup::default()
                    .with_group_id(GroupId(s(id)))
                    .with_protocol_type(s(ptype));
                if version >= 4 {
                    g.group_state = s(state);
                }
                g
            })
            .collect();
        let code = if loading {
            ResponseError::CoordinatorLoadInProgress.code()
        } else {
            0
        };
        (
            ListGroupsResponse::default()
                .with_error_code(code)
                .with_groups(groups),
            code,
        )
    }

    pub(super) fn describe_groups(
        &self,
        r: DescribeGroupsRequest,
        version: i16,
    ) -> (DescribeGroupsResponse, i16) {
        let groups = r
            .groups
            .into_iter()
            .map(|id| {
                if let Err(code) = self.groups.check(&id) {
                    let mut g = DescribedGroup::default()
                        .with_group_id(id)
                        .with_error_code(code);
                    if version < 3 {
                        g.authorized_operations = i32::MIN;
                    }
                    return g;
                }
                let d = self.groups.coordinator().describe(&id);
                let state =
                    if d.state == GroupState::Dead && !self.groups.offsets.group(&id).is_empty() {
                        GroupState::Empty
                    } else {
                        d.state
                    };
                let state = state.name().to_string();
                let mut g = DescribedGroup::default()
                    .with_group_id(id)
                    .with_group_state(s(state))
                    .with_protocol_type(s(d.protocol_type))
                    .with_protocol_data(s(d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                let mut out = DescribedGroupMember::default()
                                    .with_member_id(s(m.member_id))
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment);
                                if version >= 4 {
                                    out.group_instance_id = m.group_instance_id.map(s);
                                }
                                out
                            })
                            .collect(),
                    );
                if version < 3 {
                    g.authorized_operations = i32::MIN;
                }
                g
            })
            .collect::<Vec<_>>();
        let code = first_error(groups.iter().map(|g| g.error_code));
        (DescribeGroupsResponse::default().with_groups(groups), code)
    }

    pub(super) async fn delete_groups(
        &self,
        r: DeleteGroupsRequest,
    ) -> (DeleteGroupsResponse, i16) {
        let mut results = Vec::with_capacity(r.groups_names.len());
        for id in r.groups_names {
            let code = self.delete_group(&id).await;
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(code),
            );
        }
        let code = first_error(results.iter().map(|r| r.error_code));
        (DeleteGroupsResponse::default().with_results(results), code)
    }

    /// DeleteGroups of one group: the error code.
    async fn delete_group(&self, id: &str) -> i16 {
        let fence = match self.groups.check(id) {
            Ok(fence) => fence,
            Err(code) => return code,
        };
        let mut code = self.groups.delete(id);
        let has_offsets = !self.groups.offsets.group(id).is_empty();
        if code == ResponseError::GroupIdNotFound.code() && has_offsets {
            code = 0;
        }
        if code == 0 && has_offsets {
            if let Err(e) = self
                .groups
                .offsets
                .delete_group(self.write_target(fence), id, now_ms())
                .await
            {
                tracing::warn!(group = %id, error = %e, "deleting offsets failed");
                code = e.code();
            }
        }
        code
    }

    /// Where offsets of a group served at leader epoch `fence` are written.
    fn write_target(&self, fence: Option<i32>) -> WriteTarget<'_> {
        WriteTarget {
            registry: &self.registry,
            fence,
            deadline: tokio::time::Instant::now() + OFFSET_COMMIT_TIMEOUT,
        }
    }

    pub(super) async fn offset_delete(
        &self,
        r: OffsetDeleteRequest,
    ) -> (OffsetDeleteResponse, i16) {
        let group = r.group_id.to_string();
        let fence = match self.groups.check(&group) {
            Ok(fence) => fence,
            Err(code) => return (OffsetDeleteResponse::default().with_error_code(code), code),
        };
        let known = !self.groups.offsets.group(&group).is_empty()
            || !self.groups.coordinator().group_is_empty_or_unknown(&group);
        if !known {
            let code = ResponseError::GroupIdNotFound.code();
            return (OffsetDeleteResponse::default().with_error_code(code), code);
        }
        let active = !self.groups.coordinator().group_is_empty_or_unknown(&group);
        let mut to_delete = Vec::new();
        let topics: Vec<OffsetDeleteResponseTopic> = r
            .topics
            .iter()
            .map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let code = if self.registry.get(t.name.as_str()).is_none() {
                            ResponseError::UnknownTopicOrPartition.code()
                        } else if active {
                            ResponseError::GroupSubscribedToTopic.code()
                        } else {
                            to_delete.push((t.name.to_string(), p.partition_index));
                            0
                        };
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(parts)
            })
            .collect();
        if let Err(e) = self
            .groups
            .offsets
            .delete(self.write_target(fence), &group, &to_delete, now_ms())
            .await
        {
            tracing::warn!(group = %group, error = %e, "deleting offsets failed");
            let code = e.code();
            return (OffsetDeleteResponse::default().with_error_code(code), code);
        }
        let code = first_error(
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        (OffsetDeleteResponse::default().with_topics(topics), code)
    }
}

/// An OffsetFetch (v0–7) answered with `code` for the whole group: the top-level error from v2
/// on, each requested partition's error before.
fn offset_fetch_error(r: &OffsetFetchRequest, version: i16, code: i16) -> OffsetFetchResponse {
    if version >= 2 {
        return OffsetFetchResponse::default().with_error_code(code);
    }
    let topics = r
        .topics
        .iter()
        .flatten()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(-1)
                                .with_metadata(Some(StrBytes::default()))
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// The coordinator of `group` in `image`: the live leader of its `__consumer_offsets`
/// partition at its endpoint on `listener`, or COORDINATOR_NOT_AVAILABLE (clients retry) while
/// there is none or the leader has no such listener.
fn coordinator_in(image: &MetadataImage, group: &str, listener: &str) -> CoordinatorAnswer {
    let unavailable = |m| Err((ResponseError::CoordinatorNotAvailable, m));
    let Some(topic) = image.topics.get(OFFSETS_TOPIC) else {
        return unavailable("the offsets topic is not created yet");
    };
    let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let index = coordinator_partition(group, count);
    let Some(record) = usize::try_from(index)
        .ok()
        .and_then(|i| topic.partitions.get(i))
    else {
        return unavailable("the offsets topic has no partitions");
    };
    if record.leader == NO_LEADER {
        return unavailable("the group's offsets partition has no leader");
    }
    match image.brokers.get(&record.leader) {
        Some(b) if !b.fenced => match super::endpoint_on(b, listener) {
            Some((host, port)) => Ok((record.leader, s(host), port)),
            None => unavailable("the leader of the group's offsets partition has no such listener"),
        },
        _ => unavailable("the leader of the group's offsets partition is not live"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{BrokerRecord, PartitionRecord, TopicRecord};

    fn broker(port: i32, fenced: bool) -> BrokerRecord {
        BrokerRecord {
            host: "h".into(),
            port,
            rack: None,
            incarnation_id: String::new(),
            replication: String::new(),
            epoch: 0,
            fenced,
            listeners: Vec::new(),
        }
    }

    fn partition(leader: i32) -> PartitionRecord {
        PartitionRecord {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            reassignment: None,
        }
    }

    #[test]
    fn the_coordinator_is_the_live_leader_of_the_groups_partition() {
        let mut image = MetadataImage::default();
        let code = |a: CoordinatorAnswer| a.err().map(|(e, _)| e.code());
        let unavailable = Some(ResponseError::CoordinatorNotAvailable.code());
        assert_eq!(code(coordinator_in(&image, "g", "PLAINTEXT")), unavailable);
        for (id, port) in [(1, 9001), (2, 9002), (3, 9003)] {
            image.brokers.insert(id, broker(port, false));
        }
        image.topics.insert(
            OFFSETS_TOPIC.into(),
            TopicRecord {
                id: uuid::Uuid::from_u128(1),
                configs: Default::default(),
                partitions: vec![
                    partition(1),
                    partition(2),
                    partition(NO_LEADER),
                    partition(3),
                ],
            },
        );
        // "a" hashes to 97: partition 1 of 4, led by broker 2.
        assert_eq!(coordinator_partition("a", 4), 1);
        assert_eq!(
            coordinator_in(&image, "a", "PLAINTEXT").ok(),
            Some((2, s("h"), 9002))
        );
        // "b" (98): partition 2, no leader; "c" (99): partition 3, led by a fenced broker.
        assert_eq!(code(coordinator_in(&image, "b", "PLAINTEXT")), unavailable);
        image.brokers.insert(3, broker(9003, true));
        assert_eq!(code(coordinator_in(&image, "c", "PLAINTEXT")), unavailable);
        // A broker that registered its listeners is reached on the request's listener, and
        // is no coordinator for a listener it does not have.
        let endpoint = |name: &str, port| crate::controller::Endpoint {
            name: name.into(),
            host: format!("{}-host", name.to_lowercase()),
            port,
        };
        image.brokers.get_mut(&2).unwrap().listeners =
            vec![endpoint("PLAINTEXT", 9002), endpoint("SSL", 9102)];
        assert_eq!(
            coordinator_in(&image, "a", "SSL").ok(),
            Some((2, s("ssl-host"), 9102))
        );
        assert_eq!(
            coordinator_in(&image, "a", "PLAINTEXT").ok(),
            Some((2, s("plaintext-host"), 9002))
        );
        assert_eq!(code(coordinator_in(&image, "a", "INTERNAL")), unavailable);
    }
}
