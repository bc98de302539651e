//! Gauges of the metadata quorum (controller role, leader, term, applied index) and of the
//! controller's view of brokers.

use prometheus::{IntGauge, Registry};

/// Gauges of one controller node.
#[derive(Clone)]
pub struct QuorumMetrics {
    /// 0 follower (or learner), 1 candidate, 2 leader.
    pub role: IntGauge,
    /// Id of the current controller leader, -1 when none is known.
    pub leader_id: IntGauge,
    /// Current Raft term.
    pub term: IntGauge,
    /// Index of the last applied metadata log entry.
    pub applied_index: IntGauge,
    /// Registered brokers that are fenced.
    pub fenced_brokers: IntGauge,
}

impl QuorumMetrics {
    /// Creates and registers the quorum gauges.
    pub(super) fn register(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Self {
            role: gauge(
                "samsa_quorum_role",
                "Role of this node in the metadata quorum: 0 follower, 1 candidate, 2 leader",
            )?,
            leader_id: gauge(
                "samsa_quorum_leader_id",
                "Id of the current controller leader, -1 when none is known",
            )?,
            term: gauge(
                "samsa_quorum_term",
                "Current Raft term of the metadata quorum",
            )?,
            applied_index: gauge(
                "samsa_quorum_applied_index",
                "Index of the last applied metadata log entry",
            )?,
            fenced_brokers: gauge(
                "samsa_controller_fenced_brokers",
                "Registered brokers that are fenced",
            )?,
        })
    }
}
