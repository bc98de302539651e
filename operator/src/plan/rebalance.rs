//! Replica placement: which brokers hold each partition and which of them is its preferred leader,
//! for a scale-up, a drain before a scale-down, a replication-factor change and (later) a
//! blue-green move. Pure and deterministic: plain data in, plain data out; no I/O, no clock, no
//! randomness, no `HashMap` iteration, no panic on any input. It decides targets only: the
//! reconciler submits them in batches ([`next_batch`]) with AlterPartitionReassignments, then
//! elects preferred leaders.
//!
//! The rack rule: a partition of replication factor `rf` puts at most `cap` replicas in one rack,
//! `cap` being the smallest number with `sum over racks of min(cap, brokers of the rack) >= rf`.
//! That is 1 (no two replicas in one rack) when there are at least `rf` racks, and otherwise as
//! even as the racks' sizes allow. When no broker has a rack, racks impose nothing; when some do,
//! a broker without one is a rack of its own.
//!
//! [`plan`] reaches, in this order of priority:
//! 1. every replica on a listed broker, no broker twice in a list, the rack rule;
//! 2. replica counts as even as the racks allow: the smallest sum of squared counts per broker,
//!    which is every broker within floor..ceil of the mean whenever that is possible;
//! 3. the fewest replicas copied to get there;
//! 4. then, by reordering lists only, preferred leaders as even as the lists allow (the same
//!    measure), with the fewest preferred leaders changed.
//!
//! How: replicas that may stay stay, those that must move go to the least-loaded eligible broker,
//! then negative cycles are cancelled on a graph of brokers. An edge `a -> b` moves one replica
//! from `a` to `b`; it costs +1 for a replica copied to `b` and -1 for a replica that goes back
//! to where it was at the start. A node `T` closes a path from `a` to `b` with the change of the
//! sum of squared counts (`a` gives one, `b` takes one), weighted above any path's moves, so
//! cycles are compared by (balance, moves). Broker edges are the residual graph of the flow
//! network partition -> (partition, rack) -> broker -> `T` (a rack edge has the partition's
//! `cap`), so when no negative cycle is left the placement is optimal for (balance, moves): the
//! counts are exact, not a heuristic. (One reservation, with racks only: a cycle whose broker
//! edges would take one partition into one rack twice is passed over, so there a better
//! placement may in principle remain; the brute-force property test has not found one.) Which
//! partition travels along an edge is the size rule described at [`plan`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// A partition: (topic, partition index).
pub type PartitionKey = (String, i32);

/// Replica lists by partition; the first replica of a list is the partition's preferred leader.
pub type Assignment = BTreeMap<PartitionKey, Vec<i32>>;

/// A broker that may hold replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker id.
    pub id: i32,
    /// The broker's rack (`broker.rack`); `None` for a broker without one.
    pub rack: Option<String>,
}

/// What [`plan`] and [`drain`] work from.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// Brokers that should hold replicas after the plan (brokers being drained are NOT listed).
    /// A repeated id counts once, with the rack of its first entry.
    pub brokers: &'a [BrokerInfo],
    /// Current replicas of every partition.
    pub assignment: &'a Assignment,
    /// Bytes of each partition (size of its largest replica, from DescribeLogDirs); missing = 0.
    pub sizes: &'a BTreeMap<PartitionKey, u64>,
}

/// The outcome of [`plan`] or [`drain`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The new replica list of every partition that changes (partitions that keep their list are
    /// absent).
    pub target: Assignment,
    /// Replicas that move (a replica added to a broker that did not hold it counts 1).
    pub replica_moves: usize,
    /// Bytes copied: sum over added replicas of the partition's size.
    pub bytes: u64,
}

