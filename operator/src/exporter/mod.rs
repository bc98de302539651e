//! Cluster-wide metrics, exported by the operator for every KafkaCluster: kafka_exporter's
//! names and labels (so its dashboards and alerts work unchanged), plus what none of the
//! exporters gives together: lag in seconds (kafka-lag-exporter's name), a Burrow-style status
//! per group, partitions under and at min.insync.replicas, offline partitions and the quorum.
//! Every series carries `namespace` and `cluster`.
//!
//! [`Exporter::publish`] turns one [`Snapshot`] (what one poll read) and the group evaluations
//! of the shared tracker into gauges, and removes the series of the cluster that the snapshot no
//! longer has (a deleted topic, a group gone). [`poll`] reads the snapshots.

pub mod poll;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use prometheus::{GaugeVec, Opts, Registry};

use crate::crd::HealthSummary;
use crate::health::{GroupHealth, GroupStatus, PartitionStatus};

/// One partition as a poll read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSnapshot {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Leader (-1: none).
    pub leader: i32,
    /// Replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Log end offset (`None`: not read, e.g. no leader).
    pub newest: Option<i64>,
    /// Log start offset.
    pub oldest: Option<i64>,
    /// The topic's `min.insync.replicas`.
    pub min_isr: i32,
}

/// One consumer group as a poll read it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    /// Group id.
    pub group: String,
    /// Members (`None`: not read).
    pub members: Option<usize>,
    /// Committed offsets by (topic, partition).
    pub committed: BTreeMap<(String, i32), i64>,
}

/// The quorum as a poll read it.
#[derive(Debug, Clone, PartialEq)]
pub struct QuorumSnapshot {
    /// Leader id (-1: none).
    pub leader: i32,
    /// The leader's high watermark of the metadata log.
    pub high_watermark: i64,
    /// Voters and their log end offsets.
    pub voters: Vec<(i32, i64)>,
}

/// What one poll of a cluster read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Live brokers.
    pub brokers: usize,
    /// Every partition of every topic.
    pub partitions: Vec<PartitionSnapshot>,
    /// Consumer groups with committed offsets.
    pub groups: Vec<GroupSnapshot>,
    /// The metadata quorum (`None`: not read).
    pub quorum: Option<QuorumSnapshot>,
}

/// The gauges, by index into [`SPECS`].
#[derive(Clone, Copy)]
enum G {
    Brokers,
    TopicPartitions,
    CurrentOffset,
    OldestOffset,
    Leader,
    Replicas,
    InSync,
    LeaderIsPreferred,
    UnderReplicated,
    GroupOffset,
    GroupOffsetSum,
    GroupLag,
    GroupLagSum,
    GroupMembers,
    GroupLagSeconds,
    GroupStatus,
    PartitionsUnderReplicated,
    PartitionsUnderMinIsr,
    PartitionsAtMinIsr,
    PartitionsOffline,
    QuorumLeader,
    QuorumVoterLag,
}

