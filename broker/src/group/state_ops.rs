//! The parts of a group's life after the join phase: SyncGroup, Heartbeat, LeaveGroup,
//! offset-commit checks, DescribeGroups and the timers. Like `state_group.rs`, it sees time
//! only as the `now_ms` it is handed.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::group::{Ctx, Group, JoinTimer, Member, StoredKey};
use super::{
    GroupDescription, GroupState, HeartbeatRequest, LeavingMember, MemberDescription, SyncRequest,
    SyncResponse, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
};
use crate::group::metadata::{StoredGroup, StoredMember};

impl Group {
    // ---- SyncGroup, Heartbeat, LeaveGroup, commits ----

    pub(super) fn sync(
        &mut self,
        token: u64,
        req: &SyncRequest,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), i16> {
        let idx = self.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != self.generation {
            return Err(ILLEGAL_GENERATION);
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| self.protocol_type.as_ref() != Some(t))
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|n| self.protocol_name.as_ref() != Some(n))
        {
            return Err(INCONSISTENT_GROUP_PROTOCOL);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => Err(REBALANCE_IN_PROGRESS),
            GroupState::Stable => {
                self.synced(&req.member_id);
                self.members[idx].refresh(ctx.now_ms);
                let response = self.sync_ok(self.members[idx].assignment.clone());
                ctx.sync_done(token, response);
                Ok(())
            }
            GroupState::CompletingRebalance => {
                if let Some(old) = self.members[idx].awaiting_sync.replace(token) {
                    ctx.sync_done(old, SyncResponse::error(REBALANCE_IN_PROGRESS));
                }
                self.synced(&req.member_id);
                if self.is_leader(&req.member_id) {
                    self.install_assignment(&req.assignments, ctx);
                }
                Ok(())
            }
        }
    }

    fn synced(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline_ms = None;
        }
    }

    /// The leader's assignment: stored (members it omits get an empty one), the group becomes
    /// Stable and every held sync is answered.
    fn install_assignment(&mut self, assignments: &[(String, Bytes)], ctx: &mut Ctx<'_>) {
        let by_member: BTreeMap<&str, &Bytes> =
            assignments.iter().map(|(id, a)| (id.as_str(), a)).collect();
        for m in &mut self.members {
            m.assignment = by_member
                .get(m.id.as_str())
                .map(|a| (*a).clone())
                .unwrap_or_default();
        }
        let missing = self
            .members
            .iter()
            .filter(|m| !by_member.contains_key(m.id.as_str()))
            .count();
        if missing > 0 {
            tracing::warn!(group = %self.id, missing, "leader's assignment omits members; they get none");
        }
        self.state = GroupState::Stable;
        tracing::info!(group = %self.id, generation = self.generation, "group stable");
        let mut responses = Vec::new();
        for m in &self.members {
            if let Some(t) = m.awaiting_sync {
                responses.push((t, self.sync_ok(m.assignment.clone())));
            }
        }
        for (token, response) in responses {
            ctx.sync_done(token, response);
        }
        for m in &mut self.members {
            if m.awaiting_sync.take().is_some() {
                m.refresh(ctx.now_ms);
            }
        }
    }

    pub(super) fn heartbeat(&mut self, req: &HeartbeatRequest, now_ms: i64) -> i16 {
        let idx = match self.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
            Ok(idx) => idx,
            Err(code) => return code,
        };
        if req.generation_id != self.generation {
            return ILLEGAL_GENERATION;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                self.members[idx].refresh(now_ms);
                REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members[idx].refresh(now_ms);
                0
            }
        }
    }

    pub(super) fn leave(&mut self, leaving: &LeavingMember, ctx: &mut Ctx<'_>) -> i16 {
        let instance = leaving.group_instance_id.as_deref();
        if leaving.member_id.is_empty() {
            // Administrative removal by instance id (KIP-345).
            let Some(id) = instance
                .and_then(|i| self.static_member_id(i))
                .map(str::to_string)
            else {
                return UNKNOWN_MEMBER_ID;
            };
            tracing::info!(group = %self.id, member = %id, instance = ?instance, "static member removed");
            self.remove_member_and_rebalance(&id, ctx, "static member removed");
            return 0;
        }
        if self.pending.remove(&leaving.member_id).is_some() {
            self.maybe_complete_join(ctx);
            return 0;
        }
        match self.validate_member(&leaving.member_id, instance) {
            Ok(_) => {
                tracing::info!(group = %self.id, member = %leaving.member_id, "member left");
                self.remove_member_and_rebalance(&leaving.member_id, ctx, "member left");
                0
            }
            Err(code) => code,
        }
    }

    pub(super) fn validate_commit(
        &self,
        member_id: &str,
        generation_id: i32,
        instance_id: Option<&str>,
    ) -> Result<(), i16> {
        if generation_id < 0 && self.state == GroupState::Empty {
            // No group management (admin client, manual assignment): fine while nobody
            // manages the group.
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation {
                return Err(ILLEGAL_GENERATION);
            }
        } else {
            // A commit without member or generation while the group has members.
            return Err(UNKNOWN_MEMBER_ID);
        }
        if self.state == GroupState::CompletingRebalance {
            // It has the new generation but not its assignment yet.
            return Err(REBALANCE_IN_PROGRESS);
        }
        Ok(())
    }

    /// Empty, never had a member, and no member id handed out is still pending.
    pub(super) fn never_used(&self) -> bool {
        self.state == GroupState::Empty
            && self.generation == 0
            && self.members.is_empty()
            && self.pending.is_empty()
    }

    pub(super) fn touch(&mut self, member_id: &str, now_ms: i64) {
        if let Some(idx) = self.index_of(member_id) {
            self.members[idx].refresh(now_ms);
        }
    }

    pub(super) fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = if stable {
            self.protocol_name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let members = self
            .members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        }
    }

    // ---- timers ----

    pub(super) fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now_ms;

        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                tracing::debug!(group = %self.id, member = %id, "pending member expired");
                self.pending.remove(id);
            }
            self.maybe_complete_join(ctx);
        }

        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.expired(now))
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member_and_rebalance(&id, ctx, "session expired");
        }

        match self.join_timer {
            Some(JoinTimer::Initial {
                deadline_ms,
                delay_ms,
                remaining_ms,
            }) if deadline_ms <= now => {
                if self.new_member_added && remaining_ms != 0 {
                    // Members are still arriving: wait a little longer.
                    self.new_member_added = false;
                    let delay = ctx.initial_delay_ms.min(remaining_ms);
                    self.join_timer = Some(JoinTimer::Initial {
                        deadline_ms: ctx.after(delay),
                        delay_ms: delay,
                        remaining_ms: (remaining_ms - delay_ms).max(0),
                    });
                } else {
                    self.complete_join(ctx);
                }
            }
            Some(JoinTimer::Rebalance { deadline_ms }) if deadline_ms <= now => {
                self.complete_join(ctx)
            }
            _ => {}
        }

        if let Some(deadline) = self.sync_deadline_ms {
            if deadline <= now {
                self.sync_deadline_ms = None;
                if matches!(
                    self.state,
                    GroupState::CompletingRebalance | GroupState::Stable
                ) && !self.pending_sync.is_empty()
                {
                    let missing = std::mem::take(&mut self.pending_sync);
                    for id in &missing {
                        tracing::info!(group = %self.id, member = %id, "member removed: no SyncGroup in time");
                        self.remove_member(id, ctx);
                    }
                    self.prepare_rebalance(ctx, "members did not sync in time");
                }
            }
        }
    }

    // ---- storage in __consumer_offsets ----

    fn stored_key(&self) -> StoredKey {
        (
            self.state,
            self.generation,
            self.members.iter().map(|m| m.id.clone()).collect(),
        )
    }

    /// The record to store when the group is Stable, or Empty after having had members, and
    /// differs from the last record handed out; None otherwise.
    pub(super) fn take_stored(&mut self, now_ms: i64) -> Option<StoredGroup> {
        let storable = match self.state {
            GroupState::Stable => true,
            GroupState::Empty => self.generation > 0,
            _ => false,
        };
        if !storable {
            return None;
        }
        let unchanged = self
            .persisted
            .as_ref()
            .is_some_and(|(state, generation, ids)| {
                *state == self.state
                    && *generation == self.generation
                    && ids.iter().eq(self.members.iter().map(|m| &m.id))
            });
        if unchanged {
            return None;
        }
        self.persisted = Some(self.stored_key());
        let protocol = self.protocol_name.clone().unwrap_or_default();
        Some(StoredGroup {
            group_id: self.id.clone(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            state_timestamp: now_ms,
            members: self
                .members
                .iter()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// A group as stored: Stable with its members, each with a fresh session (they must
    /// heartbeat within their session timeout from now), or Empty.
    pub(super) fn from_stored(stored: StoredGroup, now_ms: i64) -> Group {
        let mut group = Group::new(stored.group_id);
        group.generation = stored.generation;
        group.protocol_type = Some(stored.protocol_type.clone()).filter(|t| !t.is_empty());
        let protocol = stored.protocol_name.filter(|_| !stored.members.is_empty());
        if let Some(protocol) = protocol {
            group.state = GroupState::Stable;
            group.protocol_name = Some(protocol.clone());
            group.leader = stored.leader;
            group.members = stored
                .members
                .into_iter()
                .map(|m| {
                    let mut member = Member {
                        id: m.member_id,
                        instance_id: m.instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        session_timeout_ms: m.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        protocol_type: stored.protocol_type.clone(),
                        protocols: vec![(protocol.clone(), m.subscription)],
                        assignment: m.assignment,
                        awaiting_join: None,
                        awaiting_sync: None,
                        is_new: false,
                        heartbeat_deadline_ms: 0,
                    };
                    member.refresh(now_ms);
                    member
                })
                .collect();
        }
        group.persisted = Some(group.stored_key());
        group
    }
}