/// Moves replicas so that (1) no replica is on a broker outside `brokers` (drain), (2) each broker
/// holds between floor and ceil of (total replicas / brokers) replicas, (3) each broker is the
/// preferred leader (first replica) of between floor and ceil of (partitions / brokers)
/// partitions — reached by reordering replica lists, which copies nothing, wherever possible —
/// with the fewest replica moves, rack-aware.
///
/// Where the racks make (2) impossible the counts are as even as they allow (smallest sum of
/// squares); where the lists make (3) impossible, the leaders likewise. Nothing changes for a
/// partition already placed so: a plan applied to its own result is empty. A replica that moves
/// keeps its position in the list (a drained preferred leader is replaced at position 0), then
/// preferred leaders are balanced by swapping the new leader to the front.
///
/// Which partition's replica leaves an overloaded broker `a` for `b` (among those costing the
/// same number of moves): the one that leaves the bytes of `a` and `b` closest to the mean bytes
/// per broker, counting each byte copied as one byte of distance (so a huge partition that would
/// only trade places with the imbalance is not copied), then the smaller, then key order.
///
/// A partition with more replicas than there are brokers keeps its list, except that a replica on
/// an unlisted broker is replaced by a listed broker it does not have yet, while there is one.
/// An empty list stays empty. No brokers: nothing can be placed, the plan is empty.
pub fn plan(input: &PlanInput) -> Plan {
    let cluster = Cluster::new(input.brokers);
    if cluster.ids.is_empty() {
        return Plan::default();
    }
    let mut work = Work::new(input, &cluster, Holes::Invalid);
    work.balance_replicas();
    work.balance_leaders();
    work.finish()
}

/// Only what must move: replicas on brokers outside `brokers` go to the least-loaded eligible
/// brokers; nothing else changes (used for a drain when a full rebalance is turned off).
///
/// Eligible: a listed broker the partition does not have, within the rack rule when the
/// partition's other replicas allow. A broker repeated in a list is replaced the same way (a
/// list may not name a broker twice). Holes are filled in partition key order, each on the
/// broker with the fewest replicas at that point, then the fewest bytes, then the lowest id.
pub fn drain(input: &PlanInput) -> Plan {
    let cluster = Cluster::new(input.brokers);
    if cluster.ids.is_empty() {
        return Plan::default();
    }
    Work::new(input, &cluster, Holes::Unlisted).finish()
}

/// The replica list of one partition at a new replication factor `rf`: growing adds the
/// least-loaded brokers (racks not yet used first), shrinking drops replicas from the end of the
/// list but never the current leader `leader` if another choice exists. `load` = replicas per
/// broker now. Err(message) when rf > number of brokers or rf < 1.
///
/// Growing appends, among listed brokers the list lacks, the one whose rack holds the fewest of
/// the partition's replicas, then the least loaded, then the lowest id. Shrinking drops, before
/// looking at positions, a replica on an unlisted broker, then a repeated broker, then one sharing
/// its rack with another replica of the partition; among equals the last one. The same `rf` as
/// the list's length returns the list unchanged.
pub fn change_replication_factor(
    replicas: &[i32],
    leader: Option<i32>,
    rf: usize,
    brokers: &[BrokerInfo],
    load: &BTreeMap<i32, usize>,
) -> Result<Vec<i32>, String> {
    let cluster = Cluster::new(brokers);
    if rf < 1 {
        return Err(format!("replication factor {rf} is below 1"));
    }
    if rf > cluster.ids.len() {
        return Err(format!(
            "replication factor {rf} exceeds the {} brokers",
            cluster.ids.len()
        ));
    }
    let mut out = replicas.to_vec();
    while out.len() < rf {
        let in_rack = cluster.rack_counts(&out);
        let next = (0..cluster.ids.len())
            .filter(|&b| !out.contains(&cluster.ids[b]))
            .min_by_key(|&b| {
                let id = cluster.ids[b];
                let used = in_rack[cluster.rack[b]];
                (used, load.get(&id).copied().unwrap_or(0), id)
            });
        match next {
            Some(b) => out.push(cluster.ids[b]),
            None => return Err(format!("no broker left to add for replication factor {rf}")),
        }
    }
    while out.len() > rf {
        let in_rack = cluster.rack_counts(&out);
        let keep = leader.and_then(|l| out.iter().position(|&b| b == l));
        let drop = (0..out.len())
            .filter(|&p| Some(p) != keep)
            .max_by_key(|&p| {
                let id = out[p];
                let repeated = out[..p].contains(&id);
                match cluster.index(id) {
                    None => (true, repeated, 0, p),
                    Some(b) => (false, repeated, in_rack[cluster.rack[b]], p),
                }
            });
        match drop {
            Some(p) => {
                out.remove(p);
            }
            None => break,
        }
    }
    Ok(out)
}