/// Name, help and labels (after `namespace` and `cluster`) of each gauge.
const SPECS: &[(&str, &str, &[&str])] = &[
    ("kafka_brokers", "Live brokers of the cluster", &[]),
    ("kafka_topic_partitions", "Partitions of a topic", &["topic"]),
    (
        "kafka_topic_partition_current_offset",
        "Log end offset of a partition",
        &["topic", "partition"],
    ),
    (
        "kafka_topic_partition_oldest_offset",
        "Log start offset of a partition",
        &["topic", "partition"],
    ),
    (
        "kafka_topic_partition_leader",
        "Leader broker id of a partition (-1: none)",
        &["topic", "partition"],
    ),
    (
        "kafka_topic_partition_replicas",
        "Replicas of a partition",
        &["topic", "partition"],
    ),
    (
        "kafka_topic_partition_in_sync_replica",
        "In-sync replicas of a partition",
        &["topic", "partition"],
    ),
    (
        "kafka_topic_partition_leader_is_preferred",
        "1 when a partition is led by its preferred (first) replica",
        &["topic", "partition"],
    ),
    (
        "kafka_topic_partition_under_replicated_partition",
        "1 when a partition has fewer in-sync replicas than replicas",
        &["topic", "partition"],
    ),
    (
        "kafka_consumergroup_current_offset",
        "Committed offset of a consumer group on a partition",
        &["consumergroup", "topic", "partition"],
    ),
    (
        "kafka_consumergroup_current_offset_sum",
        "Committed offsets of a consumer group on a topic, summed",
        &["consumergroup", "topic"],
    ),
    (
        "kafka_consumergroup_lag",
        "Records between a consumer group's committed offset and the log end",
        &["consumergroup", "topic", "partition"],
    ),
    (
        "kafka_consumergroup_lag_sum",
        "Lag of a consumer group on a topic, summed over its partitions",
        &["consumergroup", "topic"],
    ),
    (
        "kafka_consumergroup_members",
        "Members of a consumer group",
        &["consumergroup"],
    ),
    (
        "kafka_consumergroup_group_lag_seconds",
        "How long ago the log end was where a group's committed offset is now, interpolated between samples of the log end",
        &["group", "topic", "partition"],
    ),
    (
        "samsa_consumergroup_status",
        "1 for a consumer group's status over its sliding window (OK, WARN, ERR) and the reason (OK, WARN, STOP, STALL, REWIND: its worst partition)",
        &["consumergroup", "status", "reason"],
    ),
    (
        "samsa_partitions_under_replicated",
        "Partitions with fewer in-sync replicas than replicas",
        &[],
    ),
    (
        "samsa_partitions_under_min_isr",
        "Partitions with fewer in-sync replicas than their min.insync.replicas (acks=all produce fails)",
        &[],
    ),
    (
        "samsa_partitions_at_min_isr",
        "Partitions with exactly min.insync.replicas in-sync replicas (one more loss stops acks=all produce)",
        &[],
    ),
    (
        "samsa_partitions_offline",
        "Partitions without a leader",
        &[],
    ),
    (
        "samsa_quorum_leader",
        "The metadata quorum's leader (-1: none)",
        &[],
    ),
    (
        "samsa_quorum_voter_lag",
        "Records of the metadata log a voter lacks behind the leader's high watermark",
        &["voter"],
    ),
];

/// The series one cluster wrote: (gauge, labels after namespace and cluster).
type Written = BTreeSet<(usize, Vec<String>)>;

/// The cluster-wide gauges and what each cluster last wrote.
pub struct Exporter {
    gauges: Vec<GaugeVec>,
    written: Mutex<HashMap<(String, String), Written>>,
    /// Per cluster: 1 when the last poll read it, 0 when it failed.
    poll_success: GaugeVec,
    /// Per cluster: when a poll last read it, in seconds since the epoch.
    poll_time: GaugeVec,
    /// Per cluster: the brokers its spec asks for.
    desired: GaugeVec,
}

