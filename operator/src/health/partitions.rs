//! Partition facts: classifies each partition from its leader, replicas and ISR against the
//! topic's `min.insync.replicas`, and answers the roll planner's questions (may this broker, or
//! this set of brokers, stop without a partition dropping below its minimum ISR; which brokers
//! share no partition). Pure: it reads the plain values the caller converted from Metadata and
//! never calls a broker.

use std::collections::{BTreeMap, BTreeSet};

/// A broker id, as Kafka's Metadata reports it.
pub type BrokerId = i32;

/// The leader value Kafka reports for a partition without a leader.
pub const NO_LEADER: BrokerId = -1;

/// One partition as observed in Metadata: the input of every function here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReplicas {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Leader broker id; negative (Kafka reports `-1`) when the partition has no leader.
    pub leader: BrokerId,
    /// Assigned replicas, in assignment order.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas (a subset of `replicas`).
    pub isr: Vec<BrokerId>,
}

impl PartitionReplicas {
    /// Whether `broker` holds a replica of this partition (in sync or not).
    pub fn hosted_by(&self, broker: BrokerId) -> bool {
        self.replicas.contains(&broker)
    }

    /// The number of distinct in-sync replicas that are not in `stopped`.
    fn isr_without(&self, stopped: &BTreeSet<BrokerId>) -> usize {
        distinct(self.isr.iter().filter(|b| !stopped.contains(b)))
    }
}

fn distinct<'a>(ids: impl Iterator<Item = &'a BrokerId>) -> usize {
    ids.collect::<BTreeSet<_>>().len()
}

/// `min.insync.replicas` per topic, with the cluster default for topics that do not set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinIsr {
    /// The broker default (`min.insync.replicas` of the cluster).
    pub default: usize,
    /// Topic-level overrides.
    pub per_topic: BTreeMap<String, usize>,
}

impl Default for MinIsr {
    /// Kafka's own default: one.
    fn default() -> Self {
        Self::new(1)
    }
}

impl MinIsr {
    /// A table with the cluster default and no topic overrides.
    pub fn new(default: usize) -> Self {
        Self {
            default,
            per_topic: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the override of one topic.
    pub fn with_topic(mut self, topic: impl Into<String>, min_isr: usize) -> Self {
        self.per_topic.insert(topic.into(), min_isr);
        self
    }

    /// The minimum ISR of `topic`. Never less than one: Kafka refuses zero, so a zero read
    /// from a misconfigured source is treated as one.
    pub fn for_topic(&self, topic: &str) -> usize {
        self.per_topic
            .get(topic)
            .copied()
            .unwrap_or(self.default)
            .max(1)
    }
}

/// The state of one partition, worst first in the order of the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartitionState {
    /// Every replica is in sync and there is a leader.
    Healthy,
    /// Fewer in-sync replicas than replicas, but more than the minimum ISR.
    UnderReplicated,
    /// Exactly the minimum ISR in sync (and fewer than the replicas): one more loss and
    /// `acks=all` producers are refused.
    AtMinIsr,
    /// Fewer in-sync replicas than the minimum ISR: `acks=all` producers are refused.
    UnderMinIsr,
    /// No leader: neither reads nor writes are served.
    Offline,
}

/// Classifies one partition against its minimum ISR. The checks run worst first: no leader →
/// `Offline`; ISR below `min_isr` → `UnderMinIsr` (also when the topic has fewer replicas than
/// its minimum ISR, since `acks=all` producers are refused then too); ISR equal to `min_isr` and
/// below the replica count → `AtMinIsr`; ISR below the replicas → `UnderReplicated`.
pub fn classify(p: &PartitionReplicas, min_isr: usize) -> PartitionState {
    let isr = distinct(p.isr.iter());
    let replicas = distinct(p.replicas.iter());
    if p.leader < 0 {
        PartitionState::Offline
    } else if isr < min_isr {
        PartitionState::UnderMinIsr
    } else if isr == min_isr && isr < replicas {
        PartitionState::AtMinIsr
    } else if isr < replicas {
        PartitionState::UnderReplicated
    } else {
        PartitionState::Healthy
    }
}

/// The fact about one partition that status, the exporter and the gates read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionFact {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The classification.
    pub state: PartitionState,
    /// Distinct in-sync replicas.
    pub isr: usize,
    /// Distinct assigned replicas.
    pub replicas: usize,
    /// The minimum ISR the state was judged against.
    pub min_isr: usize,
}

/// Classifies every partition, in input order.
pub fn assess(partitions: &[PartitionReplicas], min_isr: &MinIsr) -> Vec<PartitionFact> {
    partitions.iter().map(|p| fact(p, min_isr)).collect()
}

fn fact(p: &PartitionReplicas, min_isr: &MinIsr) -> PartitionFact {
    let m = min_isr.for_topic(&p.topic);
    PartitionFact {
        topic: p.topic.clone(),
        partition: p.partition,
        state: classify(p, m),
        isr: distinct(p.isr.iter()),
        replicas: distinct(p.replicas.iter()),
        min_isr: m,
    }
}

/// Counts of partitions per state. Each partition is counted once, under its state, so an
/// `AtMinIsr` partition is not also counted in `under_replicated` (Kafka's
/// `UnderReplicatedPartitions` metric would count it: use [`HealthSummary::not_fully_in_sync`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthSummary {
    /// All partitions.
    pub total: usize,
    /// `Healthy` partitions.
    pub healthy: usize,
    /// `UnderReplicated` partitions.
    pub under_replicated: usize,
    /// `AtMinIsr` partitions.
    pub at_min_isr: usize,
    /// `UnderMinIsr` partitions.
    pub under_min_isr: usize,
    /// `Offline` partitions.
    pub offline: usize,
}