/// The next reassignments to submit: partitions whose `current` differs from `target`, not in
/// `in_progress`, at most `max_concurrent - in_progress.len()` of them, smallest size first then key
/// order (deterministic).
///
/// A partition missing from `current` (deleted since the plan was made) is not submitted.
pub fn next_batch(
    target: &Assignment,
    current: &Assignment,
    in_progress: &BTreeSet<PartitionKey>,
    sizes: &BTreeMap<PartitionKey, u64>,
    max_concurrent: usize,
) -> Vec<(PartitionKey, Vec<i32>)> {
    let room = max_concurrent.saturating_sub(in_progress.len());
    let mut due: Vec<(u64, &PartitionKey, &Vec<i32>)> = target
        .iter()
        .filter(|(key, replicas)| {
            !in_progress.contains(*key) && current.get(*key).is_some_and(|now| now != *replicas)
        })
        .map(|(key, replicas)| (sizes.get(key).copied().unwrap_or(0), key, replicas))
        .collect();
    due.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    due.into_iter()
        .take(room)
        .map(|(_, key, replicas)| (key.clone(), replicas.clone()))
        .collect()
}

/// Replicas and preferred leaders per broker of an assignment, for status and messages: for each
/// broker, (replicas it holds, partitions it is the preferred leader of). A broker named twice in
/// one list holds that partition once.
pub fn load(assignment: &Assignment) -> BTreeMap<i32, (usize, usize)> {
    let mut out: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
    for replicas in assignment.values() {
        for (p, &b) in replicas.iter().enumerate() {
            if replicas[..p].contains(&b) {
                continue;
            }
            let entry = out.entry(b).or_default();
            entry.0 += 1;
            if p == 0 {
                entry.1 += 1;
            }
        }
    }
    out
}

/// The listed brokers, indexed in id order, each with a rack index.
struct Cluster {
    ids: Vec<i32>,
    rack: Vec<usize>,
    rack_sizes: Vec<usize>,
}

impl Cluster {
    fn new(brokers: &[BrokerInfo]) -> Self {
        let mut first: BTreeMap<i32, Option<&str>> = BTreeMap::new();
        for b in brokers {
            first.entry(b.id).or_insert(b.rack.as_deref());
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut ids, mut rack, mut rack_sizes) = (Vec::new(), Vec::new(), Vec::<usize>::new());
        for (id, name) in first {
            let next = rack_sizes.len();
            let r = match name {
                Some(name) => *names.entry(name).or_insert(next),
                None => next,
            };
            if r == next {
                rack_sizes.push(0);
            }
            rack_sizes[r] += 1;
            ids.push(id);
            rack.push(r);
        }
        Cluster {
            ids,
            rack,
            rack_sizes,
        }
    }

    fn index(&self, id: i32) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// Replicas a partition of replication factor `rf` may put in one rack; `None` when `rf` is 0
    /// or exceeds the brokers (such a partition is not moved).
    fn cap(&self, rf: usize) -> Option<usize> {
        if rf == 0 || rf > self.ids.len() {
            return None;
        }
        (1..=rf).find(|&c| self.rack_sizes.iter().map(|&s| s.min(c)).sum::<usize>() >= rf)
    }

    /// Listed replicas of `replicas` per rack.
    fn rack_counts(&self, replicas: &[i32]) -> Vec<usize> {
        let mut out = vec![0; self.rack_sizes.len()];
        for (p, &id) in replicas.iter().enumerate() {
            if let (Some(b), false) = (self.index(id), replicas[..p].contains(&id)) {
                out[self.rack[b]] += 1;
            }
        }
        out
    }
}

/// One entry of a working replica list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// A listed broker, by index.
    In(usize),
    /// A broker that is not listed (or a hole to fill), by id.
    Out(i32),
}

