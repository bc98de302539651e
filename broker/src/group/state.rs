//! The group coordinator state machine of Kafka's classic consumer-group protocol
//! (JoinGroup / SyncGroup / Heartbeat / LeaveGroup, generations, session and rebalance
//! timeouts, the initial rebalance delay, static membership).
//!
//! Sans-io: no sockets, no async, no clock. Every call takes the current time in ms; requests
//! that must wait (a JoinGroup until the join phase completes, a follower's SyncGroup until the
//! leader's assignment arrives) are named by a caller-chosen token and answered later as
//! [`Completion`]s returned by whichever call completes them. It must never block, sleep, read
//! the clock or draw random numbers: the same calls always give the same answers.
//! Committed offsets live elsewhere (`offsets`).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

#[path = "state_group.rs"]
mod group;
#[path = "state_ops.rs"]
mod ops;
#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "state_tests_admin.rs"]
mod tests_admin;
#[cfg(test)]
#[path = "state_tests_static.rs"]
mod tests_static;
#[cfg(test)]
#[path = "state_tests_store.rs"]
mod tests_store;

use crate::group::metadata::StoredGroup;
use group::{Ctx, Group};

const INVALID_GROUP_ID: i16 = ResponseError::InvalidGroupId.code();
const INVALID_SESSION_TIMEOUT: i16 = ResponseError::InvalidSessionTimeout.code();
const UNKNOWN_MEMBER_ID: i16 = ResponseError::UnknownMemberId.code();
const INCONSISTENT_GROUP_PROTOCOL: i16 = ResponseError::InconsistentGroupProtocol.code();
const ILLEGAL_GENERATION: i16 = ResponseError::IllegalGeneration.code();
const REBALANCE_IN_PROGRESS: i16 = ResponseError::RebalanceInProgress.code();
const FENCED_INSTANCE_ID: i16 = ResponseError::FencedInstanceId.code();
const MEMBER_ID_REQUIRED: i16 = ResponseError::MemberIdRequired.code();
const NON_EMPTY_GROUP: i16 = ResponseError::NonEmptyGroup.code();
const GROUP_ID_NOT_FOUND: i16 = ResponseError::GroupIdNotFound.code();
const NOT_COORDINATOR: i16 = ResponseError::NotCoordinator.code();

/// Coordinator settings (Kafka's `group.*` broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first join phase of an empty group
    /// waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
        }
    }
}

/// The state of a group, as DescribeGroups and ListGroups name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members (offsets may still exist).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Join phase done, waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment distributed.
    Stable,
    /// Deleted or never existed.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a member that has no id yet.
    pub member_id: String,
    /// Static membership (JoinGroup v5+).
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// (protocol name, member metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout_ms: i32,
    /// v0: equal to the session timeout.
    pub rebalance_timeout_ms: i32,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+ without a group instance id: a new member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// JoinGroup v9+ (KIP-814): a static leader rejoining a Stable group is told it is the
    /// leader, with the members, and `skip_assignment` set.
    pub supports_skip_assignment: bool,
}

/// A JoinGroup response. On errors, `generation_id` is -1, the protocol fields are `None` and
/// `member_id` echoes the request (or carries the new id with MEMBER_ID_REQUIRED).
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<JoinedMember>,
    pub skip_assignment: bool,
}

impl JoinResponse {
    fn error(error_code: i16, member_id: String) -> JoinResponse {
        JoinResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id,
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// One member in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRequest {
    pub group_id: String,
    pub member_id: String,
    pub generation_id: i32,
    pub group_instance_id: Option<String>,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment).
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    fn error(error_code: i16) -> SyncResponse {
        SyncResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A Heartbeat request.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub generation_id: i32,
    pub group_instance_id: Option<String>,
}

/// One member leaving (LeaveGroup v0–2 carry one, with no instance id).
#[derive(Debug, Clone, PartialEq)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// The response of a waiting request.
#[derive(Debug, Clone, PartialEq)]
pub enum Completed {
    Join(JoinResponse),
    Sync(SyncResponse),
}

/// A response for the request named `token`.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub token: u64,
    pub response: Completed,
}

