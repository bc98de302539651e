//! Who the controller quorum's voters are once it exists: openraft's membership (each node's
//! controller address in its `BasicNode`), changed one voter at a time on the leader (Kafka's
//! AddRaftVoter / RemoveRaftVoter, KIP-853): a new voter joins as a learner, and is made a
//! voter once it holds the leader's log; a removed voter leaves the membership. The static
//! `--controller-quorum-voters` only bootstrap a new quorum and name whom to contact first.
//!
//! This module never decides a Kafka error code (the front end maps [`VoterChangeError`]) and
//! never changes the membership except through the leader's Raft node.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, RaftMetrics};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{NodeId, Shared, Voters};

/// One change of the voter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoterChange {
    /// Add voter `id`, whose controller listens at `address` (host:port).
    Add {
        /// The new voter.
        id: NodeId,
        /// Its controller address.
        address: String,
    },
    /// Add `id`, whose controller listens at `address`, as a learner: it follows the log
    /// without a vote. Nothing happens when it is a member already.
    AddLearner {
        /// The node.
        id: NodeId,
        /// Its controller address.
        address: String,
    },
    /// Remove voter `id`: it stays a learner, following the log (a broker keeps its metadata).
    /// A learner named here leaves the membership altogether.
    Remove {
        /// The voter to remove.
        id: NodeId,
    },
}

/// Why a voter change was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum VoterChangeError {
    /// The node to add is a voter already.
    #[error("node {id} is already a voter (voters: {voters})")]
    DuplicateVoter {
        /// The node.
        id: NodeId,
        /// The current voters.
        voters: String,
    },
    /// The node to remove is not a voter.
    #[error("node {id} is not a voter (voters: {voters})")]
    VoterNotFound {
        /// The node.
        id: NodeId,
        /// The current voters.
        voters: String,
    },
    /// The node to remove is the only voter: the quorum would have none.
    #[error("node {id} is the only voter: the quorum cannot lose its last voter")]
    LastVoter {
        /// The node.
        id: NodeId,
    },
    /// Another change is in progress or not committed yet: retry later.
    #[error("a previous voter change is still in progress: {0}")]
    Pending(String),
    /// The change did not finish within the request's time (it may still complete).
    #[error("timed out: {0}")]
    TimedOut(String),
    /// This controller does not lead the quorum (`leader`: the one it knows).
    #[error("not the controller quorum's leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, when known.
        leader: Option<NodeId>,
    },
    /// The request itself is wrong (bad address, a node answering with another id).
    #[error("invalid voter change: {0}")]
    Invalid(String),
    /// The quorum failed otherwise.
    #[error("voter change failed: {0}")]
    Failed(String),
}

/// The voters of a membership, with their addresses as `id@host:port,...`.
pub(super) fn voters_of(metrics: &RaftMetrics<NodeId, BasicNode>) -> Voters {
    let m = metrics.membership_config.membership();
    Voters(
        m.voter_ids()
            .map(|id| {
                let addr = m.get_node(&id).map(|n| n.addr.clone()).unwrap_or_default();
                (id, addr)
            })
            .collect(),
    )
}

/// The learners (non-voting members) of a membership.
pub(super) fn learners_of(metrics: &RaftMetrics<NodeId, BasicNode>) -> Vec<NodeId> {
    metrics
        .membership_config
        .membership()
        .learner_ids()
        .collect()
}

/// The version of a membership: the log index of its entry (0 before any).
pub(super) fn version_of(metrics: &RaftMetrics<NodeId, BasicNode>) -> u64 {
    metrics
        .membership_config
        .log_id()
        .as_ref()
        .map_or(0, |l| l.index)
}