/// Which replicas are holes to fill.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holes {
    /// On unlisted brokers, or naming a broker the list named before.
    Unlisted,
    /// Also those beyond the rack rule's cap.
    Invalid,
}

/// The partitions being placed, in key order.
struct Work<'a> {
    cluster: &'a Cluster,
    keys: Vec<&'a PartitionKey>,
    original: Vec<&'a [i32]>,
    sizes: Vec<u64>,
    lists: Vec<Vec<Place>>,
    /// `Some(cap)` for a partition the planner may move (1 <= replication factor <= brokers).
    caps: Vec<Option<usize>>,
}

impl<'a> Work<'a> {
    /// Keeps what may stay, then fills each hole on the least-loaded eligible broker.
    fn new(input: &PlanInput<'a>, cluster: &'a Cluster, holes: Holes) -> Self {
        let n = cluster.ids.len();
        let mut work = Work {
            cluster,
            keys: Vec::new(),
            original: Vec::new(),
            sizes: Vec::new(),
            lists: Vec::new(),
            caps: Vec::new(),
        };
        for (key, replicas) in input.assignment {
            let cap = cluster.cap(replicas.len());
            let mut in_rack = vec![0usize; cluster.rack_sizes.len()];
            let mut list = Vec::with_capacity(replicas.len());
            for &id in replicas {
                let place = match (cluster.index(id), cap) {
                    (None, _) => Place::Out(id),
                    (Some(b), None) => Place::In(b),
                    (Some(b), Some(cap)) => {
                        let r = cluster.rack[b];
                        let over = holes == Holes::Invalid && in_rack[r] >= cap;
                        if list.contains(&Place::In(b)) || over {
                            Place::Out(id)
                        } else {
                            in_rack[r] += 1;
                            Place::In(b)
                        }
                    }
                };
                list.push(place);
            }
            work.keys.push(key);
            work.original.push(replicas);
            work.sizes.push(input.sizes.get(key).copied().unwrap_or(0));
            work.lists.push(list);
            work.caps.push(cap);
        }
        let (mut load, mut bytes) = (vec![0usize; n], vec![0u128; n]);
        for (list, &size) in work.lists.iter().zip(&work.sizes) {
            for b in held(list) {
                load[b] += 1;
                bytes[b] += u128::from(size);
            }
        }
        for i in 0..work.lists.len() {
            for p in 0..work.lists[i].len() {
                if !matches!(work.lists[i][p], Place::Out(_)) {
                    continue;
                }
                let list = &work.lists[i];
                let in_rack = |r: usize| held(list).filter(|&b| cluster.rack[b] == r).count();
                let best = (0..n)
                    .filter(|&b| !list.contains(&Place::In(b)))
                    .min_by_key(|&b| {
                        let excess = match work.caps[i] {
                            Some(cap) => (in_rack(cluster.rack[b]) + 1).saturating_sub(cap),
                            None => 0,
                        };
                        (excess, load[b], bytes[b], b)
                    });
                if let Some(b) = best {
                    work.lists[i][p] = Place::In(b);
                    load[b] += 1;
                    bytes[b] += u128::from(work.sizes[i]);
                }
            }
        }
        work
    }

    /// Counts per broker of what the engines do not move, as (load, bytes); `pick` chooses the
    /// brokers a fixed list counts for.
    fn fixed(&self, pick: impl Fn(&[Place]) -> Vec<usize>) -> (Vec<i64>, Vec<i128>) {
        let n = self.cluster.ids.len();
        let (mut load, mut bytes) = (vec![0i64; n], vec![0i128; n]);
        for i in (0..self.lists.len()).filter(|&i| !self.is_movable(i)) {
            for b in pick(&self.lists[i]) {
                load[b] += 1;
                bytes[b] += i128::from(self.sizes[i]);
            }
        }
        (load, bytes)
    }