impl Exporter {
    /// Registers the gauges on `registry`.
    pub fn new(registry: &Registry) -> Result<Exporter, prometheus::Error> {
        let mut gauges = Vec::with_capacity(SPECS.len());
        for (name, help, labels) in SPECS {
            let mut all = vec!["namespace", "cluster"];
            all.extend_from_slice(labels);
            let g = GaugeVec::new(Opts::new(*name, *help), &all)?;
            registry.register(Box::new(g.clone()))?;
            gauges.push(g);
        }
        let cluster_gauge = |name: &str, help: &str| -> Result<GaugeVec, prometheus::Error> {
            let g = GaugeVec::new(Opts::new(name, help), &["namespace", "cluster"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Exporter {
            gauges,
            written: Mutex::new(HashMap::new()),
            poll_success: cluster_gauge(
                "samsa_cluster_poll_success",
                "1 when the operator's last poll of the cluster read it, 0 when it failed (the other series then keep the last values read)",
            )?,
            poll_time: cluster_gauge(
                "samsa_cluster_poll_timestamp_seconds",
                "When the operator's poll last read the cluster, in seconds since the epoch",
            )?,
            desired: cluster_gauge(
                "samsa_cluster_brokers_desired",
                "Brokers the KafkaCluster's spec asks for (spec.brokers), to compare with kafka_brokers",
            )?,
        })
    }

    /// Records the outcome of a poll of cluster `namespace/cluster`, whose spec asks for
    /// `desired` brokers: `at` (seconds since the epoch) is the time of a successful poll,
    /// `None` for a failed one.
    pub fn poll_outcome(&self, namespace: &str, cluster: &str, desired: i32, at: Option<f64>) {
        // Known from its first poll on, so that `forget` finds it even if no poll ever read it.
        if let Ok(mut w) = self.written.lock() {
            w.entry((namespace.to_string(), cluster.to_string()))
                .or_default();
        }
        let l = [namespace, cluster];
        self.desired.with_label_values(&l).set(f64::from(desired));
        self.poll_success
            .with_label_values(&l)
            .set(if at.is_some() { 1.0 } else { 0.0 });
        if let Some(t) = at {
            self.poll_time.with_label_values(&l).set(t);
        }
    }

    /// Publishes one poll of cluster `namespace/cluster`: `snapshot`, and `health`, the
    /// evaluations of its groups. Series of the cluster that this poll did not write go.
    pub fn publish(
        &self,
        namespace: &str,
        cluster: &str,
        snapshot: &Snapshot,
        health: &[GroupHealth],
    ) {
        let mut out = Writer::default();
        let p = |labels: &[&str]| labels.iter().map(ToString::to_string).collect::<Vec<_>>();
        out.set(G::Brokers, p(&[]), snapshot.brokers as f64);
        let mut per_topic: BTreeMap<&str, usize> = BTreeMap::new();
        for part in &snapshot.partitions {
            *per_topic.entry(part.topic.as_str()).or_default() += 1;
            let n = part.partition.to_string();
            let l = p(&[&part.topic, &n]);
            if let Some(o) = part.newest {
                out.set(G::CurrentOffset, l.clone(), o as f64);
            }
            if let Some(o) = part.oldest {
                out.set(G::OldestOffset, l.clone(), o as f64);
            }
            out.set(G::Leader, l.clone(), f64::from(part.leader));
            out.set(G::Replicas, l.clone(), part.replicas.len() as f64);
            out.set(G::InSync, l.clone(), part.isr.len() as f64);
            let preferred = part.leader >= 0 && part.replicas.first() == Some(&part.leader);
            out.set(
                G::LeaderIsPreferred,
                l.clone(),
                f64::from(u8::from(preferred)),
            );
            let under_replicated = part.isr.len() < part.replicas.len();
            out.set(G::UnderReplicated, l, f64::from(u8::from(under_replicated)));
        }
        for (topic, n) in per_topic {
            out.set(G::TopicPartitions, p(&[topic]), n as f64);
        }
        let counts = summary(snapshot, health);
        out.set(
            G::PartitionsUnderReplicated,
            p(&[]),
            f64::from(counts.under_replicated),
        );
        out.set(
            G::PartitionsUnderMinIsr,
            p(&[]),
            f64::from(counts.under_min_isr),
        );
        out.set(G::PartitionsAtMinIsr, p(&[]), f64::from(counts.at_min_isr));
        out.set(G::PartitionsOffline, p(&[]), f64::from(counts.offline));

        let newest: BTreeMap<(&str, i32), i64> = snapshot
            .partitions
            .iter()
            .filter_map(|x| Some(((x.topic.as_str(), x.partition), x.newest?)))
            .collect();
        for g in &snapshot.groups {
            if let Some(m) = g.members {
                out.set(G::GroupMembers, p(&[&g.group]), m as f64);
            }
            let mut sums: BTreeMap<&str, (f64, f64, bool)> = BTreeMap::new();
            for ((topic, partition), committed) in &g.committed {
                if *committed < 0 {
                    continue;
                }
                let n = partition.to_string();
                out.set(G::GroupOffset, p(&[&g.group, topic, &n]), *committed as f64);
                let sum = sums.entry(topic.as_str()).or_default();
                sum.0 += *committed as f64;
                if let Some(end) = newest.get(&(topic.as_str(), *partition)) {
                    let lag = (end - committed).max(0) as f64;
                    out.set(G::GroupLag, p(&[&g.group, topic, &n]), lag);
                    sum.1 += lag;
                    sum.2 = true;
                }
            }
            for (topic, (offsets, lag, has_lag)) in sums {
                out.set(G::GroupOffsetSum, p(&[&g.group, topic]), offsets);
                if has_lag {
                    out.set(G::GroupLagSum, p(&[&g.group, topic]), lag);
                }
            }
        }
        for h in health.iter().filter(|h| h.status != GroupStatus::NotFound) {
            for part in &h.partitions {
                if let Some(s) = part.lag_seconds {
                    let n = part.partition.to_string();
                    out.set(G::GroupLagSeconds, p(&[&h.group, &part.topic, &n]), s);
                }
            }
            let reason = worst(h);
            out.set(
                G::GroupStatus,
                p(&[&h.group, &h.status.to_string(), reason]),
                1.0,
            );
        }
        if let Some(q) = &snapshot.quorum {
            out.set(G::QuorumLeader, p(&[]), f64::from(q.leader));
            for (voter, end) in &q.voters {
                let lag = (q.high_watermark - end).max(0) as f64;
                out.set(G::QuorumVoterLag, p(&[&voter.to_string()]), lag);
            }
        }
        self.apply(namespace, cluster, out);
    }

    fn apply(&self, namespace: &str, cluster: &str, out: Writer) {
        let key = (namespace.to_string(), cluster.to_string());
        let mut written = match self.written.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let before = written.remove(&key).unwrap_or_default();
        let mut now = BTreeSet::new();
        for ((gauge, labels), value) in out.values {
            let mut all = vec![namespace, cluster];
            all.extend(labels.iter().map(String::as_str));
            self.gauges[gauge].with_label_values(&all).set(value);
            now.insert((gauge, labels));
        }
        for (gauge, labels) in before.difference(&now) {
            let mut all = vec![namespace, cluster];
            all.extend(labels.iter().map(String::as_str));
            let _ = self.gauges[*gauge].remove_label_values(&all);
        }
        written.insert(key, now);
    }

    /// Removes every series of cluster `namespace/cluster` (deleted, or no longer watched).
    pub fn forget(&self, namespace: &str, cluster: &str) {
        self.apply(namespace, cluster, Writer::default());
        for g in [&self.poll_success, &self.poll_time, &self.desired] {
            let _ = g.remove_label_values(&[namespace, cluster]);
        }
        if let Ok(mut w) = self.written.lock() {
            w.remove(&(namespace.to_string(), cluster.to_string()));
        }
    }

    /// The clusters with series.
    pub fn clusters(&self) -> Vec<(String, String)> {
        match self.written.lock() {
            Ok(w) => w.keys().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().keys().cloned().collect(),
        }
    }
}

/// The counts of a poll, for `status.health` (without its time).
pub fn summary(snapshot: &Snapshot, health: &[GroupHealth]) -> HealthSummary {
    let mut s = HealthSummary::default();
    for p in &snapshot.partitions {
        let isr = i32::try_from(p.isr.len()).unwrap_or(i32::MAX);
        if p.leader < 0 {
            s.offline += 1;
        }
        if p.isr.len() < p.replicas.len() {
            s.under_replicated += 1;
        }
        if isr < p.min_isr {
            s.under_min_isr += 1;
        } else if isr == p.min_isr {
            s.at_min_isr += 1;
        }
    }
    let not_ok: Vec<String> = health
        .iter()
        .filter(|h| matches!(h.status, GroupStatus::Warn | GroupStatus::Err))
        .map(|h| format!("{}: {} {}", h.group, h.status, worst(h)))
        .collect();
    s.groups_not_ok = i32::try_from(not_ok.len()).unwrap_or(i32::MAX);
    s.groups = not_ok.into_iter().take(10).collect();
    s
}

/// The reason of a group's status: its worst partition's (`OK` when all are).
fn worst(h: &GroupHealth) -> &'static str {
    let rank = |s: PartitionStatus| match s {
        PartitionStatus::Ok => 0,
        PartitionStatus::Warn => 1,
        PartitionStatus::Stop => 2,
        PartitionStatus::Stall => 3,
        PartitionStatus::Rewind => 4,
    };
    match h
        .partitions
        .iter()
        .map(|p| p.status)
        .max_by_key(|s| rank(*s))
    {
        None | Some(PartitionStatus::Ok) => "OK",
        Some(PartitionStatus::Warn) => "WARN",
        Some(PartitionStatus::Stop) => "STOP",
        Some(PartitionStatus::Stall) => "STALL",
        Some(PartitionStatus::Rewind) => "REWIND",
    }
}

/// The values one poll writes, by (gauge, labels after namespace and cluster).
#[derive(Default)]
struct Writer {
    values: BTreeMap<(usize, Vec<String>), f64>,
}

impl Writer {
    fn set(&mut self, gauge: G, labels: Vec<String>, value: f64) {
        self.values.insert((gauge as usize, labels), value);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