impl HealthSummary {
    /// Partitions that are not `Healthy` (Kafka's under-replicated count plus offline ones).
    pub fn not_fully_in_sync(&self) -> usize {
        self.total - self.healthy
    }
}

/// Counts the facts per state.
pub fn summarize(facts: &[PartitionFact]) -> HealthSummary {
    let mut s = HealthSummary {
        total: facts.len(),
        ..HealthSummary::default()
    };
    for f in facts {
        match f.state {
            PartitionState::Healthy => s.healthy += 1,
            PartitionState::UnderReplicated => s.under_replicated += 1,
            PartitionState::AtMinIsr => s.at_min_isr += 1,
            PartitionState::UnderMinIsr => s.under_min_isr += 1,
            PartitionState::Offline => s.offline += 1,
        }
    }
    s
}

/// A partition that would have too few in-sync replicas if some brokers stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrShortfall {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// In-sync replicas left once the brokers are stopped.
    pub isr_without: usize,
    /// In-sync replicas required: the topic's minimum ISR plus the headroom.
    pub needed: usize,
    /// Whether a stopped broker is in this partition's ISR. `false` means the partition is
    /// already short and stopping the brokers does not make it worse (a restart may even be
    /// what brings the replica back); the planner decides whether that still blocks.
    pub stopping_reduces_isr: bool,
}

/// The partitions hosted by `broker` that would keep fewer than `min ISR + headroom` in-sync
/// replicas while it is stopped; empty when the broker may stop. A broker outside a
/// partition's ISR does not reduce it, but a partition it hosts that is already short is still
/// reported (with `stopping_reduces_isr == false`).
pub fn would_drop_below_min_isr(
    partitions: &[PartitionReplicas],
    broker: BrokerId,
    min_isr: &MinIsr,
    headroom: usize,
) -> Vec<IsrShortfall> {
    would_set_drop_below_min_isr(partitions, &[broker], min_isr, headroom)
}

/// [`would_drop_below_min_isr`] for a set of brokers stopped at the same time (a parallel
/// restart): every partition with a replica on any of them must keep `min ISR + headroom`
/// in-sync replicas outside the set.
pub fn would_set_drop_below_min_isr(
    partitions: &[PartitionReplicas],
    brokers: &[BrokerId],
    min_isr: &MinIsr,
    headroom: usize,
) -> Vec<IsrShortfall> {
    let stopped: BTreeSet<BrokerId> = brokers.iter().copied().collect();
    partitions
        .iter()
        .filter(|p| p.replicas.iter().any(|r| stopped.contains(r)))
        .filter_map(|p| {
            let needed = min_isr.for_topic(&p.topic) + headroom;
            let isr_without = p.isr_without(&stopped);
            (isr_without < needed).then(|| IsrShortfall {
                topic: p.topic.clone(),
                partition: p.partition,
                isr_without,
                needed,
                stopping_reduces_isr: p.isr.iter().any(|b| stopped.contains(b)),
            })
        })
        .collect()
}

/// The candidates that may each stop alone (no [`IsrShortfall`]), in candidate order.
pub fn brokers_safe_to_stop(
    partitions: &[PartitionReplicas],
    candidates: &[BrokerId],
    min_isr: &MinIsr,
    headroom: usize,
) -> Vec<BrokerId> {
    candidates
        .iter()
        .copied()
        .filter(|b| would_drop_below_min_isr(partitions, *b, min_isr, headroom).is_empty())
        .collect()
}

/// Partitions that `broker` does not host and that are not `Healthy`: a roll should not add a
/// restart while the cluster is degraded elsewhere.
pub fn under_replicated_elsewhere(
    partitions: &[PartitionReplicas],
    broker: BrokerId,
    min_isr: &MinIsr,
) -> Vec<PartitionFact> {
    partitions
        .iter()
        .filter(|p| !p.hosted_by(broker))
        .map(|p| fact(p, min_isr))
        .filter(|f| f.state != PartitionState::Healthy)
        .collect()
}

/// Whether some partition has replicas on both `a` and `b`.
pub fn brokers_share_partition(partitions: &[PartitionReplicas], a: BrokerId, b: BrokerId) -> bool {
    partitions.iter().any(|p| p.hosted_by(a) && p.hosted_by(b))
}

/// Splits `brokers` into groups whose members share no partition, so each group may restart in
/// parallel without two of its members touching the same partition. First fit in the caller's
/// order (duplicates dropped): a broker joins the first group it shares nothing with, so the
/// result is deterministic and the caller's preference (e.g. controllers last) is kept within
/// and across groups. Brokers hosting nothing join the first group. This only guarantees
/// disjointness; each group must still pass [`would_set_drop_below_min_isr`].
pub fn disjoint_broker_groups(
    partitions: &[PartitionReplicas],
    brokers: &[BrokerId],
) -> Vec<Vec<BrokerId>> {
    let mut shares: BTreeSet<(BrokerId, BrokerId)> = BTreeSet::new();
    for p in partitions {
        for &a in &p.replicas {
            for &b in &p.replicas {
                if a != b {
                    shares.insert((a, b));
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut groups: Vec<Vec<BrokerId>> = Vec::new();
    for &b in brokers {
        if !seen.insert(b) {
            continue;
        }
        match groups
            .iter_mut()
            .find(|g| g.iter().all(|m| !shares.contains(&(*m, b))))
        {
            Some(g) => g.push(b),
            None => groups.push(vec![b]),
        }
    }
    groups
}

#[cfg(test)]
#[path = "partitions_tests.rs"]
mod tests;
