//! One group: its members, generation, timers and the transitions of the classic rebalance
//! protocol. Driven by `state.rs`; it sees time only as the `now_ms` it is handed and never
//! answers a request except by pushing a completion.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{
    Completed, Completion, GroupState, JoinRequest, JoinResponse, JoinedMember, SyncResponse,
    FENCED_INSTANCE_ID, MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
};

/// A new member that has not completed a join phase is dropped after this long (Kafka's
/// `GroupCoordinator.NewMemberJoinTimeoutMs`): it cannot heartbeat, and a client that gave up
/// on its JoinGroup would otherwise hold the rebalance for good.
pub(super) const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// What one call needs besides the group: the time, the configured initial delay, and where
/// responses go.
pub(super) struct Ctx<'a> {
    pub(super) now_ms: i64,
    pub(super) initial_delay_ms: i64,
    pub(super) out: &'a mut Vec<Completion>,
}

impl Ctx<'_> {
    pub(super) fn join_done(&mut self, token: u64, response: JoinResponse) {
        self.out.push(Completion {
            token,
            response: Completed::Join(response),
        });
    }

    pub(super) fn sync_done(&mut self, token: u64, response: SyncResponse) {
        self.out.push(Completion {
            token,
            response: Completed::Sync(response),
        });
    }

    pub(super) fn after(&self, ms: i64) -> i64 {
        self.now_ms.saturating_add(ms)
    }
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) session_timeout_ms: i32,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) protocol_type: String,
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) assignment: Bytes,
    /// Token of a JoinGroup held until the join phase completes.
    pub(super) awaiting_join: Option<u64>,
    /// Token of a SyncGroup held until the leader's assignment arrives.
    pub(super) awaiting_sync: Option<u64>,
    /// Has not yet completed a join phase.
    pub(super) is_new: bool,
    pub(super) heartbeat_deadline_ms: i64,
}

impl Member {
    pub(super) fn refresh(&mut self, now_ms: i64) {
        let timeout = if self.is_new {
            NEW_MEMBER_JOIN_TIMEOUT_MS
        } else {
            i64::from(self.session_timeout_ms)
        };
        self.heartbeat_deadline_ms = now_ms.saturating_add(timeout);
    }

    /// A member waiting on a held request is alive, unless it is new and waited too long.
    pub(super) fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.heartbeat_deadline_ms
            && (self.is_new || (self.awaiting_join.is_none() && self.awaiting_sync.is_none()))
    }

    pub(super) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub(super) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// Takes the request's protocols and timeouts; holds `token` until the join phase ends.
    pub(super) fn update(&mut self, token: u64, req: &JoinRequest, ctx: &mut Ctx<'_>) {
        self.protocols = req.protocols.clone();
        self.session_timeout_ms = req.session_timeout_ms;
        self.rebalance_timeout_ms = req.rebalance_timeout_ms;
        self.client_id = req.client_id.clone();
        self.client_host = req.client_host.clone();
        if let Some(old) = self.awaiting_join.replace(token) {
            // The same member sent another JoinGroup: the older request is superseded.
            ctx.join_done(
                old,
                JoinResponse::error(REBALANCE_IN_PROGRESS, self.id.clone()),
            );
        }
        self.refresh(ctx.now_ms);
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum JoinTimer {
    /// The first join phase after Empty: waits `delay_ms`, extended while members keep coming,
    /// within the rebalance timeout (`remaining_ms` of it left after this delay).
    Initial {
        deadline_ms: i64,
        delay_ms: i64,
        remaining_ms: i64,
    },
    /// Any other join phase: completes early when everyone has rejoined.
    Rebalance { deadline_ms: i64 },
}

#[derive(Debug)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) generation: i32,
    pub(super) leader: Option<String>,
    /// In join order.
    pub(super) members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pub(super) pending: BTreeMap<String, i64>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub(super) pending_sync: BTreeSet<String>,
    pub(super) sync_deadline_ms: Option<i64>,
    pub(super) join_timer: Option<JoinTimer>,
    pub(super) new_member_added: bool,
    /// (state, generation, member ids) of the last stored record of this group.
    pub(super) persisted: Option<StoredKey>,
}

