//! The quorum's state as Kafka's DescribeQuorum reports it, read from this node's Raft metrics
//! and the activity its network recorded: leader, term, high watermark and each voter's log end
//! and fetch times. Offsets are Kafka-style (one past the last entry). Read-only; this module
//! never changes the quorum.

use std::collections::BTreeMap;

use openraft::{BasicNode, RaftMetrics};

use super::activity::Activity;
use super::NodeId;

/// One replica of the metadata log, as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaProgress {
    /// The node id.
    pub id: NodeId,
    /// One past the last log entry the replica holds (as far as this node knows); -1 when
    /// unknown.
    pub log_end_offset: i64,
    /// When the replica last fetched from (answered) the leader, ms since the epoch.
    pub last_fetch_ms: Option<i64>,
    /// When the replica last held the leader's whole log, ms since the epoch.
    pub last_caught_up_ms: Option<i64>,
}

/// The quorum as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// The node describing.
    pub node_id: NodeId,
    /// The current leader, when known.
    pub leader_id: Option<NodeId>,
    /// The Raft term (Kafka's leader epoch).
    pub term: u64,
    /// One past the last applied (hence committed) entry.
    pub high_watermark: i64,
    /// Whether this node leads: only then are other voters' offsets and times known.
    pub is_leader: bool,
    /// The voters, in id order.
    pub voters: Vec<ReplicaProgress>,
    /// The learners of the membership (controllers being added as voters), in id order.
    pub learners: Vec<ReplicaProgress>,
}

/// Index of a log entry → Kafka offset one past it.
fn end_offset(index: Option<u64>) -> i64 {
    index.map_or(0, |i| {
        i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1)
    })
}

/// Builds the description from this node's metrics, the voters' activity in the current term
/// (only meaningful on the leader) and the wall clock `now_ms`.
pub(super) fn describe(
    metrics: &RaftMetrics<NodeId, BasicNode>,
    activity: &BTreeMap<NodeId, Activity>,
    now_ms: i64,
) -> QuorumDescription {
    let me = metrics.id;
    let is_leader = metrics.current_leader == Some(me);
    let own_end = end_offset(metrics.last_log_index);
    let progress = |id: NodeId| {
        if id == me {
            let now = is_leader.then_some(now_ms);
            return ReplicaProgress {
                id,
                log_end_offset: own_end,
                last_fetch_ms: now,
                last_caught_up_ms: now,
            };
        }
        let matched = metrics
            .replication
            .as_ref()
            .filter(|_| is_leader)
            .and_then(|r| r.get(&id).copied());
        let a = activity
            .get(&id)
            .filter(|_| is_leader)
            .copied()
            .unwrap_or_default();
        ReplicaProgress {
            id,
            log_end_offset: match matched {
                Some(Some(log_id)) => end_offset(Some(log_id.index)),
                _ => -1,
            },
            last_fetch_ms: a.last_fetch_ms,
            last_caught_up_ms: a.last_caught_up_ms,
        }
    };
    let membership = metrics.membership_config.membership();
    let voters = membership.voter_ids().map(progress).collect();
    let learners = membership.learner_ids().map(progress).collect();
    QuorumDescription {
        node_id: me,
        leader_id: metrics.current_leader,
        term: metrics.current_term,
        high_watermark: end_offset(metrics.last_applied.map(|l| l.index)),
        is_leader,
        voters,
        learners,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use openraft::{CommittedLeaderId, LogId, Membership, RaftMetrics, StoredMembership};

    use super::*;

    fn log_id(index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(3, 1), index)
    }

    fn metrics(me: NodeId, leader: NodeId) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(me);
        let voters: BTreeSet<NodeId> = [1, 2, 3].into_iter().collect();
        let membership = Membership::new(vec![voters], None);
        m.membership_config = Arc::new(StoredMembership::new(Some(log_id(0)), membership));
        m.current_term = 3;
        m.current_leader = Some(leader);
        m.last_log_index = Some(41);
        m.last_applied = Some(log_id(40));
        m
    }

    #[test]
    fn the_leader_knows_every_voter() {
        let mut m = metrics(1, 1);
        let replication: BTreeMap<NodeId, Option<LogId<NodeId>>> =
            [(1, Some(log_id(41))), (2, Some(log_id(41))), (3, None)]
                .into_iter()
                .collect();
        m.replication = Some(replication);
        let activity: BTreeMap<NodeId, Activity> = [(
            2,
            Activity {
                term: 3,
                last_fetch_ms: Some(900),
                last_caught_up_ms: Some(890),
            },
        )]
        .into_iter()
        .collect();
        let d = describe(&m, &activity, 1000);
        assert!(d.is_leader);
        assert_eq!(d.leader_id, Some(1));
        assert_eq!(d.term, 3);
        assert_eq!(d.high_watermark, 41);
        let ends: Vec<(NodeId, i64)> = d.voters.iter().map(|v| (v.id, v.log_end_offset)).collect();
        assert_eq!(ends, vec![(1, 42), (2, 42), (3, -1)]);
        assert_eq!(d.voters[0].last_caught_up_ms, Some(1000));
        assert_eq!(d.voters[1].last_fetch_ms, Some(900));
        assert_eq!(d.voters[1].last_caught_up_ms, Some(890));
        assert_eq!(d.voters[2].last_fetch_ms, None);
    }

    #[test]
    fn a_follower_knows_only_itself() {
        let m = metrics(2, 1);
        let d = describe(&m, &BTreeMap::new(), 1000);
        assert!(!d.is_leader);
        assert_eq!(d.leader_id, Some(1));
        let mine = d.voters.iter().find(|v| v.id == 2).unwrap();
        assert_eq!(mine.log_end_offset, 42);
        assert_eq!(mine.last_fetch_ms, None);
        assert!(d
            .voters
            .iter()
            .filter(|v| v.id != 2)
            .all(|v| v.log_end_offset == -1));
    }
}
