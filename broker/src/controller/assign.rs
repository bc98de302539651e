//! Replica placement for CreateTopics / CreatePartitions without an explicit assignment, and the
//! validation of explicit assignments. Pure functions of (brokers, load, request): no I/O, no
//! clock, no randomness, so every controller computes the same placement from the same input.
//! This module never touches the metadata image; the caller turns its answer into a command.
//!
//! Placement happens in two steps:
//! 1. **Replica sets.** Replicas are handed out one at a time, each to the least-loaded usable
//!    broker the rack rule allows; ties go to the broker that comes next after the previous
//!    pick in a rack-interleaved order (rack A's first broker, rack B's first, ..., rack A's
//!    second, ...). From zero load this is a round-robin over that order, so replica counts
//!    differ by at most one; with load, the emptiest brokers fill first. Rack rule: a
//!    partition's next replica goes to a rack holding the fewest of its replicas among the
//!    racks that still have a free broker, which spreads it over as many racks as possible.
//! 2. **Preferred leaders.** Each new partition's leader is picked among its own replicas by a
//!    matching that raises a per-broker leader ceiling one level at a time (counting existing
//!    preferred leaderships), so leaderships are as even as the replica sets allow. The leader
//!    is moved to the front of its replica list.
//!
//! From zero load, with no racks or racks of equal size, replica counts and preferred-leader
//! counts per usable broker each differ by at most one (the property tests check it). With
//! existing load, or racks of unequal size, the rack rule and the replica sets may leave no
//! perfect choice; placement then stays as close as the greedy steps allow.

use std::collections::{BTreeMap, BTreeSet};

use super::image::MetadataImage;

/// What placement needs to know about one registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: i32,
    /// Rack, if the broker declared one.
    pub rack: Option<String>,
    /// A fenced broker gets no new replicas.
    pub fenced: bool,
}

impl BrokerInfo {
    /// The registered brokers of an image, by id.
    pub fn from_image(image: &MetadataImage) -> Vec<BrokerInfo> {
        image
            .brokers
            .iter()
            .map(|(id, b)| BrokerInfo {
                id: *id,
                rack: b.rack.clone(),
                fenced: b.fenced,
            })
            .collect()
    }
}

/// How racks are used, after Kafka's `RackAwareMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RackMode {
    /// Rack-aware when every usable broker has a rack; an error when only some have one.
    #[default]
    Enforced,
    /// Rack-aware when every usable broker has a rack; otherwise racks are ignored.
    Safe,
    /// Racks are ignored.
    Disabled,
}

/// Replicas and preferred leaderships each broker already holds, over all topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingLoad {
    replicas: BTreeMap<i32, u64>,
    leaders: BTreeMap<i32, u64>,
}

impl ExistingLoad {
    /// The load of every partition of the image (preferred leader = first replica).
    pub fn from_image(image: &MetadataImage) -> ExistingLoad {
        let mut load = ExistingLoad::default();
        for topic in image.topics.values() {
            for partition in &topic.partitions {
                load.add_partition(&partition.replicas);
            }
        }
        load
    }

    /// Counts one partition whose replica list (preferred leader first) is `replicas`.
    pub fn add_partition(&mut self, replicas: &[i32]) {
        for b in replicas {
            *self.replicas.entry(*b).or_default() += 1;
        }
        if let Some(leader) = replicas.first() {
            *self.leaders.entry(*leader).or_default() += 1;
        }
    }

    /// Replicas hosted by `broker`.
    pub fn replicas(&self, broker: i32) -> u64 {
        self.replicas.get(&broker).copied().unwrap_or(0)
    }

    /// Partitions whose preferred leader is `broker`.
    pub fn leaders(&self, broker: i32) -> u64 {
        self.leaders.get(&broker).copied().unwrap_or(0)
    }
}