    /// Whether the engines may move partition `i`: its replication factor fits the brokers and,
    /// the holes filled, its list names listed brokers only, each once (always so after
    /// [`Work::new`]; checked so that writing the engine's slots back never shortens a list).
    fn is_movable(&self, i: usize) -> bool {
        self.caps[i].is_some() && held(&self.lists[i]).count() == self.lists[i].len()
    }

    /// The movable partitions, as indexes into the lists.
    fn movable(&self) -> Vec<usize> {
        (0..self.lists.len())
            .filter(|&i| self.is_movable(i))
            .collect()
    }

    fn balance_replicas(&mut self) {
        let movable = self.movable();
        let items = movable
            .iter()
            .map(|&i| {
                let slots: Vec<usize> = held(&self.lists[i]).collect();
                let mut origin: Vec<usize> = self.original[i]
                    .iter()
                    .filter_map(|&id| self.cluster.index(id))
                    .collect();
                origin.sort_unstable();
                origin.dedup();
                Item {
                    size: self.sizes[i],
                    cap: self.caps[i].unwrap_or(1),
                    slots,
                    origin,
                    allowed: None,
                }
            })
            .collect();
        let (load, bytes) = self.fixed(|list| held(list).collect());
        let mut engine = Engine::new(self.cluster.rack.clone(), items, load, bytes, true);
        engine.solve();
        for (item, &i) in engine.items.iter().zip(&movable) {
            self.lists[i] = item.slots.iter().map(|&b| Place::In(b)).collect();
        }
    }

    fn balance_leaders(&mut self) {
        let (mut items, mut owners) = (Vec::new(), Vec::new());
        for i in self.movable() {
            if let Some(&Place::In(first)) = self.lists[i].first() {
                owners.push(i);
                items.push(Item {
                    size: self.sizes[i],
                    cap: 1,
                    slots: vec![first],
                    origin: vec![first],
                    allowed: Some(held(&self.lists[i]).collect()),
                });
            }
        }
        let (load, bytes) = self.fixed(|list| match list.first() {
            Some(&Place::In(b)) => vec![b],
            _ => Vec::new(),
        });
        let n = self.cluster.ids.len();
        let mut engine = Engine::new((0..n).collect(), items, load, bytes, false);
        engine.solve();
        for (item, &i) in engine.items.iter().zip(&owners) {
            let list = &mut self.lists[i];
            if let Some(p) = item
                .slots
                .first()
                .and_then(|&l| list.iter().position(|&x| x == Place::In(l)))
            {
                list.swap(0, p);
            }
        }
    }

    fn finish(self) -> Plan {
        let mut out = Plan::default();
        for i in 0..self.lists.len() {
            let ids: Vec<i32> = self.lists[i]
                .iter()
                .map(|&place| match place {
                    Place::In(b) => self.cluster.ids[b],
                    Place::Out(id) => id,
                })
                .collect();
            if ids.as_slice() == self.original[i] {
                continue;
            }
            let mut added: Vec<i32> = ids
                .iter()
                .copied()
                .filter(|id| !self.original[i].contains(id))
                .collect();
            added.sort_unstable();
            added.dedup();
            out.replica_moves += added.len();
            let copied = self.sizes[i].saturating_mul(added.len() as u64);
            out.bytes = out.bytes.saturating_add(copied);
            out.target.insert(self.keys[i].clone(), ids);
        }
        out
    }
}

/// The listed brokers of a working list, each once.
fn held(list: &[Place]) -> impl Iterator<Item = usize> + '_ {
    list.iter()
        .enumerate()
        .filter_map(|(p, &place)| match place {
            Place::In(b) if !list[..p].contains(&place) => Some(b),
            _ => None,
        })
}

/// Something an [`Engine`] places: a partition's replicas, or its preferred leader.
struct Item {
    size: u64,
    /// Slots the item may put in one rack.
    cap: usize,
    /// The brokers holding it, by position.
    slots: Vec<usize>,
    /// The brokers that held it at the start.
    origin: Vec<usize>,
    /// The brokers it may go to; `None`: any.
    allowed: Option<Vec<usize>>,
}

