//! Replication gauges: broker totals of under-replicated, under-min-ISR, offline and led
//! partitions. The cluster-wide ones (offline partitions, and the per-partition leader) are
//! reported by one broker, the lowest-id unfenced one, so that they neither repeat nor add up
//! to more than the cluster has. The per-partition ones (ISR size, replicas, high watermark, follower lag) are
//! in [`super::PartitionGauges`]. Also the replication throttles (Kafka's replication quotas):
//! bytes counted against them, their measured rate and their configured bound, per side
//! (`leader`, `follower`).

use prometheus::{GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Broker-wide replication gauges, refreshed by the replica manager.
#[derive(Clone)]
pub struct ReplicationMetrics {
    /// Partitions this broker leads whose ISR is smaller than their replica set.
    pub under_replicated: IntGauge,
    /// Partitions this broker leads whose ISR is smaller than min.insync.replicas.
    pub under_min_isr: IntGauge,
    /// Partitions of the cluster without a leader (from the metadata this broker has), on the
    /// reporting broker only (the lowest-id unfenced broker; 0 on the others), so that the sum
    /// over the brokers is the cluster's count.
    pub offline: IntGauge,
    /// Partitions this broker leads.
    pub leaders: IntGauge,
    /// Replication bytes of throttled replicas, per side (`leader`: served, `follower`:
    /// fetched), in sync or not: what the throttle measures.
    pub throttled_bytes: IntCounterVec,
    /// The rate the throttle measures, bytes/s, per side (as of the last byte counted).
    pub throttled_rate: GaugeVec,
    /// The configured bound per side, bytes/s (i64::MAX: unlimited).
    pub throttle_limit: IntGaugeVec,
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
                "Partitions of the cluster that have no leader, reported by one broker only (the \
                 lowest-id unfenced one in the metadata; 0 on the others): summed over the \
                 brokers, the cluster's count",
            )?,
            leaders: gauge("samsa_leader_partitions", "Partitions led by this broker")?,
            throttled_bytes: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "samsa_replication_throttled_bytes_total",
                        "Replication bytes of throttled replicas (leader: served, follower: fetched)",
                    ),
                    &["side"],
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            throttled_rate: {
                let g = GaugeVec::new(
                    Opts::new(
                        "samsa_replication_throttled_rate_bytes",
                        "Replication rate of throttled replicas as the throttle measures it, bytes/s",
                    ),
                    &["side"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            throttle_limit: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "samsa_replication_throttle_limit_bytes",
                        "leader/follower.replication.throttled.rate in force, bytes/s",
                    ),
                    &["side"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
        })
    }
}