/// Why a placement could not be made or an explicit assignment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    /// INVALID_PARTITIONS.
    #[error("number of partitions must be larger than 0, got {0}")]
    InvalidPartitions(i32),
    /// INVALID_PARTITIONS: the partition indexes would not fit in an i32, or start below 0.
    #[error("partitions {start}..{start}+{count} are out of range")]
    PartitionRange {
        /// First new partition index.
        start: i32,
        /// Number of new partitions.
        count: i32,
    },
    /// INVALID_REPLICATION_FACTOR.
    #[error("replication factor must be larger than 0, got {0}")]
    InvalidReplicationFactor(i16),
    /// INVALID_REPLICATION_FACTOR.
    #[error(
        "replication factor {requested} is larger than the {available} available (unfenced) brokers"
    )]
    InsufficientBrokers {
        /// Replication factor asked for.
        requested: i16,
        /// Unfenced registered brokers.
        available: usize,
    },
    /// INVALID_REPLICATION_FACTOR: racks enforced, but only some brokers have one.
    #[error(
        "brokers {without:?} have no rack while others do; give every broker a rack or place \
         replicas without rack awareness"
    )]
    MixedRacks {
        /// Usable brokers without a rack.
        without: Vec<i32>,
    },
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("the replica assignment lists no partitions")]
    EmptyAssignment,
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("the replica assignment has {found} partitions, {expected} expected")]
    PartitionCountMismatch {
        /// Partitions expected.
        expected: i32,
        /// Partitions in the assignment.
        found: usize,
    },
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("partition {partition} has no replicas")]
    NoReplicas {
        /// Partition index in the assignment.
        partition: usize,
    },
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("partition {partition} has {found} replicas, partition 0 has {expected}")]
    InconsistentReplicationFactor {
        /// Partition index in the assignment.
        partition: usize,
        /// Replicas of partition 0.
        expected: usize,
        /// Replicas of this partition.
        found: usize,
    },
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("partition {partition} lists broker {broker} more than once")]
    DuplicateReplica {
        /// Partition index in the assignment.
        partition: usize,
        /// The repeated broker.
        broker: i32,
    },
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("partition {partition} names broker {broker}, which is not registered")]
    UnknownBroker {
        /// Partition index in the assignment.
        partition: usize,
        /// The unknown broker.
        broker: i32,
    },
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("every broker of partition {partition} is fenced: {replicas:?}")]
    AllReplicasFenced {
        /// Partition index in the assignment.
        partition: usize,
        /// Its replicas.
        replicas: Vec<i32>,
    },
}

/// Places `partitions` new partitions (indexes `start_partition..`) with `replication_factor`
/// replicas each on the unfenced `brokers`, balancing replicas and preferred leaders over the
/// cluster given the `existing` load. Each returned list has its preferred leader first.
/// `replication_factor` is the resolved value (the caller replaces Kafka's -1 by the default).
pub fn assign_replicas(
    brokers: &[BrokerInfo],
    existing: &ExistingLoad,
    partitions: i32,
    replication_factor: i16,
    start_partition: i32,
    racks: RackMode,
) -> Result<Vec<Vec<i32>>, AssignError> {
    if partitions <= 0 {
        return Err(AssignError::InvalidPartitions(partitions));
    }
    if start_partition < 0 || start_partition.checked_add(partitions).is_none() {
        return Err(AssignError::PartitionRange {
            start: start_partition,
            count: partitions,
        });
    }
    if replication_factor <= 0 {
        return Err(AssignError::InvalidReplicationFactor(replication_factor));
    }
    let usable = usable_brokers(brokers);
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf > usable.len() {
        return Err(AssignError::InsufficientBrokers {
            requested: replication_factor,
            available: usable.len(),
        });
    }
    let order = interleaved(&usable, rack_aware(&usable, racks)?);
    let count = usize::try_from(partitions).unwrap_or(0);
    let start = usize::try_from(start_partition).unwrap_or(0);
    let sets = replica_sets(&order, existing, count, rf, start)?;
    Ok(with_leaders(sets, &order, existing))
}