impl Item {
    /// +1 when `to` did not hold it at the start, -1 when `from` did not.
    fn move_cost(&self, from: usize, to: usize) -> i64 {
        i64::from(!self.origin.contains(&to)) - i64::from(!self.origin.contains(&from))
    }
}

/// Negative-cycle cancelling over brokers for one kind of slot (see the module comment).
struct Engine {
    rack: Vec<usize>,
    items: Vec<Item>,
    load: Vec<i64>,
    bytes: Vec<i128>,
    total_bytes: i128,
    /// Items on each broker.
    held: Vec<BTreeSet<usize>>,
    /// For the edge `a -> b` at `a * n + b`: how many items may move along it at cost -1, 0, +1.
    edges: Vec<[u32; 3]>,
    /// Whether moving an item copies its bytes (replicas) or not (leaders).
    copies: bool,
}

/// An edge that failed to carry a walk; the search is repeated without it.
type Edge = (usize, usize);

impl Engine {
    fn new(
        rack: Vec<usize>,
        items: Vec<Item>,
        mut load: Vec<i64>,
        mut bytes: Vec<i128>,
        copies: bool,
    ) -> Self {
        let n = rack.len();
        let mut held = vec![BTreeSet::new(); n];
        for (i, item) in items.iter().enumerate() {
            for &b in &item.slots {
                load[b] += 1;
                bytes[b] += i128::from(item.size);
                held[b].insert(i);
            }
        }
        let total_bytes = bytes.iter().sum();
        let mut engine = Engine {
            rack,
            items,
            load,
            bytes,
            total_bytes,
            held,
            edges: vec![[0; 3]; n * n],
            copies,
        };
        for i in 0..engine.items.len() {
            engine.count(i, true);
        }
        engine
    }

    fn n(&self) -> usize {
        self.rack.len()
    }

    /// Whether item `i` may move from `from` (which holds it) to `to`.
    fn eligible(&self, i: usize, from: usize, to: usize) -> bool {
        let item = &self.items[i];
        if item.slots.contains(&to) || item.allowed.as_ref().is_some_and(|a| !a.contains(&to)) {
            return false;
        }
        let r = self.rack[to];
        r == self.rack[from] || item.slots.iter().filter(|&&b| self.rack[b] == r).count() < item.cap
    }

    /// Adds (or removes) item `i`'s moves to (from) the edge counts.
    fn count(&mut self, i: usize, add: bool) {
        let n = self.n();
        let item = &self.items[i];
        let targets: Vec<usize> = match &item.allowed {
            Some(allowed) => allowed.clone(),
            None => (0..n).collect(),
        };
        let mut changes = Vec::new();
        for &from in &item.slots {
            for &to in &targets {
                if self.eligible(i, from, to) {
                    let class = match item.move_cost(from, to) {
                        c if c < 0 => 0,
                        0 => 1,
                        _ => 2,
                    };
                    changes.push((from * n + to, class));
                }
            }
        }
        for (edge, class) in changes {
            let c = &mut self.edges[edge][class];
            *c = if add {
                c.saturating_add(1)
            } else {
                c.saturating_sub(1)
            };
        }
    }

    /// The cheapest move along `from -> to`, if any.
    fn cost(&self, from: usize, to: usize) -> Option<i64> {
        let e = &self.edges[from * self.n() + to];
        (0..3).find(|&k| e[k] > 0).map(|k| k as i64 - 1)
    }

    fn move_item(&mut self, i: usize, from: usize, to: usize) {
        self.count(i, false);
        let item = &mut self.items[i];
        if let Some(slot) = item.slots.iter_mut().find(|b| **b == from) {
            *slot = to;
        }
        let size = i128::from(item.size);
        self.held[from].remove(&i);
        self.held[to].insert(i);
        self.load[from] -= 1;
        self.load[to] += 1;
        self.bytes[from] -= size;
        self.bytes[to] += size;
        self.count(i, true);
    }

