//! Prometheus metrics of the broker and the HTTP endpoint serving them with /healthz and /readyz.
//!
//! Metric handles are created once (per API, per partition) so the hot path only touches atomics.
//! This module never decides anything about requests; it only counts.

mod cleaner;
mod health;
mod http;
mod quorum;
mod replication;

pub use cleaner::CleanerMetrics;
pub use health::{Check, Health};
pub use http::serve;
pub use quorum::QuorumMetrics;
pub use replication::ReplicationMetrics;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// All broker metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Bytes read from client sockets.
    pub network_in: IntCounter,
    /// Bytes written to client sockets.
    pub network_out: IntCounter,
    /// Record batch bytes appended by Produce.
    pub produce_bytes: IntCounter,
    /// Record batch bytes returned by Fetch.
    pub fetch_bytes: IntCounter,
    /// Open client connections.
    pub connections: IntGauge,
    /// Frames that closed their connection (oversize, unparseable, unsupported).
    pub rejected_frames: IntCounterVec,
    /// SASL authentications by mechanism and result (success, failure).
    pub sasl_authentications: IntCounterVec,
    /// Requests or resources the authorizer denied, by operation and resource type.
    pub authorization_denials: IntCounterVec,
    /// TLS handshakes that failed, by listener and reason.
    pub tls_handshake_failures: IntCounterVec,
    log_end_offset: IntGaugeVec,
    log_start_offset: IntGaugeVec,
    log_size: IntGaugeVec,
    log_segments: IntGaugeVec,
    high_watermark: IntGaugeVec,
    isr_size: IntGaugeVec,
    replicas: IntGaugeVec,
    follower_lag: IntGaugeVec,
    partition_leader: IntGaugeVec,
    /// Replication totals.
    pub replication: ReplicationMetrics,
    /// Committed offset per group, topic and partition.
    pub group_committed_offset: IntGaugeVec,
    /// High watermark minus committed offset per group, topic and partition, for the partitions
    /// the coordinator leads.
    pub group_lag: IntGaugeVec,
    /// Members per group.
    pub group_members: IntGaugeVec,
    /// The log cleaner.
    pub cleaner: CleanerMetrics,
    /// The metadata quorum.
    pub quorum: QuorumMetrics,
}