/// Checks an explicit assignment (one replica list per partition) against the registered
/// `brokers`, and its partition count against `expected_partitions` when given.
pub fn validate_assignment(
    brokers: &[BrokerInfo],
    assignment: &[Vec<i32>],
    expected_partitions: Option<i32>,
) -> Result<(), AssignError> {
    if let Some(expected) = expected_partitions {
        if usize::try_from(expected).ok() != Some(assignment.len()) {
            return Err(AssignError::PartitionCountMismatch {
                expected,
                found: assignment.len(),
            });
        }
    }
    let Some(first) = assignment.first() else {
        return Err(AssignError::EmptyAssignment);
    };
    let registered: BTreeMap<i32, &BrokerInfo> = brokers.iter().map(|b| (b.id, b)).collect();
    for (partition, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() {
            return Err(AssignError::NoReplicas { partition });
        }
        if replicas.len() != first.len() {
            return Err(AssignError::InconsistentReplicationFactor {
                partition,
                expected: first.len(),
                found: replicas.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for broker in replicas {
            if !seen.insert(*broker) {
                return Err(AssignError::DuplicateReplica {
                    partition,
                    broker: *broker,
                });
            }
            if !registered.contains_key(broker) {
                return Err(AssignError::UnknownBroker {
                    partition,
                    broker: *broker,
                });
            }
        }
        if replicas
            .iter()
            .all(|b| registered.get(b).is_some_and(|info| info.fenced))
        {
            return Err(AssignError::AllReplicasFenced {
                partition,
                replicas: replicas.clone(),
            });
        }
    }
    Ok(())
}

/// The unfenced brokers, one per id, by id.
fn usable_brokers(brokers: &[BrokerInfo]) -> Vec<&BrokerInfo> {
    let by_id: BTreeMap<i32, &BrokerInfo> = brokers
        .iter()
        .filter(|b| !b.fenced)
        .map(|b| (b.id, b))
        .collect();
    by_id.into_values().collect()
}

/// Whether placement is rack-aware for these usable brokers under `mode`.
fn rack_aware(usable: &[&BrokerInfo], mode: RackMode) -> Result<bool, AssignError> {
    let without: Vec<i32> = usable
        .iter()
        .filter(|b| b.rack.is_none())
        .map(|b| b.id)
        .collect();
    match mode {
        RackMode::Disabled => Ok(false),
        RackMode::Safe => Ok(without.is_empty()),
        RackMode::Enforced if without.is_empty() => Ok(true),
        RackMode::Enforced if without.len() == usable.len() => Ok(false),
        RackMode::Enforced => Err(AssignError::MixedRacks { without }),
    }
}

/// A usable broker in placement order: its id and its rack index (all 0 when rack-unaware).
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: i32,
    rack: usize,
}

/// Brokers alternating over racks (racks by name, brokers by id within a rack): rack A's
/// first, rack B's first, ..., rack A's second, ... Without racks: by id.
fn interleaved(usable: &[&BrokerInfo], rack_aware: bool) -> Vec<Slot> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for b in usable {
        let key = if rack_aware { b.rack.as_deref() } else { None };
        by_rack.entry(key).or_default().push(b.id);
    }
    let racks: Vec<Vec<i32>> = by_rack.into_values().collect();
    let depth = racks.iter().map(Vec::len).max().unwrap_or(0);
    let mut order = Vec::with_capacity(usable.len());
    for level in 0..depth {
        for (rack, ids) in racks.iter().enumerate() {
            if let Some(id) = ids.get(level) {
                order.push(Slot { id: *id, rack });
            }
        }
    }
    order
}

/// Picks the replica set of each partition, in pick order (not yet leader first).
fn replica_sets(
    order: &[Slot],
    existing: &ExistingLoad,
    partitions: usize,
    rf: usize,
    start: usize,
) -> Result<Vec<Vec<usize>>, AssignError> {
    let n = order.len();
    let racks = order.iter().map(|s| s.rack + 1).max().unwrap_or(0);
    let mut rack_size = vec![0usize; racks];
    for s in order {
        rack_size[s.rack] += 1;
    }
    let mut load: Vec<u64> = order.iter().map(|s| existing.replicas(s.id)).collect();
    let leads: Vec<u64> = order.iter().map(|s| existing.leaders(s.id)).collect();
    let mut cursor = if n == 0 { 0 } else { start % n };
    let mut sets = Vec::with_capacity(partitions);
    for _ in 0..partitions {
        let mut chosen: Vec<usize> = Vec::with_capacity(rf);
        let mut in_rack = vec![0usize; racks];
        while chosen.len() < rf {
            // The rack rule: only racks with a free broker and the fewest replicas so far.
            let fewest = (0..racks)
                .filter(|r| in_rack[*r] < rack_size[*r])
                .map(|r| in_rack[r])
                .min();
            // The least loaded, then the one leading least (so the leader matching has room);
            // `min_by_key` keeps the first, the nearest after the cursor.
            let pick = (0..n)
                .map(|step| (cursor + step) % n)
                .filter(|i| !chosen.contains(i) && Some(in_rack[order[*i].rack]) == fewest)
                .min_by_key(|i| (load[*i], leads[*i]))
                .ok_or(AssignError::InsufficientBrokers {
                    requested: i16::try_from(rf).unwrap_or(i16::MAX),
                    available: n,
                })?;
            chosen.push(pick);
            in_rack[order[pick].rack] += 1;
            load[pick] += 1;
            cursor = (pick + 1) % n;
        }
        sets.push(chosen);
    }
    Ok(sets)
}

/// Chooses each partition's preferred leader among its replicas and returns broker ids,
/// leader first. A bipartite matching (partitions to brokers) whose per-broker ceiling of
/// leaderships, existing ones included, rises one level at a time: every broker filled at a
/// level stays filled, so leaderships end as even as the replica sets allow.
fn with_leaders(sets: Vec<Vec<usize>>, order: &[Slot], existing: &ExistingLoad) -> Vec<Vec<i32>> {
    let held: Vec<u64> = order.iter().map(|s| existing.leaders(s.id)).collect();
    let mut matching = Matching {
        sets: &sets,
        led: vec![Vec::new(); order.len()],
        cap: vec![0; order.len()],
        leader: vec![None; sets.len()],
    };
    let partitions = u64::try_from(sets.len()).unwrap_or(u64::MAX);
    let last = held
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .saturating_add(partitions);
    // Start at the highest ceiling the new partitions can fill completely: lower levels would
    // only repeat the search (and a search that fails costs a walk over every leadership).
    let mut level = fill_level(&held, partitions, last).saturating_sub(1);
    // Every set is non-empty, so once the ceiling reaches `last` all are matched.
    while level < last && matching.leader.iter().any(Option::is_none) {
        level += 1;
        for (broker, cap) in matching.cap.iter_mut().enumerate() {
            *cap = usize::try_from(level.saturating_sub(held[broker])).unwrap_or(usize::MAX);
        }
        for p in 0..sets.len() {
            if matching.leader[p].is_none() {
                let mut visited = vec![false; order.len()];
                matching.augment(p, &mut visited);
            }
        }
    }
    sets.iter()
        .zip(&matching.leader)
        .map(|(set, leader)| {
            let leader = leader.or(set.first().copied());
            leader
                .into_iter()
                .chain(set.iter().copied().filter(|b| Some(*b) != leader))
                .map(|i| order[i].id)
                .collect()
        })
        .collect()
}

/// The highest level `l <= last` such that raising every broker's count in `held` to `l`
/// takes at most `partitions` (a water-filling level).
fn fill_level(held: &[u64], partitions: u64, last: u64) -> u64 {
    let needed = |level: u64| -> u64 {
        held.iter()
            .map(|h| level.saturating_sub(*h))
            .fold(0u64, u64::saturating_add)
    };
    let (mut low, mut high) = (held.iter().copied().min().unwrap_or(0), last);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if needed(mid) <= partitions {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

/// Partitions matched to leading brokers, with a ceiling of leaderships per broker.
struct Matching<'a> {
    sets: &'a [Vec<usize>],
    /// Partitions each broker leads.
    led: Vec<Vec<usize>>,
    /// Ceiling of `led[b].len()`.
    cap: Vec<usize>,
    /// Leader of each partition, once matched.
    leader: Vec<Option<usize>>,
}

impl Matching<'_> {
    /// Kuhn's augmenting path from the unmatched partition `p`: a broker under its ceiling
    /// takes it, or a full broker hands one of its partitions on along another path. Brokers
    /// matched before stay matched. Depth is bounded by the number of brokers.
    fn augment(&mut self, p: usize, visited: &mut [bool]) -> bool {
        for &b in &self.sets[p] {
            if visited[b] {
                continue;
            }
            visited[b] = true;
            if self.led[b].len() < self.cap[b] {
                self.led[b].push(p);
                self.leader[p] = Some(b);
                return true;
            }
            for k in 0..self.led[b].len() {
                let q = self.led[b][k];
                if self.augment(q, visited) {
                    self.led[b][k] = p;
                    self.leader[p] = Some(b);
                    return true;
                }
            }
        }
        false
    }
}