    /// The item to move along `from -> to` at cost `cost`: the size rule of [`plan`], preferring
    /// an item not already moved along the same walk.
    fn pick(&self, from: usize, to: usize, cost: i64, used: &BTreeSet<usize>) -> Option<usize> {
        let n = self.n() as i128;
        let total = self.total_bytes;
        self.held[from]
            .iter()
            .copied()
            .filter(|&i| self.eligible(i, from, to) && self.items[i].move_cost(from, to) == cost)
            .min_by_key(|&i| {
                let s = i128::from(self.items[i].size);
                let distance = (n * (self.bytes[from] - s) - total).abs()
                    + (n * (self.bytes[to] + s) - total).abs();
                let copied = if self.copies {
                    n * s * i128::from(cost)
                } else {
                    0
                };
                (used.contains(&i), distance + copied, s, i)
            })
    }

    /// Moves one item along each edge of `walk` (a path or a cycle of distinct brokers), all or
    /// nothing; `Err(edge)` names an edge that could not take part.
    fn apply(&mut self, walk: &[Edge]) -> Result<(), Edge> {
        let mut moves = Vec::with_capacity(walk.len());
        let mut used = BTreeSet::new();
        for &(from, to) in walk {
            let cost = self.cost(from, to).ok_or((from, to))?;
            let i = self.pick(from, to, cost, &used).ok_or((from, to))?;
            used.insert(i);
            moves.push((i, from, to));
        }
        // An item moved twice along the walk was checked against the lists before the walk:
        // check its final list (it may enter one rack twice).
        for &i in &used {
            let mine: Vec<&(usize, usize, usize)> = moves.iter().filter(|m| m.0 == i).collect();
            if mine.len() < 2 {
                continue;
            }
            let mut slots = self.items[i].slots.clone();
            for &&(_, from, to) in &mine {
                let p = slots.iter().position(|&b| b == from).ok_or((from, to))?;
                if slots.contains(&to) {
                    return Err((from, to));
                }
                slots[p] = to;
            }
            let cap = self.items[i].cap;
            let crowded = slots.iter().any(|&b| {
                slots
                    .iter()
                    .filter(|&&x| self.rack[x] == self.rack[b])
                    .count()
                    > cap
            });
            if crowded {
                let last = mine.last().map_or((0, 0), |m| (m.1, m.2));
                return Err(last);
            }
        }
        for (i, from, to) in moves {
            self.move_item(i, from, to);
        }
        Ok(())
    }

    /// Cancels negative cycles until none is left.
    fn solve(&mut self) {
        let slots: usize = self.items.iter().map(|i| i.slots.len()).sum();
        // Every step lowers (balance, moves), so this ends; the budget is a guard only.
        let mut budget = (slots + self.n() + 1)
            .saturating_mul(self.n() + 2)
            .saturating_mul(8);
        while budget > 0 {
            budget -= 1;
            if !self.improve_pair() && !self.cancel_cycle() {
                break;
            }
        }
    }

    /// Moves one replica from the most loaded broker that can give one to the least loaded it
    /// reaches that has at least two fewer, along the path of fewest moves. A cycle of negative
    /// moves met on the way is cancelled instead.
    fn improve_pair(&mut self) -> bool {
        let n = self.n();
        let Some(&least) = self.load.iter().min() else {
            return false;
        };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&b| (Reverse(self.load[b]), Reverse(self.bytes[b]), b));
        for from in order {
            if self.load[from] - least < 2 {
                break;
            }
            let mut banned = BTreeSet::new();
            for _ in 0..=n * n {
                let search = bellman_ford(n, &[from], |a, b| {
                    (!banned.contains(&(a, b)))
                        .then(|| self.cost(a, b))
                        .flatten()
                });
                let walk = match search.cycle {
                    Some(cycle) => ring(&cycle),
                    None => {
                        let to = (0..n)
                            .filter(|&b| self.load[b] + 2 <= self.load[from])
                            .filter_map(|b| {
                                search.dist[b].map(|d| (self.load[b], d, self.bytes[b], b))
                            })
                            .min()
                            .map(|t| t.3);
                        match to.and_then(|to| search.path(from, to)) {
                            Some(path) => path,
                            None => break,
                        }
                    }
                };
                match self.apply(&walk) {
                    Ok(()) => return true,
                    Err(edge) => {
                        banned.insert(edge);
                    }
                }
            }
        }
        false
    }

    /// Finds and cancels one negative cycle of the graph with `T`, if any.
    fn cancel_cycle(&mut self) -> bool {
        let n = self.n();
        let t = n;
        // Above the moves of any simple cycle (at most n + 1 edges of cost -1..=1).
        let weight = n as i64 + 3;
        let sources: Vec<usize> = (0..=n).collect();
        let mut banned = BTreeSet::new();
        for _ in 0..=n * n {
            let search = bellman_ford(n + 1, &sources, |a, b| {
                if a == t {
                    Some((1 - 2 * self.load[b]) * weight)
                } else if b == t {
                    Some((2 * self.load[a] + 1) * weight)
                } else if banned.contains(&(a, b)) {
                    None
                } else {
                    self.cost(a, b)
                }
            });
            let Some(mut cycle) = search.cycle else {
                return false;
            };
            let walk = match cycle.iter().position(|&x| x == t) {
                Some(p) => {
                    cycle.rotate_left(p + 1);
                    cycle.pop();
                    cycle.windows(2).map(|w| (w[0], w[1])).collect()
                }
                None => ring(&cycle),
            };
            match self.apply(&walk) {
                Ok(()) => return true,
                Err(edge) => {
                    banned.insert(edge);
                }
            }
        }
        false
    }
}