/// Gauges of one partition.
#[derive(Clone)]
pub struct PartitionGauges {
    /// Next offset to be written.
    pub log_end_offset: IntGauge,
    /// First offset kept.
    pub log_start_offset: IntGauge,
    /// Bytes on disk.
    pub size_bytes: IntGauge,
    /// Segment files.
    pub segments: IntGauge,
    /// High watermark.
    pub high_watermark: IntGauge,
    /// In-sync replicas.
    pub isr_size: IntGauge,
    /// Assigned replicas.
    pub replicas: IntGauge,
    /// Leader only: offsets the slowest follower is behind the log end.
    pub follower_lag: IntGauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "samsa_requests_total",
                "Kafka requests handled, by API and error code",
            ),
            &["api", "error"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "samsa_request_duration_seconds",
                "Time from a request's arrival to its response, by API",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["api"],
        )?;
        let network_in = IntCounter::new(
            "samsa_network_received_bytes_total",
            "Bytes read from client sockets",
        )?;
        let network_out = IntCounter::new(
            "samsa_network_sent_bytes_total",
            "Bytes written to client sockets",
        )?;
        let produce_bytes = IntCounter::new(
            "samsa_produce_bytes_total",
            "Record batch bytes appended by Produce",
        )?;
        let fetch_bytes = IntCounter::new(
            "samsa_fetch_bytes_total",
            "Record batch bytes returned by Fetch",
        )?;
        let connections = IntGauge::new("samsa_connections", "Open client connections")?;
        let rejected_frames = IntCounterVec::new(
            Opts::new(
                "samsa_rejected_frames_total",
                "Frames that closed their connection, by reason",
            ),
            &["reason"],
        )?;
        let sasl_authentications = IntCounterVec::new(
            Opts::new(
                "samsa_sasl_authentications_total",
                "SASL authentications, by mechanism and result (success, failure)",
            ),
            &["mechanism", "result"],
        )?;
        let authorization_denials = IntCounterVec::new(
            Opts::new(
                "samsa_authorization_denials_total",
                "Operations the authorizer denied, by operation and resource type",
            ),
            &["operation", "resource_type"],
        )?;
        let tls_handshake_failures = IntCounterVec::new(
            Opts::new(
                "samsa_tls_handshake_failures_total",
                "TLS handshakes on client listeners that failed, by listener and reason",
            ),
            &["listener", "reason"],
        )?;
        let part = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["topic", "partition"])
        };
        let log_end_offset = part(
            "samsa_log_end_offset",
            "Next offset to be written, per partition",
        )?;
        let log_start_offset = part("samsa_log_start_offset", "First offset kept, per partition")?;
        let log_size = part(
            "samsa_log_size_bytes",
            "Bytes of log segments on disk, per partition",
        )?;
        let log_segments = part("samsa_log_segments", "Segment files, per partition")?;
        let high_watermark = part(
            "samsa_partition_high_watermark",
            "High watermark (end of the records every in-sync replica has), per partition",
        )?;
        let isr_size = part(
            "samsa_partition_isr_size",
            "In-sync replicas, per partition",
        )?;
        let replicas = part(
            "samsa_partition_replicas",
            "Assigned replicas, per partition",
        )?;
        let follower_lag = part(
            "samsa_partition_follower_lag",
            "On the leader: offsets the slowest follower is behind the log end, per partition",
        )?;
        let partition_leader = part(
            "samsa_partition_leader",
            "Leader broker id per partition (-1: none, offline), from the metadata; in a \
             cluster reported only by the reporting broker (the lowest-id unfenced one) so \
             that each partition has one series",
        )?;
        let group_opts = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["group", "topic", "partition"])
        };
        let group_committed_offset = group_opts(
            "samsa_consumer_group_committed_offset",
            "Committed offset per group and partition",
        )?;
        let group_lag = group_opts(
            "samsa_consumer_group_lag",
            "High watermark minus committed offset per group and partition (0 when ahead), \
             exported by the group's coordinator for the partitions it leads only",
        )?;
        let group_members = IntGaugeVec::new(
            Opts::new("samsa_consumer_group_members", "Members per consumer group"),
            &["group"],
        )?;
        registry.register(Box::new(group_committed_offset.clone()))?;
        registry.register(Box::new(group_lag.clone()))?;
        registry.register(Box::new(group_members.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(network_in.clone()))?;
        registry.register(Box::new(network_out.clone()))?;
        registry.register(Box::new(produce_bytes.clone()))?;
        registry.register(Box::new(fetch_bytes.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(rejected_frames.clone()))?;
        registry.register(Box::new(sasl_authentications.clone()))?;
        registry.register(Box::new(authorization_denials.clone()))?;
        registry.register(Box::new(tls_handshake_failures.clone()))?;
        registry.register(Box::new(log_end_offset.clone()))?;
        registry.register(Box::new(log_start_offset.clone()))?;
        registry.register(Box::new(log_size.clone()))?;
        registry.register(Box::new(log_segments.clone()))?;
        registry.register(Box::new(high_watermark.clone()))?;
        registry.register(Box::new(isr_size.clone()))?;
        registry.register(Box::new(replicas.clone()))?;
        registry.register(Box::new(follower_lag.clone()))?;
        registry.register(Box::new(partition_leader.clone()))?;
        let replication = ReplicationMetrics::register(&registry)?;
        let cleaner = CleanerMetrics::register(&registry)?;
        let quorum = QuorumMetrics::register(&registry)?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            network_in,
            network_out,
            produce_bytes,
            fetch_bytes,
            connections,
            rejected_frames,
            sasl_authentications,
            authorization_denials,
            tls_handshake_failures,
            log_end_offset,
            log_start_offset,
            log_size,
            log_segments,
            high_watermark,
            isr_size,
            replicas,
            follower_lag,
            partition_leader,
            replication,
            group_committed_offset,
            group_lag,
            group_members,
            cleaner,
            quorum,
        })
    }

    /// Counts one handled request.
    pub fn observe_request(&self, api: &str, error: &str, seconds: f64) {
        self.requests.with_label_values(&[api, error]).inc();
        self.latency.with_label_values(&[api]).observe(seconds);
    }

    /// Gauges of one partition, created on first use.
    pub fn partition(&self, topic: &str, partition: i32) -> PartitionGauges {
        let p = partition.to_string();
        let labels = [topic, p.as_str()];
        PartitionGauges {
            log_end_offset: self.log_end_offset.with_label_values(&labels),
            log_start_offset: self.log_start_offset.with_label_values(&labels),
            size_bytes: self.log_size.with_label_values(&labels),
            segments: self.log_segments.with_label_values(&labels),
            high_watermark: self.high_watermark.with_label_values(&labels),
            isr_size: self.isr_size.with_label_values(&labels),
            replicas: self.replicas.with_label_values(&labels),
            follower_lag: self.follower_lag.with_label_values(&labels),
        }
    }

    /// Drops the gauges of a deleted partition.
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        let p = partition.to_string();
        let labels = [topic, p.as_str()];
        for v in [
            &self.log_end_offset,
            &self.log_start_offset,
            &self.log_size,
            &self.log_segments,
            &self.high_watermark,
            &self.isr_size,
            &self.replicas,
            &self.follower_lag,
            &self.partition_leader,
        ] {
            let _ = v.remove_label_values(&labels);
        }
    }

    /// Sets the leader gauge of one partition (only the broker that reports the cluster-wide
    /// view sets it: see [`ReplicationMetrics`]). Not part of [`PartitionGauges`], which every
    /// broker holding the partition creates.
    pub fn set_partition_leader(&self, topic: &str, partition: i32, leader: i32) {
        let p = partition.to_string();
        self.partition_leader
            .with_label_values(&[topic, p.as_str()])
            .set(i64::from(leader));
    }

    /// Drops the leader gauge of one partition (it is reported elsewhere now, or gone).
    pub fn remove_partition_leader(&self, topic: &str, partition: i32) {
        let p = partition.to_string();
        let _ = self
            .partition_leader
            .remove_label_values(&[topic, p.as_str()]);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            return format!("# encoding failed: {e}\n");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