/// What one change makes of the voter set, before anything is written: the checks a leader
/// runs on its committed membership. Pure, for unit tests.
pub(super) fn check_change(
    voters: &BTreeSet<NodeId>,
    learners: &BTreeSet<NodeId>,
    change: &VoterChange,
) -> Result<(), VoterChangeError> {
    let list = || {
        voters
            .iter()
            .map(NodeId::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    match change {
        VoterChange::Add { id, address } => {
            if voters.contains(id) {
                return Err(VoterChangeError::DuplicateVoter {
                    id: *id,
                    voters: list(),
                });
            }
            check_address(address)
        }
        VoterChange::AddLearner { address, .. } => check_address(address),
        VoterChange::Remove { id } if learners.contains(id) => Ok(()),
        VoterChange::Remove { id } => {
            if !voters.contains(id) {
                return Err(VoterChangeError::VoterNotFound {
                    id: *id,
                    voters: list(),
                });
            }
            if voters.len() == 1 {
                return Err(VoterChangeError::LastVoter { id: *id });
            }
            Ok(())
        }
    }
}

/// A controller address must be host:port with a non-zero port.
fn check_address(address: &str) -> Result<(), VoterChangeError> {
    let ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(VoterChangeError::Invalid(format!(
            "controller address {address:?} is not HOST:PORT"
        )))
    }
}

impl Shared {
    /// The controller address of node `id`: from the Raft membership, else the bootstrap list.
    pub(super) fn address(&self, id: NodeId) -> Option<String> {
        let from_membership = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone());
        from_membership.or_else(|| self.voters.address(id).map(str::to_string))
    }

    /// The current voters (from the membership once there is one, else the bootstrap list)
    /// and the membership's version.
    pub(super) fn current_voters(&self) -> (Voters, u64) {
        let metrics = self.raft.metrics().borrow().clone();
        let voters = voters_of(&metrics);
        if voters.0.is_empty() {
            (self.voters.clone(), 0)
        } else {
            (voters, version_of(&metrics))
        }
    }

    /// Makes `change` on this node, which must lead the quorum, within `timeout`. One voter
    /// change at a time: one while another runs is refused as [`VoterChangeError::Pending`]
    /// (Kafka answers it REQUEST_TIMED_OUT); a learner joining meanwhile, or a membership not
    /// committed yet, is waited for (within `timeout`).
    pub(super) async fn change_voters(
        &self,
        change: VoterChange,
        timeout: Duration,
    ) -> Result<(), VoterChangeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.check_leading()?;
        let _one_voter_change = match &change {
            VoterChange::AddLearner { .. } => None,
            _ => match self.voter_change.try_lock() {
                Ok(guard) => Some(guard),
                Err(_) => {
                    return Err(VoterChangeError::Pending(
                        "another voter change is running".into(),
                    ))
                }
            },
        };
        let busy = || VoterChangeError::TimedOut("the membership stayed busy".into());
        let _one_write = tokio::time::timeout_at(deadline, self.membership_write.lock())
            .await
            .map_err(|_| busy())?;
        let mut watch = self.raft.metrics();
        let settled = tokio::time::timeout_at(
            deadline,
            watch.wait_for(|m| {
                let at = m.membership_config.log_id().map(|l| l.index);
                m.membership_config.membership().get_joint_config().len() == 1
                    && at <= m.last_applied.map(|l| l.index)
            }),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if !settled {
            return Err(VoterChangeError::Pending(
                "the last membership change is not committed yet".into(),
            ));
        }
        self.check_leading()?;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
        check_change(&voters, &learners, &change)?;
        match change {
            VoterChange::Add { id, address } => self.add_voter(id, address, deadline).await,
            VoterChange::AddLearner { id, .. }
                if voters.contains(&id) || learners.contains(&id) =>
            {
                Ok(())
            }
            VoterChange::AddLearner { id, address } => {
                self.check_identity(id, &address, deadline).await?;
                tracing::info!(node = id, %address, "a controller joins the quorum as a learner");
                let node = BasicNode::new(address);
                tokio::time::timeout_at(deadline, self.raft.add_learner(id, node, false))
                    .await
                    .map_err(|_| {
                        VoterChangeError::TimedOut(format!("learner {id} not added in time"))
                    })?
                    .map_err(write_error)
                    .map(|_| ())
            }
            VoterChange::Remove { id } if learners.contains(&id) => {
                let change = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
                self.write_membership(change, false, deadline).await
            }
            VoterChange::Remove { id } => {
                // A removed follower stays a learner: its broker keeps following the metadata.
                // openraft lets a leader lead as a learner, so a leader removing itself leaves
                // the membership altogether, which makes it step down once that is committed;
                // it then asks the next leader to take it back as a learner (join_as_learner).
                let retain = id != self.id;
                let change = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
                self.write_membership(change, retain, deadline).await
            }
        }
    }

    /// Adds `id` as a learner at `address`, waits until it holds the leader's log, then makes
    /// it a voter. A learner that does not catch up in time is removed again.
    async fn add_voter(
        &self,
        id: NodeId,
        address: String,
        deadline: tokio::time::Instant,
    ) -> Result<(), VoterChangeError> {
        self.check_identity(id, &address, deadline).await?;
        tracing::info!(node = id, %address, "adding a controller as a learner");
        let added = tokio::time::timeout_at(
            deadline,
            self.raft
                .add_learner(id, BasicNode::new(address.clone()), false),
        )
        .await
        .map_err(|_| VoterChangeError::TimedOut(format!("learner {id} not added in time")))?
        .map_err(write_error)?;
        let target = added.log_id.index;
        let mut metrics = self.raft.metrics();
        let caught_up = tokio::time::timeout_at(
            deadline,
            metrics.wait_for(|m| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&id))
                    .is_some_and(|matched| matched.is_some_and(|l| l.index >= target))
            }),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if !caught_up {
            tracing::info!(
                node = id,
                "the learner did not catch up in time: removing it"
            );
            let remove = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
            let grace = tokio::time::Instant::now() + Duration::from_secs(2);
            if let Err(e) = self.write_membership(remove, false, grace).await {
                tracing::warn!(node = id, "removing the lagging learner: {e}");
            }
            return Err(VoterChangeError::TimedOut(format!(
                "new voter {id} did not catch up with the leader's log in time"
            )));
        }
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.write_membership(change, false, deadline).await
    }

    /// This node leads, and as a voter: a leader that removed itself leads on until the change
    /// is committed and then steps down, and openraft must not be asked for a membership change
    /// in between.
    fn check_leading(&self) -> Result<(), VoterChangeError> {
        let (leader, voter) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == self.id);
            (m.current_leader, voter)
        };
        if leader == Some(self.id) && voter {
            return Ok(());
        }
        Err(VoterChangeError::NotLeader {
            leader: leader.filter(|l| *l != self.id),
        })
    }

    /// Checks that the controller at `address` answers and is node `id`.
    async fn check_identity(
        &self,
        id: NodeId,
        address: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(), VoterChangeError> {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match super::client::node_id_at(address, self.tls.as_ref(), left).await {
            Ok(answered) if answered == id => Ok(()),
            Ok(other) => Err(VoterChangeError::Invalid(format!(
                "the controller at {address} is node {other}, not {id}"
            ))),
            Err(e) => Err(VoterChangeError::TimedOut(format!(
                "new voter {id} at {address} is not ready to receive requests: {e}"
            ))),
        }
    }

    async fn write_membership(
        &self,
        change: ChangeMembers<NodeId, BasicNode>,
        retain: bool,
        deadline: tokio::time::Instant,
    ) -> Result<(), VoterChangeError> {
        match tokio::time::timeout_at(deadline, self.raft.change_membership(change, retain)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(write_error(e)),
            Err(_) => Err(VoterChangeError::TimedOut(
                "the membership change was not committed in time".into(),
            )),
        }
    }
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> VoterChangeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => VoterChangeError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(p),
        )) => VoterChangeError::Pending(p.to_string()),
        other => VoterChangeError::Failed(other.to_string()),
    }
}

