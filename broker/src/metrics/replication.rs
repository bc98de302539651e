//! Replication gauges: broker totals of under-replicated, under-min-ISR, offline and led
//! partitions. The per-partition ones (ISR size, replicas, high watermark, follower lag) are
//! in [`super::PartitionGauges`].

use prometheus::{IntGauge, Registry};

/// Broker-wide replication gauges, refreshed by the replica manager.
#[derive(Clone)]
pub struct ReplicationMetrics {
    /// Partitions this broker leads whose ISR is smaller than their replica set.
    pub under_replicated: IntGauge,
    /// Partitions this broker leads whose ISR is smaller than min.insync.replicas.
    pub under_min_isr: IntGauge,
    /// Partitions of the cluster without a leader (from the metadata this broker has).
    pub offline: IntGauge,
    /// Partitions this broker leads.
    pub leaders: IntGauge,
}

impl ReplicationMetrics {
    /// Registers the gauges.
    pub fn register(registry: &Registry) -> prometheus::Result<ReplicationMetrics> {
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(ReplicationMetrics {
            under_replicated: gauge(
                "samsa_under_replicated_partitions",
                "Partitions led by this broker whose ISR is smaller than their replica set",
            )?,
            under_min_isr: gauge(
                "samsa_under_min_isr_partitions",
                "Partitions led by this broker whose ISR is smaller than min.insync.replicas",
            )?,
            offline: gauge(
                "samsa_offline_partitions",
                "Partitions of the cluster that have no leader, as this broker's metadata says",
            )?,
            leaders: gauge("samsa_leader_partitions", "Partitions led by this broker")?,
        })
    }
}
