//! The health model: turns the observed cluster (partition leaders, replicas and ISR with each
//! topic's `min.insync.replicas`; consumer-group committed offsets and log end offsets, with a
//! short history kept in memory) into facts that the rolling gate, the blue-green verification,
//! `status.health` and the Prometheus exporter all read. Pure: plain inputs converted by the
//! caller, no I/O, no async, no clock (times are arguments), never a kube or Kafka call.

pub mod groups;
pub mod partitions;
pub mod requests;

pub use groups::{
    lagging_groups, GroupHealth, GroupStatus, GroupTracker, GroupTrackerConfig, OffsetSample,
    PartitionHealth, PartitionStatus, PolledGroups,
};
pub use partitions::{
    assess, brokers_safe_to_stop, brokers_share_partition, classify, disjoint_broker_groups,
    summarize, under_replicated_elsewhere, would_drop_below_min_isr, would_set_drop_below_min_isr,
    BrokerId, HealthSummary, IsrShortfall, MinIsr, PartitionFact, PartitionReplicas,
    PartitionState, NO_LEADER,
};