/// Keeps this controller a member of the quorum: while its membership does not name it (a
/// controller outside the bootstrap voters, or one removed altogether and restarted), it asks
/// the leader to add it as a learner at `address`, so that it follows the metadata log (Kafka's
/// observers do the same) and can be made a voter quickly. A bootstrap voter waits for the
/// quorum to be initialized instead.
pub(super) async fn join_as_learner(
    shared: Arc<Shared>,
    address: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let me = shared.id;
    let mut client = super::ControllerClient::new(shared.voters.clone(), JOIN_TIMEOUT)
        .with_tls(shared.tls.clone());
    let mut metrics = shared.raft.metrics();
    let mut last_said: Option<String> = None;
    loop {
        let wants_to_join = {
            let m = metrics.borrow_and_update();
            let membership = m.membership_config.membership();
            let member = membership.get_node(&me).is_some();
            let empty = membership.voter_ids().next().is_none();
            // An uninitialized bootstrap voter is made a member by the initializer.
            let awaits_initialization = empty && shared.voters.contains(me);
            !(member || awaits_initialization)
        };
        if wants_to_join {
            let change = VoterChange::AddLearner {
                id: me,
                address: address.clone(),
            };
            let outcome = client.change_voters(&change, JOIN_TIMEOUT).await;
            // Said once at info while the answer stays the same; retries go to debug.
            let said = format!("{outcome:?}");
            if last_said.as_deref() == Some(said.as_str()) {
                tracing::debug!(
                    node = me,
                    "joining the controller quorum as a learner: {said}"
                );
            } else {
                log_join(me, &address, &outcome);
                last_said = Some(said);
            }
            // The leader's log reaches this node soon after; ask again if it does not.
            let _ = tokio::time::timeout(JOIN_RETRY, shutdown.wait_for(|stop| *stop)).await;
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

fn log_join(me: NodeId, address: &str, outcome: &Result<(), VoterChangeError>) {
    match outcome {
        Ok(()) => {
            tracing::info!(node = me, %address, "asked to follow the controller quorum as a learner")
        }
        Err(e) => tracing::info!(node = me, "joining the controller quorum as a learner: {e}"),
    }
}

/// How long one request to join as a learner may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between two requests to join as a learner.
const JOIN_RETRY: Duration = Duration::from_secs(1);

/// Logs every change of this node's membership at info, with the old and the new voters and
/// learners, until `shutdown`.
pub(super) async fn log_changes(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut metrics = shared.raft.metrics();
    let mut seen: Option<(Voters, Vec<NodeId>)> = None;
    loop {
        let (version, voters, learners) = {
            let m = metrics.borrow_and_update();
            (version_of(&m), voters_of(&m), learners_of(&m))
        };
        let me = shared.id;
        match &seen {
            None if voters.0.is_empty() => {}
            None => tracing::info!(node = me, index = version, voters = %voters,
                learners = ?learners, "controller quorum membership"),
            Some((old_voters, old_learners))
                if *old_voters != voters || *old_learners != learners =>
            {
                tracing::info!(
                    node = me,
                    index = version,
                    old_voters = %old_voters,
                    new_voters = %voters,
                    old_learners = ?old_learners,
                    new_learners = ?learners,
                    voter = voters.contains(me),
                    "controller quorum membership changed"
                );
            }
            Some(_) => {}
        }
        seen = Some((voters, learners));
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn add(id: NodeId, address: &str) -> VoterChange {
        VoterChange::Add {
            id,
            address: address.into(),
        }
    }

    #[test]
    fn a_voter_is_added_once_at_a_real_address() {
        assert_eq!(
            check_change(&set(&[1, 2, 3]), &set(&[]), &add(4, "c4:9093")),
            Ok(())
        );
        assert!(matches!(
            check_change(&set(&[1, 2, 3]), &set(&[]), &add(2, "c2:9093")),
            Err(VoterChangeError::DuplicateVoter { id: 2, .. })
        ));
        for bad in ["", "c4", "c4:0", ":9093", "c4:99999"] {
            assert!(
                matches!(
                    check_change(&set(&[1]), &set(&[]), &add(4, bad)),
                    Err(VoterChangeError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_a_voter_is_removed_and_never_the_last() {
        assert_eq!(
            check_change(&set(&[1, 2]), &set(&[]), &VoterChange::Remove { id: 1 }),
            Ok(())
        );
        assert!(matches!(
            check_change(&set(&[1, 2]), &set(&[]), &VoterChange::Remove { id: 7 }),
            Err(VoterChangeError::VoterNotFound { id: 7, .. })
        ));
        assert_eq!(
            check_change(&set(&[5]), &set(&[]), &VoterChange::Remove { id: 5 }),
            Err(VoterChangeError::LastVoter { id: 5 })
        );
    }

    #[test]
    fn a_learner_is_removed_and_joins_without_checks() {
        let learner = VoterChange::Remove { id: 3 };
        assert_eq!(check_change(&set(&[1]), &set(&[3]), &learner), Ok(()));
        let join = VoterChange::AddLearner {
            id: 1,
            address: "c1:9093".into(),
        };
        assert_eq!(check_change(&set(&[1]), &set(&[]), &join), Ok(()));
    }

    #[test]
    fn errors_travel_as_json() {
        let e = VoterChangeError::NotLeader { leader: Some(4) };
        let back: VoterChangeError =
            serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