/// What decides whether a group's stored record is out of date.
pub(super) type StoredKey = (GroupState, i32, Vec<String>);

impl Group {
    pub(super) fn new(id: String) -> Group {
        Group {
            id,
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: Vec::new(),
            pending: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: None,
            join_timer: None,
            new_member_added: false,
            persisted: None,
        }
    }

    pub(super) fn index_of(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == member_id)
    }

    pub(super) fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.as_str())
    }

    pub(super) fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// The member id must be current; with an instance id, it must be the one mapped to it.
    pub(super) fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<usize, i16> {
        if let Some(instance) = instance_id {
            match self.static_member_id(instance) {
                None => return Err(UNKNOWN_MEMBER_ID),
                Some(current) if current != member_id => return Err(FENCED_INSTANCE_ID),
                Some(_) => {}
            }
        }
        self.index_of(member_id).ok_or(UNKNOWN_MEMBER_ID)
    }

    /// Protocols every member supports, in the first member's order.
    pub(super) fn candidate_protocols(&self) -> Vec<&str> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect()
    }

    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let candidates = self.candidate_protocols();
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| candidates.contains(&name.as_str()))
    }

    /// Each member votes for its most preferred candidate; most votes wins, a tie goes to the
    /// protocol voted for by the earliest member.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for m in &self.members {
            let Some(vote) = m
                .protocols
                .iter()
                .map(|(n, _)| n.as_str())
                .find(|n| candidates.contains(n))
            else {
                continue;
            };
            match votes.iter_mut().find(|(n, _)| *n == vote) {
                Some((_, count)) => *count += 1,
                None => votes.push((vote, 1)),
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    pub(super) fn has_all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.iter().all(|m| m.awaiting_join.is_some())
    }

    pub(super) fn current_member_metadata(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    pub(super) fn join_ok(
        &self,
        member_id: &str,
        members: Vec<JoinedMember>,
        leader: String,
        skip_assignment: bool,
    ) -> JoinResponse {
        JoinResponse {
            error_code: 0,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment,
        }
    }

    pub(super) fn sync_ok(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error_code: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    // ---- JoinGroup ----

    /// A JoinGroup with an empty member id; `new_id` is the id it gets.
    pub(super) fn join_new_member(
        &mut self,
        token: u64,
        req: JoinRequest,
        new_id: String,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), i16> {
        if let Some(instance) = req.group_instance_id.as_deref() {
            if let Some(old_id) = self.static_member_id(instance).map(str::to_string) {
                return self.replace_static_member(token, &req, &old_id, new_id, ctx);
            }
        } else if req.require_known_member_id {
            tracing::debug!(group = %self.id, member = %new_id, "member id required");
            self.pending
                .insert(new_id.clone(), ctx.after(i64::from(req.session_timeout_ms)));
            ctx.join_done(token, JoinResponse::error(MEMBER_ID_REQUIRED, new_id));
            return Ok(());
        }
        self.add_member(token, &req, new_id, ctx);
        Ok(())
    }

    /// A JoinGroup with a member id.
    pub(super) fn join_known_member(
        &mut self,
        token: u64,
        req: JoinRequest,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), i16> {
        if req.group_instance_id.is_none() && self.pending.remove(&req.member_id).is_some() {
            self.add_member(token, &req, req.member_id.clone(), ctx);
            return Ok(());
        }
        let idx = self.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        let unchanged = self.members[idx].protocols == req.protocols;
        let is_leader = self.is_leader(&req.member_id);
        match self.state {
            GroupState::PreparingRebalance => self.update_member(idx, token, &req, ctx),
            GroupState::CompletingRebalance if unchanged => {
                // It probably missed the JoinGroup response: answer it again.
                let members = if is_leader {
                    self.current_member_metadata()
                } else {
                    Vec::new()
                };
                self.answer_join_now(idx, token, members, ctx);
            }
            GroupState::Stable if unchanged && !is_leader => {
                self.answer_join_now(idx, token, Vec::new(), ctx)
            }
            // A leader's JoinGroup in Stable asks for a rebalance (e.g. topic metadata changed).
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(idx, token, &req, ctx)
            }
            GroupState::Empty | GroupState::Dead => return Err(UNKNOWN_MEMBER_ID),
        }
        Ok(())
    }

    pub(super) fn answer_join_now(
        &mut self,
        idx: usize,
        token: u64,
        members: Vec<JoinedMember>,
        ctx: &mut Ctx<'_>,
    ) {
        self.members[idx].refresh(ctx.now_ms);
        let leader = self.leader.clone().unwrap_or_default();
        let response = self.join_ok(&self.members[idx].id, members, leader, false);
        ctx.join_done(token, response);
    }

    pub(super) fn add_member(
        &mut self,
        token: u64,
        req: &JoinRequest,
        id: String,
        ctx: &mut Ctx<'_>,
    ) {
        let mut member = Member {
            id: id.clone(),
            instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(token),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline_ms: 0,
        };
        member.refresh(ctx.now_ms);
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if matches!(self.join_timer, Some(JoinTimer::Initial { .. })) {
            self.new_member_added = true;
        }
        tracing::info!(group = %self.id, member = %id, instance = ?member.instance_id, "member added");
        self.members.push(member);
        self.rebalance_or_complete(ctx, "member added");
    }

    pub(super) fn update_member(
        &mut self,
        idx: usize,
        token: u64,
        req: &JoinRequest,
        ctx: &mut Ctx<'_>,
    ) {
        self.members[idx].update(token, req, ctx);
        self.rebalance_or_complete(ctx, "member rejoined");
    }

    /// A static member rejoined with an empty member id (e.g. after a restart): it replaces
    /// the old member id, which is fenced from now on, and keeps its assignment.
    pub(super) fn replace_static_member(
        &mut self,
        token: u64,
        req: &JoinRequest,
        old_id: &str,
        new_id: String,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), i16> {
        let idx = self.index_of(old_id).ok_or(UNKNOWN_MEMBER_ID)?;
        let previous_leader = self.leader.clone().unwrap_or_default();
        tracing::info!(group = %self.id, old = %old_id, new = %new_id, instance = ?req.group_instance_id, "static member replaced");
        let member = &mut self.members[idx];
        if let Some(t) = member.awaiting_join.take() {
            ctx.join_done(
                t,
                JoinResponse::error(FENCED_INSTANCE_ID, old_id.to_string()),
            );
        }
        if let Some(t) = member.awaiting_sync.take() {
            ctx.sync_done(t, SyncResponse::error(FENCED_INSTANCE_ID));
        }
        member.id = new_id.clone();
        member.update(token, req, ctx);
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        match self.state {
            GroupState::Stable => {
                if self.select_protocol() == self.protocol_name {
                    // Nothing the assignment depends on changed: no rebalance.
                    let token = self.members[idx].awaiting_join.take().unwrap_or(token);
                    let response = if req.supports_skip_assignment && self.is_leader(&new_id) {
                        // KIP-814: the leader learns it leads, but must not reassign.
                        let members = self.current_member_metadata();
                        self.join_ok(&new_id, members, new_id.clone(), true)
                    } else {
                        // Older clients get the previous leader id, so a restarted leader does
                        // not compute an assignment a Stable group would ignore.
                        self.join_ok(&new_id, Vec::new(), previous_leader, false)
                    };
                    ctx.join_done(token, response);
                } else {
                    self.prepare_rebalance(ctx, "static member changed the selected protocol");
                }
            }
            // The leader may be assigning with the old member id: redo the rebalance.
            GroupState::CompletingRebalance => {
                self.prepare_rebalance(ctx, "static member replaced while completing")
            }
            GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {
                self.rebalance_or_complete(ctx, "static member replaced")
            }
        }
        Ok(())
    }

    // ---- rebalance ----

    pub(super) fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable
        )
    }

    pub(super) fn rebalance_or_complete(&mut self, ctx: &mut Ctx<'_>, reason: &str) {
        if self.can_rebalance() {
            self.prepare_rebalance(ctx, reason);
        } else {
            self.maybe_complete_join(ctx);
        }
    }

    pub(super) fn prepare_rebalance(&mut self, ctx: &mut Ctx<'_>, reason: &str) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_assignments(REBALANCE_IN_PROGRESS, ctx);
        }
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        let initial = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        tracing::info!(group = %self.id, generation = self.generation, reason, "preparing to rebalance");
        let rebalance_timeout = self.rebalance_timeout_ms();
        if initial {
            let delay = ctx.initial_delay_ms;
            self.new_member_added = false;
            self.join_timer = Some(JoinTimer::Initial {
                deadline_ms: ctx.after(delay),
                delay_ms: delay,
                remaining_ms: (rebalance_timeout - delay).max(0),
            });
        } else {
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline_ms: ctx.after(rebalance_timeout),
            });
            self.maybe_complete_join(ctx);
        }
    }

    /// Clears every assignment and fails the held syncs with `error`.
    pub(super) fn reset_assignments(&mut self, error: i16, ctx: &mut Ctx<'_>) {
        for m in &mut self.members {
            m.assignment = Bytes::new();
            if let Some(t) = m.awaiting_sync.take() {
                ctx.sync_done(t, SyncResponse::error(error));
            }
        }
    }

    /// Completes the join phase if everyone has rejoined (never during the initial delay).
    pub(super) fn maybe_complete_join(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::PreparingRebalance
            && !matches!(self.join_timer, Some(JoinTimer::Initial { .. }))
            && self.has_all_joined()
        {
            self.complete_join(ctx);
        }
    }

    /// The leader must be a member that rejoined; false if none did.
    pub(super) fn elect_joined_leader(&mut self) -> bool {
        if let Some(leader) = self.leader.as_deref() {
            if self
                .members
                .iter()
                .any(|m| m.id == leader && m.awaiting_join.is_some())
            {
                return true;
            }
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    pub(super) fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        // Dynamic members that did not rejoin in time are gone; static ones keep their place
        // until their session expires.
        let missing: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            tracing::info!(group = %self.id, member = %id, "member removed: did not rejoin in time");
            self.remove_member(&id, ctx);
        }
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Only static members that have not rejoined are left: wait for them (or for their
            // sessions to expire) for another rebalance timeout.
            tracing::warn!(group = %self.id, "no member rejoined; waiting another rebalance timeout");
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline_ms: ctx.after(self.rebalance_timeout_ms()),
            });
            return;
        }
        self.join_timer = None;
        self.new_member_added = false;
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = GroupState::Empty;
            tracing::info!(group = %self.id, generation = self.generation, "group is now empty");
            return;
        }
        self.protocol_name = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            protocol = ?self.protocol_name,
            members = self.members.len(),
            "join phase complete"
        );
        let leader = self.leader.clone().unwrap_or_default();
        let all = self.current_member_metadata();
        let mut responses = Vec::new();
        for m in &self.members {
            if let Some(t) = m.awaiting_join {
                let members = if m.id == leader {
                    all.clone()
                } else {
                    Vec::new()
                };
                responses.push((t, self.join_ok(&m.id, members, leader.clone(), false)));
            }
        }
        for (token, response) in responses {
            ctx.join_done(token, response);
        }
        let now = ctx.now_ms;
        for m in &mut self.members {
            m.awaiting_join = None;
            m.is_new = false;
            m.refresh(now);
            self.pending_sync.insert(m.id.clone());
        }
        self.sync_deadline_ms = Some(ctx.after(self.rebalance_timeout_ms()));
    }

    /// Removes a member, failing its held requests with UNKNOWN_MEMBER_ID; the leader passes
    /// to the earliest remaining member.
    pub(super) fn remove_member(&mut self, member_id: &str, ctx: &mut Ctx<'_>) {
        let Some(idx) = self.index_of(member_id) else {
            return;
        };
        let member = self.members.remove(idx);
        if let Some(t) = member.awaiting_join {
            ctx.join_done(t, JoinResponse::error(UNKNOWN_MEMBER_ID, String::new()));
        }
        if let Some(t) = member.awaiting_sync {
            ctx.sync_done(t, SyncResponse::error(UNKNOWN_MEMBER_ID));
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
    }

    /// Removes a member and moves the group on: a rebalance, or the end of the current one.
    pub(super) fn remove_member_and_rebalance(
        &mut self,
        member_id: &str,
        ctx: &mut Ctx<'_>,
        reason: &str,
    ) {
        self.remove_member(member_id, ctx);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(ctx, reason)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(ctx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}