/// The edges of a cycle given as its nodes in order.
fn ring(cycle: &[usize]) -> Vec<Edge> {
    let mut out: Vec<Edge> = cycle.windows(2).map(|w| (w[0], w[1])).collect();
    if let (Some(&last), Some(&first)) = (cycle.last(), cycle.first()) {
        if cycle.len() > 1 {
            out.push((last, first));
        }
    }
    out
}

/// Shortest distances from `sources`, or a negative cycle.
struct Search {
    dist: Vec<Option<i64>>,
    parent: Vec<Option<usize>>,
    cycle: Option<Vec<usize>>,
}

impl Search {
    /// The edges from `from` to `to` along the shortest-path tree.
    fn path(&self, from: usize, to: usize) -> Option<Vec<Edge>> {
        let mut nodes = vec![to];
        let mut at = to;
        while at != from {
            at = self.parent.get(at).copied().flatten()?;
            if nodes.len() > self.parent.len() {
                return None;
            }
            nodes.push(at);
        }
        nodes.reverse();
        Some(nodes.windows(2).map(|w| (w[0], w[1])).collect())
    }
}

/// Bellman-Ford over `nodes` nodes with edge costs `cost(a, b)` (`None`: no edge).
fn bellman_ford(
    nodes: usize,
    sources: &[usize],
    cost: impl Fn(usize, usize) -> Option<i64>,
) -> Search {
    let mut dist: Vec<Option<i64>> = vec![None; nodes];
    let mut parent: Vec<Option<usize>> = vec![None; nodes];
    for &s in sources {
        if let Some(d) = dist.get_mut(s) {
            *d = Some(0);
        }
    }
    let mut last = None;
    for _ in 0..nodes {
        last = None;
        for a in 0..nodes {
            let Some(da) = dist[a] else { continue };
            for b in 0..nodes {
                if a == b {
                    continue;
                }
                let Some(c) = cost(a, b) else { continue };
                let d = da + c;
                if dist[b].is_none_or(|old| d < old) {
                    dist[b] = Some(d);
                    parent[b] = Some(a);
                    last = Some(b);
                }
            }
        }
        if last.is_none() {
            break;
        }
    }
    let cycle = last.and_then(|changed| {
        let mut at = changed;
        for _ in 0..nodes {
            at = parent[at]?;
        }
        let mut cycle = vec![at];
        let mut next = parent[at]?;
        while next != at {
            if cycle.len() > nodes {
                return None;
            }
            cycle.push(next);
            next = parent[next]?;
        }
        cycle.reverse();
        Some(cycle)
    });
    Search {
        dist,
        parent,
        cycle,
    }
}

#[cfg(test)]
#[path = "rebalance_tests.rs"]
mod tests;
