//! What the leader saw of each voter's replication: when the voter last answered an
//! AppendEntries (Kafka's last fetch) and when it last held every entry the leader had when the
//! request left (Kafka's last caught-up time), both in wall-clock milliseconds and per term, so a
//! new leader starts from "unknown" as Kafka's does. This module only records; it never decides.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::{BasicNode, RaftMetrics};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::NodeId;

/// Milliseconds since the Unix epoch.
pub(super) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One voter's replication activity towards the leader of `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Activity {
    /// The leader term these times belong to.
    pub term: u64,
    /// When the voter last answered an AppendEntries (ms since the epoch).
    pub last_fetch_ms: Option<i64>,
    /// When the voter last held the leader's whole log (ms since the epoch).
    pub last_caught_up_ms: Option<i64>,
}

/// Per-voter activity, written by the Raft network as replies arrive.
#[derive(Default)]
pub(crate) struct PeerActivity {
    /// The local node's metrics, for the leader's last log index at send time (set once the
    /// Raft node exists).
    metrics: OnceLock<watch::Receiver<RaftMetrics<NodeId, BasicNode>>>,
    peers: Mutex<BTreeMap<NodeId, Activity>>,
}

impl PeerActivity {
    /// Lets the network read the leader's own log end.
    pub(super) fn attach(&self, metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>) {
        let _ = self.metrics.set(metrics);
    }

    /// The local log's last index, when known.
    pub(super) fn local_last_index(&self) -> Option<u64> {
        self.metrics.get().and_then(|m| m.borrow().last_log_index)
    }

    /// Records a reply of `peer` to an AppendEntries of `term` sent at `sent_ms`: it answered
    /// (a fetch) and, when `caught_up`, held the leader's whole log as of the send.
    pub(super) fn record(&self, peer: NodeId, term: u64, sent_ms: i64, caught_up: bool) {
        let now = wall_ms();
        let mut peers = self.peers.lock();
        let entry = peers.entry(peer).or_default();
        if entry.term != term {
            *entry = Activity {
                term,
                ..Activity::default()
            };
        }
        entry.last_fetch_ms = Some(entry.last_fetch_ms.map_or(now, |t| t.max(now)));
        if caught_up {
            entry.last_caught_up_ms =
                Some(entry.last_caught_up_ms.map_or(sent_ms, |t| t.max(sent_ms)));
        }
    }

    /// The activity of every voter heard from in `term`.
    pub(super) fn in_term(&self, term: u64) -> BTreeMap<NodeId, Activity> {
        self.peers
            .lock()
            .iter()
            .filter(|(_, a)| a.term == term)
            .map(|(id, a)| (*id, *a))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_term_forgets_the_old_times() {
        let a = PeerActivity::default();
        a.record(2, 5, 100, true);
        let t5 = a.in_term(5);
        assert_eq!(t5[&2].last_caught_up_ms, Some(100));
        assert!(t5[&2].last_fetch_ms.is_some());
        a.record(2, 6, 200, false);
        assert!(a.in_term(5).is_empty());
        let t6 = a.in_term(6);
        assert_eq!(t6[&2].last_caught_up_ms, None);
        assert!(t6[&2].last_fetch_ms.is_some());
        // Times never go back.
        a.record(2, 6, 300, true);
        a.record(2, 6, 250, true);
        assert_eq!(a.in_term(6)[&2].last_caught_up_ms, Some(300));
    }
}