/// A group in ListGroups.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOverview {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// A group in DescribeGroups.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    /// The chosen protocol when Stable, else empty (as Kafka).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// A member in DescribeGroups. Metadata and assignment are empty unless the group is Stable.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// Every group this coordinator owns.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: BTreeMap<String, Group>,
    /// Member ids are `{prefix}-{nonce, counter as a UUID}`: the nonce is the first time seen, so
    /// ids do not repeat across restarts of the broker.
    id_nonce: Option<i64>,
    id_counter: u64,
    /// Stored groups deleted since the last [`GroupCoordinator::take_changes`].
    deleted: Vec<String>,
}

impl GroupCoordinator {
    /// A coordinator with no groups.
    pub fn new(config: CoordinatorConfig) -> Self {
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            id_nonce: None,
            id_counter: 0,
            deleted: Vec::new(),
        }
    }

    /// The group records to store since the last call: the groups that became Stable (or
    /// whose members changed while Stable) or Empty, and None for deleted groups. The caller
    /// writes them to `__consumer_offsets` before delivering the completions of the same call,
    /// so a SyncGroup is answered only once its generation is stored.
    pub fn take_changes(&mut self, now_ms: i64) -> Vec<(String, Option<StoredGroup>)> {
        let mut out: Vec<(String, Option<StoredGroup>)> =
            self.deleted.drain(..).map(|id| (id, None)).collect();
        for group in self.groups.values_mut() {
            if let Some(stored) = group.take_stored(now_ms) {
                out.push((group.id.clone(), Some(stored)));
            }
        }
        out
    }

    /// Brings back a group from its stored record (replay at start or on failover); a record
    /// of None forgets the group.
    pub fn restore(&mut self, group_id: &str, stored: Option<StoredGroup>, now_ms: i64) {
        match stored {
            Some(stored) => {
                tracing::info!(group = %group_id, generation = stored.generation,
                    members = stored.members.len(), "restored group");
                self.groups
                    .insert(group_id.to_string(), Group::from_stored(stored, now_ms));
            }
            None => {
                self.groups.remove(group_id);
            }
        }
    }

    /// Forgets every group `unloaded` names, because this broker stopped coordinating them
    /// (it no longer leads their `__consumer_offsets` partition). Their waiting JoinGroup and
    /// SyncGroup requests are answered NOT_COORDINATOR, so the members look for the new
    /// coordinator; nothing is stored for them, their records stay for the next coordinator.
    pub fn unload(&mut self, unloaded: impl Fn(&str) -> bool) -> Vec<Completion> {
        let mut out = Vec::new();
        let gone: Vec<String> = self
            .groups
            .keys()
            .filter(|g| unloaded(g))
            .cloned()
            .collect();
        for id in gone {
            let Some(group) = self.groups.remove(&id) else {
                continue;
            };
            for m in group.members {
                if let Some(token) = m.awaiting_join {
                    out.push(Completion {
                        token,
                        response: Completed::Join(JoinResponse::error(NOT_COORDINATOR, m.id)),
                    });
                }
                if let Some(token) = m.awaiting_sync {
                    out.push(Completion {
                        token,
                        response: Completed::Sync(SyncResponse::error(NOT_COORDINATOR)),
                    });
                }
            }
        }
        self.deleted.retain(|g| !unloaded(g));
        out
    }

    fn ctx<'a>(&self, now_ms: i64, out: &'a mut Vec<Completion>) -> Ctx<'a> {
        Ctx {
            now_ms,
            initial_delay_ms: self.config.initial_rebalance_delay_ms.max(0),
            out,
        }
    }

    fn next_member_id(&mut self, prefix: &str, now_ms: i64) -> String {
        let nonce = *self.id_nonce.get_or_insert(now_ms);
        self.id_counter = self.id_counter.wrapping_add(1);
        let v = (u128::from(nonce as u64) << 64) | u128::from(self.id_counter);
        format!(
            "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }

    /// JoinGroup. Returns the completions it triggers, possibly including this token's own
    /// response when it can answer at once; otherwise the response comes from a later call.
    pub fn join(&mut self, token: u64, req: JoinRequest, now_ms: i64) -> Vec<Completion> {
        let mut out = Vec::new();
        let member_id = req.member_id.clone();
        if let Err(code) = self.do_join(token, req, now_ms, &mut out) {
            out.push(Completion {
                token,
                response: Completed::Join(JoinResponse::error(code, member_id)),
            });
        }
        out
    }

    fn do_join(
        &mut self,
        token: u64,
        req: JoinRequest,
        now_ms: i64,
        out: &mut Vec<Completion>,
    ) -> Result<(), i16> {
        if req.group_id.is_empty() {
            return Err(INVALID_GROUP_ID);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Err(INVALID_SESSION_TIMEOUT);
        }
        let is_new_member = req.member_id.is_empty();
        match self.groups.get(&req.group_id) {
            Some(group) => {
                if !group.supports_protocols(&req.protocol_type, &req.protocols) {
                    return Err(INCONSISTENT_GROUP_PROTOCOL);
                }
            }
            // A member id for a group that does not exist: the client must start over.
            None if !is_new_member => return Err(UNKNOWN_MEMBER_ID),
            None => {
                if req.protocol_type.is_empty() || req.protocols.is_empty() {
                    return Err(INCONSISTENT_GROUP_PROTOCOL);
                }
                tracing::info!(group = %req.group_id, "group created");
                self.groups
                    .insert(req.group_id.clone(), Group::new(req.group_id.clone()));
            }
        }
        let new_id = if is_new_member {
            let prefix = req
                .group_instance_id
                .clone()
                .unwrap_or_else(|| req.client_id.clone());
            Some(self.next_member_id(&prefix, now_ms))
        } else {
            None
        };
        let mut ctx = self.ctx(now_ms, out);
        let group = self
            .groups
            .get_mut(&req.group_id)
            .ok_or(UNKNOWN_MEMBER_ID)?;
        match new_id {
            Some(id) => group.join_new_member(token, req, id, &mut ctx),
            None => group.join_known_member(token, req, &mut ctx),
        }
    }

    /// SyncGroup. A follower's sync in CompletingRebalance is held until the leader's arrives.
    pub fn sync(&mut self, token: u64, req: SyncRequest, now_ms: i64) -> Vec<Completion> {
        let mut out = Vec::new();
        let result = if req.group_id.is_empty() {
            Err(INVALID_GROUP_ID)
        } else {
            let mut ctx = self.ctx(now_ms, &mut out);
            match self.groups.get_mut(&req.group_id) {
                Some(group) => group.sync(token, &req, &mut ctx),
                None => Err(UNKNOWN_MEMBER_ID),
            }
        };
        if let Err(code) = result {
            out.push(Completion {
                token,
                response: Completed::Sync(SyncResponse::error(code)),
            });
        }
        out
    }

    /// Heartbeat: the error code to answer.
    pub fn heartbeat(&mut self, req: HeartbeatRequest, now_ms: i64) -> i16 {
        if req.group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        match self.groups.get_mut(&req.group_id) {
            Some(group) => group.heartbeat(&req, now_ms),
            None => UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup: (top-level error, one error per leaving member in request order, completions).
    /// For LeaveGroup v0–2 answer the top-level error if non-zero, else the member's error.
    pub fn leave(
        &mut self,
        group_id: &str,
        members: Vec<LeavingMember>,
        now_ms: i64,
    ) -> (i16, Vec<i16>, Vec<Completion>) {
        let mut out = Vec::new();
        if group_id.is_empty() {
            return (INVALID_GROUP_ID, Vec::new(), out);
        }
        let mut ctx = self.ctx(now_ms, &mut out);
        let errors = match self.groups.get_mut(group_id) {
            Some(group) => members.iter().map(|m| group.leave(m, &mut ctx)).collect(),
            None => vec![UNKNOWN_MEMBER_ID; members.len()],
        };
        (0, errors, out)
    }

    /// OffsetCommit validation (Kafka's classic-group rules): Ok if this member and generation
    /// may commit for the group now.
    ///
    /// * generation < 0 (no group management: admin client, manual assignment, kcat): allowed
    ///   if the group is Empty or unknown; with members present, a commit with no member id
    ///   is UNKNOWN_MEMBER_ID (one with a member id is checked as below).
    /// * unknown group with generation >= 0: ILLEGAL_GENERATION (what Kafka answers before
    ///   OffsetCommit v9; v9+ answers GROUP_ID_NOT_FOUND).
    /// * otherwise the member must be current (UNKNOWN_MEMBER_ID, or FENCED_INSTANCE_ID for a
    ///   replaced static member) with the current generation (ILLEGAL_GENERATION); allowed in
    ///   Stable and PreparingRebalance (consumers commit while revoking partitions, before they
    ///   rejoin), REBALANCE_IN_PROGRESS in CompletingRebalance.
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
        group_instance_id: Option<&str>,
    ) -> Result<(), i16> {
        match self.groups.get(group_id) {
            Some(group) => group.validate_commit(member_id, generation_id, group_instance_id),
            None if generation_id < 0 => Ok(()),
            None => Err(ILLEGAL_GENERATION),
        }
    }

    /// Refreshes a member's session, e.g. after it committed offsets. Unknown ids are ignored.
    pub fn touch(&mut self, group_id: &str, member_id: &str, now_ms: i64) {
        if let Some(group) = self.groups.get_mut(group_id) {
            group.touch(member_id, now_ms);
        }
    }

    /// OffsetFetch validation. Kafka checks nothing about the member for classic groups (v9+
    /// member id and epoch are for KIP-848 consumer groups), so this always allows the fetch;
    /// it exists so the handler has one place to ask.
    pub fn validate_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: Option<i32>,
    ) -> Result<(), i16> {
        let _ = (group_id, member_id, member_epoch);
        Ok(())
    }

    /// ListGroups: every group, by group id.
    pub fn list(&self) -> Vec<GroupOverview> {
        self.groups
            .values()
            .map(|g| GroupOverview {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect()
    }

    /// DescribeGroups. An unknown group describes as Dead with no members (error 0, as Kafka).
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        match self.groups.get(group_id) {
            Some(group) => group.describe(),
            None => GroupDescription {
                group_id: group_id.to_string(),
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            },
        }
    }

    /// DeleteGroups: NON_EMPTY_GROUP unless Empty, GROUP_ID_NOT_FOUND if unknown, else removes
    /// it (its offsets are the caller's to delete).
    pub fn delete(&mut self, group_id: &str) -> i16 {
        match self.groups.get(group_id).map(|g| g.state) {
            None => GROUP_ID_NOT_FOUND,
            Some(GroupState::Empty) => {
                if let Some(g) = self.groups.remove(group_id) {
                    if g.persisted.is_some() {
                        self.deleted.push(g.id);
                    }
                }
                tracing::info!(group = %group_id, "group deleted");
                0
            }
            Some(_) => NON_EMPTY_GROUP,
        }
    }

    /// True if the group has no members or does not exist.
    pub fn group_is_empty_or_unknown(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_none_or(|g| g.state == GroupState::Empty)
    }

    /// Runs the timers: session expiry, pending-member expiry, the initial-rebalance delay, the
    /// rebalance timeout and the sync timeout. Call it often (every ~100 ms). Also forgets
    /// Empty groups that never had a member (generation 0, no pending member ids).
    pub fn tick(&mut self, now_ms: i64) -> Vec<Completion> {
        let mut out = Vec::new();
        let mut ctx = self.ctx(now_ms, &mut out);
        for group in self.groups.values_mut() {
            group.tick(&mut ctx);
        }
        // A group only ever touched by a MEMBER_ID_REQUIRED round trip that never came back
        // has nothing worth keeping (Kafka drops such groups in its periodic cleanup).
        self.groups.retain(|_, g| !g.never_used());
        out
    }
}
