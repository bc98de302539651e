//! Replicas that follow the brokers, one decision at a time. Pure: given the broker set the spec
//! asks for, the StatefulSet's size, what the brokers report (replicas, moves in progress,
//! partition sizes) and the progress recorded in `status.rebalance`, [`decide`] says what the
//! status becomes and which requests to send. The caller writes the status first and acts
//! second, so a restarted operator finds the plan in the status and carries on with it.
//!
//! - **Scale-up**: once every broker is Ready and registered, the replicas spread over all of
//!   them ([`super::rebalance::plan`]), unless `spec.rebalance.onScaleUp` is false.
//! - **Scale-down**: the StatefulSet keeps its size while the brokers it would remove are
//!   drained; it shrinks once none holds a replica (the scale guard checks that on its own).
//! - Moves go in batches of at most `maxConcurrentMoves` partitions, throttled on both sides as
//!   `kafka-reassign-partitions --throttle` does; then the throttles go and preferred leaders are
//!   elected.
//! - A broker set that changes mid-way cancels the moves in progress and plans again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::listed;
use super::rebalance::{self, Assignment, BrokerInfo, PartitionKey, PlanInput};
use crate::crd::{
    PlannedPartition, RebalancePhase, RebalanceReason, RebalanceSpec, RebalanceStatus,
};

/// Topic config listing the replicas throttled on the leader side.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Topic config listing the replicas throttled on the follower side.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
/// Broker config: leader-side bound, bytes/s.
pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
/// Broker config: follower-side bound, bytes/s.
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// What the brokers report, as far as a movement needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoveView {
    /// Every partition's replicas as Metadata lists them (during a move: the target followed by
    /// the replicas leaving).
    pub current: Assignment,
    /// Moves in progress: (topic, partition) → replicas being added.
    pub adding: BTreeMap<PartitionKey, Vec<i32>>,
    /// Registered brokers, with their racks.
    pub brokers: Vec<BrokerInfo>,
    /// Bytes of each partition (its largest replica); empty unless a plan is to be made.
    pub sizes: BTreeMap<PartitionKey, u64>,
}

impl MoveView {
    /// The replicas of each partition before the moves in progress: what a plan starts from.
    pub fn original(&self) -> Assignment {
        self.current
            .iter()
            .map(|(k, replicas)| {
                let adding = self.adding.get(k);
                let kept = replicas
                    .iter()
                    .copied()
                    .filter(|b| adding.is_none_or(|a| !a.contains(b)))
                    .collect();
                (k.clone(), kept)
            })
            .collect()
    }
}

/// How much of the cluster a decision needs to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Nothing: the status stays as it is.
    Nothing,
    /// Metadata and the moves in progress.
    Progress,
    /// Those and every broker's partition sizes (DescribeLogDirs), to make a plan.
    Plan,
}

/// Everything [`decide`] reads.
#[derive(Debug, Clone)]
pub struct MoveInput<'a> {
    /// `spec.rebalance`.
    pub spec: &'a RebalanceSpec,
    /// `status.rebalance` so far.
    pub previous: Option<&'a RebalanceStatus>,
    /// `spec.brokers`: the brokers wanted are `offset..offset + wanted`.
    pub wanted: i32,
    /// The broker id of the broker set's ordinal 0.
    pub offset: i32,
    /// A movement between two broker sets (a blue-green upgrade, or its rollback) instead of
    /// the one a change of `spec.brokers` asks for.
    pub forced: Option<&'a Forced>,
    /// The StatefulSet's replicas now (before this reconcile changes it).
    pub running: i32,
    /// Every broker pod (0..max(wanted, running)) exists and is Ready.
    pub pods_ready: bool,
    /// What the brokers report: `Err` when they cannot be read; `Ok(None)` when not asked.
    pub view: Result<Option<&'a MoveView>, &'a str>,
    /// Now, RFC 3339.
    pub now: &'a str,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

/// A movement of every replica from one broker set to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced {
    /// `BlueGreen` or `Rollback`.
    pub reason: RebalanceReason,
    /// The brokers that hold every replica once done.
    pub to: Vec<i32>,
    /// The brokers every replica leaves.
    pub from: Vec<i32>,
}

/// The brokers a movement spreads the replicas over, and those it drains.
fn sets(wanted: i32, running: i32, offset: i32, forced: Option<&Forced>) -> (Vec<i32>, Vec<i32>) {
    match forced {
        Some(f) => (f.to.clone(), f.from.clone()),
        None => (
            (offset..offset + wanted).collect(),
            (offset + wanted..offset + running).collect(),
        ),
    }
}

/// A request the caller sends, in order, after writing the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveAction {
    /// Throttles on: `rate` on both sides of every broker in `brokers`, and per topic the
    /// leader-side and follower-side replica lists.
    Throttle {
        /// Brokers whose rates are set.
        brokers: Vec<i32>,
        /// Bytes/s.
        rate: i64,
        /// Topic → (leader-side list, follower-side list).
        topics: BTreeMap<String, (String, String)>,
    },
    /// AlterPartitionReassignments: start these moves (`Some`) or cancel them (`None`).
    Reassign(BTreeMap<PartitionKey, Option<Vec<i32>>>),
    /// Throttles off: the rates of `brokers` and the lists of `topics`.
    Unthrottle {
        /// Brokers whose rates are removed.
        brokers: Vec<i32>,
        /// Topics whose throttled-replica lists are removed.
        topics: Vec<String>,
    },
    /// ElectLeaders PREFERRED for every partition.
    ElectPreferred,
    /// A Kubernetes event on the KafkaCluster (warning or not, reason, message).
    Event(bool, &'static str, String),
}

/// What a reconcile does about replica movement.
#[derive(Debug, Clone, PartialEq)]
pub struct MoveDecision {
    /// The next `status.rebalance` (`None`: unchanged).
    pub status: Option<RebalanceStatus>,
    /// Requests, in order.
    pub actions: Vec<MoveAction>,
    /// A scale-down is being drained (the StatefulSet keeps its size meanwhile).
    pub draining: bool,
    /// Why the movement cannot go on (for a condition), when it cannot.
    pub blocked: Option<String>,
    /// Reconcile again this soon.
    pub requeue: Option<Duration>,
}

impl MoveDecision {
    fn unchanged() -> MoveDecision {
        MoveDecision {
            status: None,
            actions: Vec::new(),
            draining: false,
            blocked: None,
            requeue: None,
        }
    }
}

fn active(s: &RebalanceStatus) -> bool {
    matches!(
        s.phase,
        RebalancePhase::Waiting | RebalancePhase::Moving | RebalancePhase::Blocked
    )
}

fn key_name((topic, partition): &PartitionKey) -> String {
    format!("{topic}-{partition}")
}

/// Whether `p` records the drain of `removing` as done (the StatefulSet shrinks next).
fn drained(p: &RebalanceStatus, wanted_set: &[i32], removing: &[i32]) -> bool {
    p.phase == RebalancePhase::Complete
        && p.reason == Some(RebalanceReason::ScaleDown)
        && p.brokers == wanted_set
        && !removing.is_empty()
        && removing.iter().all(|b| p.removing.contains(b))
}

/// What a reconcile must read before [`decide`].
pub fn need(
    spec: &RebalanceSpec,
    previous: Option<&RebalanceStatus>,
    wanted: i32,
    running: i32,
    offset: i32,
    forced: Option<&Forced>,
) -> Need {
    let (wanted_set, removing) = sets(wanted, running, offset, forced);
    if let Some(f) = forced {
        return match previous {
            Some(p) if p.reason == Some(f.reason) && p.brokers == wanted_set => {
                if p.phase == RebalancePhase::Complete {
                    Need::Nothing
                } else if active(p) && !p.plan.is_empty() {
                    Need::Progress
                } else {
                    Need::Plan
                }
            }
            _ => Need::Plan,
        };
    }
    match previous {
        Some(p) if drained(p, &wanted_set, &removing) => Need::Nothing,
        Some(p) if active(p) => {
            if p.brokers != wanted_set || p.plan.is_empty() {
                Need::Plan
            } else {
                Need::Progress
            }
        }
        _ if running > wanted => Need::Plan,
        Some(p) if spec.on_scale_up && grew(&p.brokers, &wanted_set) => Need::Plan,
        None if spec.on_scale_up && running < wanted => Need::Plan,
        _ => Need::Nothing,
    }
}

/// Whether `now` holds brokers `before` did not hold (and keeps all of those).
fn grew(before: &[i32], now: &[i32]) -> bool {
    now.len() > before.len() && before.iter().all(|b| now.contains(b))
}

/// The next step of replica movement.
pub fn decide(input: &MoveInput) -> MoveDecision {
    let (wanted_set, removing) = sets(input.wanted, input.running, input.offset, input.forced);
    let previous = input.previous;
    if let Some(f) = input.forced {
        let same = |p: &&RebalanceStatus| p.reason == Some(f.reason) && p.brokers == wanted_set;
        if previous
            .filter(same)
            .is_some_and(|p| p.phase == RebalancePhase::Complete)
        {
            return MoveDecision::unchanged();
        }
        if let Some(p) = previous.filter(|p| active(p) && !same(p)) {
            return restart(input, p, &wanted_set);
        }
        if let Some(p) = previous.filter(|p| active(p) && !p.plan.is_empty()) {
            return carry_on(input, p, &removing);
        }
        return start(input, previous, f.reason, &wanted_set, &removing);
    }
    if previous.is_some_and(|p| drained(p, &wanted_set, &removing)) {
        return MoveDecision::unchanged();
    }

    // A movement under way for another broker set: cancel its moves, then plan again.
    if let Some(p) = previous.filter(|p| active(p) && p.brokers != wanted_set) {
        return restart(input, p, &wanted_set);
    }
    if let Some(p) = previous.filter(|p| active(p) && !p.plan.is_empty()) {
        return carry_on(input, p, &removing);
    }
    let reason = if !removing.is_empty() {
        Some(RebalanceReason::ScaleDown)
    } else if let Some(p) = previous.filter(|p| active(p)) {
        if p.reason == Some(RebalanceReason::ScaleDown) {
            // The StatefulSet shrank before anything had to move (nothing was on the brokers
            // it removed): drained.
            let status = RebalanceStatus {
                brokers: wanted_set,
                ..p.clone()
            };
            return finish(input, status, Vec::new(), RebalanceReason::ScaleDown);
        }
        p.reason
    } else if input.spec.on_scale_up
        && match previous {
            Some(p) => grew(&p.brokers, &wanted_set),
            // Nothing recorded yet (a new cluster, or one from before the operator moved
            // replicas): the brokers the StatefulSet had are the ones that hold replicas.
            None => input.running < input.wanted,
        }
    {
        Some(RebalanceReason::ScaleUp)
    } else {
        None
    };
    let Some(reason) = reason else {
        // Nothing to move: record the broker set the replicas are spread over.
        return match previous {
            Some(p) if p.brokers == wanted_set => MoveDecision::unchanged(),
            Some(p) => MoveDecision {
                status: Some(RebalanceStatus {
                    brokers: wanted_set,
                    removing: Vec::new(),
                    ..p.clone()
                }),
                ..MoveDecision::unchanged()
            },
            None => MoveDecision {
                status: Some(RebalanceStatus {
                    phase: RebalancePhase::Idle,
                    brokers: wanted_set,
                    ..RebalanceStatus::default()
                }),
                ..MoveDecision::unchanged()
            },
        };
    };
    start(input, previous, reason, &wanted_set, &removing)
}

fn started_at(input: &MoveInput, previous: Option<&RebalanceStatus>) -> Option<String> {
    previous
        .filter(|p| active(p))
        .and_then(|p| p.started_at.clone())
        .or_else(|| Some(input.now.to_string()))
}

fn waiting(
    input: &MoveInput,
    previous: Option<&RebalanceStatus>,
    reason: RebalanceReason,
    wanted_set: &[i32],
    removing: &[i32],
    phase: RebalancePhase,
    message: String,
) -> MoveDecision {
    MoveDecision {
        status: Some(RebalanceStatus {
            phase,
            reason: Some(reason),
            brokers: wanted_set.to_vec(),
            removing: removing.to_vec(),
            started_at: started_at(input, previous),
            message: message.clone(),
            ..RebalanceStatus::default()
        }),
        actions: Vec::new(),
        draining: reason == RebalanceReason::ScaleDown,
        blocked: (phase == RebalancePhase::Blocked).then_some(message),
        requeue: Some(Duration::from_secs(5)),
    }
}

/// Plans a movement for `wanted_set` and starts it.
fn start(
    input: &MoveInput,
    previous: Option<&RebalanceStatus>,
    reason: RebalanceReason,
    wanted_set: &[i32],
    removing: &[i32],
) -> MoveDecision {
    let hold = |phase, message| {
        waiting(
            input, previous, reason, wanted_set, removing, phase, message,
        )
    };
    let view = match input.view {
        Ok(Some(v)) => v,
        Ok(None) => {
            return hold(
                RebalancePhase::Waiting,
                "reading the brokers' partitions".into(),
            )
        }
        Err(e) => {
            return hold(
                RebalancePhase::Blocked,
                format!("the brokers' partitions cannot be read: {e}"),
            )
        }
    };
    let registered: BTreeSet<i32> = view.brokers.iter().map(|b| b.id).collect();
    let missing: Vec<String> = wanted_set
        .iter()
        .filter(|b| !registered.contains(b))
        .map(|b| b.to_string())
        .collect();
    if !input.pods_ready || !missing.is_empty() {
        let message = if missing.is_empty() {
            "waiting for every broker pod to be Ready".to_string()
        } else {
            format!(
                "waiting for brokers {} to be Ready and registered",
                listed(&missing)
            )
        };
        return hold(RebalancePhase::Waiting, message);
    }
    if !view.adding.is_empty() {
        // Someone else's moves (or ones from before a restart) finish first.
        let moving: Vec<String> = view.adding.keys().map(key_name).collect();
        return hold(
            RebalancePhase::Waiting,
            format!(
                "waiting for the reassignments in progress to finish: {}",
                listed(&moving)
            ),
        );
    }
    let brokers: Vec<BrokerInfo> = view
        .brokers
        .iter()
        .filter(|b| wanted_set.contains(&b.id))
        .cloned()
        .collect();
    let assignment = view.original();
    let plan_input = PlanInput {
        brokers: &brokers,
        assignment: &assignment,
        sizes: &view.sizes,
    };
    let plan = if input.spec.on_scale_up || input.forced.is_some() {
        rebalance::plan(&plan_input)
    } else {
        rebalance::drain(&plan_input)
    };
    // Partitions the plan could not take off the removed brokers (too few brokers left for
    // their replication factor) block the scale-down.
    let stranded: Vec<String> = assignment
        .iter()
        .filter(|(k, replicas)| {
            let after = plan.target.get(*k).unwrap_or(replicas);
            after.iter().any(|b| removing.contains(b))
        })
        .map(|(k, _)| key_name(k))
        .collect();
    if !stranded.is_empty() {
        return hold(RebalancePhase::Blocked, format!(
                "partitions {} cannot leave brokers {removing:?}: their replication factor needs more brokers than the {} that stay",
                listed(&stranded),
                wanted_set.len()
            ),
        );
    }
    let entries: Vec<PlannedPartition> = plan
        .target
        .iter()
        .map(|((topic, partition), replicas)| {
            let before = assignment
                .get(&(topic.clone(), *partition))
                .cloned()
                .unwrap_or_default();
            let added = replicas.iter().filter(|b| !before.contains(b)).count() as u64;
            let size = view
                .sizes
                .get(&(topic.clone(), *partition))
                .copied()
                .unwrap_or(0);
            PlannedPartition {
                topic: topic.clone(),
                partition: *partition,
                replicas: replicas.clone(),
                bytes: i64::try_from(size.saturating_mul(added)).unwrap_or(i64::MAX),
            }
        })
        .collect();
    let what = match reason {
        RebalanceReason::ScaleUp => format!("spreading replicas over brokers {wanted_set:?}"),
        RebalanceReason::ScaleDown => format!("draining brokers {removing:?}"),
        RebalanceReason::BlueGreen => {
            format!(
                "moving every replica from brokers {removing:?} to the new brokers {wanted_set:?}"
            )
        }
        RebalanceReason::Rollback => {
            format!("moving every replica back from brokers {removing:?} to brokers {wanted_set:?}")
        }
    };
    let mut status = RebalanceStatus {
        phase: RebalancePhase::Moving,
        reason: Some(reason),
        brokers: wanted_set.to_vec(),
        removing: removing.to_vec(),
        partitions_total: i32::try_from(entries.len()).unwrap_or(i32::MAX),
        partitions_done: 0,
        replica_moves: i32::try_from(plan.replica_moves).unwrap_or(i32::MAX),
        bytes_total: i64::try_from(plan.bytes).unwrap_or(i64::MAX),
        bytes_moved: 0,
        in_progress: Vec::new(),
        plan: entries,
        started_at: started_at(input, previous),
        finished_at: None,
        seconds: None,
        message: what.clone(),
    };
    if status.plan.is_empty() {
        return finish(input, status, Vec::new(), reason);
    }
    let mut actions = vec![MoveAction::Event(
        false,
        "RebalanceStarted",
        format!(
            "{what}: {} partitions, {} replicas, {} bytes to copy",
            status.partitions_total, status.replica_moves, status.bytes_total
        ),
    )];
    if input.spec.throttle_bytes_per_second > 0 {
        actions.push(MoveAction::Throttle {
            brokers: registered.iter().copied().collect(),
            rate: input.spec.throttle_bytes_per_second,
            topics: throttled_replicas(&assignment, &status.plan),
        });
    }
    let mut decision = progress(input, &mut status, view, actions);
    if decision.status.is_none() {
        decision.status = Some(status);
    }
    decision
}

/// Per topic, Kafka's throttled-replica lists for a plan: the leader side lists the replicas a
/// moving partition has now, the follower side those it gains.
pub fn throttled_replicas(
    assignment: &Assignment,
    plan: &[PlannedPartition],
) -> BTreeMap<String, (String, String)> {
    let mut lists: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for p in plan {
        let before = assignment
            .get(&(p.topic.clone(), p.partition))
            .cloned()
            .unwrap_or_default();
        let entry = lists.entry(p.topic.clone()).or_default();
        for b in &before {
            entry.0.push(format!("{}:{b}", p.partition));
        }
        for b in p.replicas.iter().filter(|b| !before.contains(b)) {
            entry.1.push(format!("{}:{b}", p.partition));
        }
    }
    lists
        .into_iter()
        .map(|(t, (l, f))| (t, (l.join(","), f.join(","))))
        .collect()
}

/// Counts what is done and submits the next batch; finishes when everything is done.
fn progress(
    input: &MoveInput,
    status: &mut RebalanceStatus,
    view: &MoveView,
    mut actions: Vec<MoveAction>,
) -> MoveDecision {
    let reason = status.reason.unwrap_or(RebalanceReason::ScaleUp);
    let mut target = Assignment::new();
    let mut done = 0usize;
    let mut bytes_moved = 0i64;
    for p in &status.plan {
        let key = (p.topic.clone(), p.partition);
        let finished = match view.current.get(&key) {
            // A partition whose topic is gone has nothing left to move.
            None => true,
            Some(replicas) => replicas == &p.replicas && !view.adding.contains_key(&key),
        };
        if finished {
            done += 1;
            bytes_moved = bytes_moved.saturating_add(p.bytes);
        } else {
            target.insert(key, p.replicas.clone());
        }
    }
    status.partitions_done = i32::try_from(done).unwrap_or(i32::MAX);
    status.bytes_moved = bytes_moved;
    let in_progress: BTreeSet<PartitionKey> = view.adding.keys().cloned().collect();
    status.in_progress = in_progress
        .iter()
        .filter(|k| target.contains_key(*k))
        .map(key_name)
        .collect();
    if target.is_empty() && in_progress.is_empty() {
        return finish(input, status.clone(), actions, reason);
    }
    let registered: BTreeSet<i32> = view.brokers.iter().map(|b| b.id).collect();
    let absent: Vec<String> = status
        .brokers
        .iter()
        .filter(|b| !registered.contains(b))
        .map(|b| b.to_string())
        .collect();
    let mut blocked = None;
    if !input.pods_ready || !absent.is_empty() {
        // Moves in progress go on; no new ones start while a broker is away.
        let message = if absent.is_empty() {
            "a broker pod is not Ready: no new moves start until it is".to_string()
        } else {
            format!(
                "brokers {} are not registered: no new moves start until they are",
                listed(&absent)
            )
        };
        status.phase = RebalancePhase::Blocked;
        status.message = message.clone();
        blocked = Some(message);
    } else {
        status.phase = RebalancePhase::Moving;
        let max = usize::try_from(input.spec.max_concurrent_moves)
            .unwrap_or(1)
            .max(1);
        let batch = rebalance::next_batch(&target, &view.current, &in_progress, &view.sizes, max);
        if !batch.is_empty() {
            status
                .in_progress
                .extend(batch.iter().map(|(k, _)| key_name(k)));
            status.in_progress.sort();
            actions.push(MoveAction::Reassign(
                batch.into_iter().map(|(k, r)| (k, Some(r))).collect(),
            ));
        }
        status.message = format!(
            "{} of {} partitions moved, {} of {} bytes",
            status.partitions_done, status.partitions_total, status.bytes_moved, status.bytes_total
        );
    }
    MoveDecision {
        status: None,
        actions,
        draining: reason == RebalanceReason::ScaleDown,
        blocked,
        requeue: Some(Duration::from_secs(3)),
    }
}

/// A movement under way: the next batch, or the end.
fn carry_on(input: &MoveInput, previous: &RebalanceStatus, removing: &[i32]) -> MoveDecision {
    let view = match input.view {
        Ok(Some(v)) => v,
        Ok(None) => return MoveDecision::unchanged(),
        Err(e) => {
            let message = format!("the brokers cannot be read: {e}");
            return MoveDecision {
                status: Some(RebalanceStatus {
                    phase: RebalancePhase::Blocked,
                    message: message.clone(),
                    ..previous.clone()
                }),
                actions: Vec::new(),
                draining: previous.reason == Some(RebalanceReason::ScaleDown),
                blocked: Some(message),
                requeue: Some(Duration::from_secs(5)),
            };
        }
    };
    let mut status = previous.clone();
    if !removing.is_empty() {
        status.removing = removing.to_vec();
    }
    let mut decision = progress(input, &mut status, view, Vec::new());
    if decision.status.is_none() {
        decision.status = Some(status);
    }
    decision
}

/// The broker set changed mid-way: cancel the moves in progress, then plan again.
fn restart(input: &MoveInput, previous: &RebalanceStatus, wanted_set: &[i32]) -> MoveDecision {
    let view = match input.view {
        Ok(Some(v)) => v,
        _ => return MoveDecision::unchanged(),
    };
    let planned: BTreeSet<PartitionKey> = previous
        .plan
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    let cancel: BTreeMap<PartitionKey, Option<Vec<i32>>> = view
        .adding
        .keys()
        .filter(|k| planned.contains(*k))
        .map(|k| (k.clone(), None))
        .collect();
    let mut actions = Vec::new();
    let message = format!(
        "the brokers changed from {:?} to {wanted_set:?}: {} moves cancelled, planning again",
        previous.brokers,
        cancel.len()
    );
    actions.push(MoveAction::Event(
        false,
        "RebalanceReplanned",
        message.clone(),
    ));
    if !cancel.is_empty() {
        actions.push(MoveAction::Reassign(cancel));
    }
    actions.push(MoveAction::Unthrottle {
        brokers: view.brokers.iter().map(|b| b.id).collect(),
        topics: plan_topics(&previous.plan),
    });
    MoveDecision {
        status: Some(RebalanceStatus {
            phase: RebalancePhase::Waiting,
            reason: Some(match input.forced {
                Some(f) => f.reason,
                None if input.running > input.wanted => RebalanceReason::ScaleDown,
                None => RebalanceReason::ScaleUp,
            }),
            brokers: wanted_set.to_vec(),
            removing: sets(input.wanted, input.running, input.offset, input.forced).1,
            plan: Vec::new(),
            in_progress: Vec::new(),
            message,
            ..previous.clone()
        }),
        actions,
        draining: input.forced.is_none() && input.running > input.wanted,
        blocked: None,
        requeue: Some(Duration::from_secs(2)),
    }
}

fn plan_topics(plan: &[PlannedPartition]) -> Vec<String> {
    let topics: BTreeSet<String> = plan.iter().map(|p| p.topic.clone()).collect();
    topics.into_iter().collect()
}

fn seconds_between(start: Option<&str>, end_ms: i64) -> Option<f64> {
    let start: k8s_openapi::jiff::Timestamp = start?.parse().ok()?;
    Some((end_ms - start.as_millisecond()) as f64 / 1000.0)
}

/// Everything moved: throttles off, preferred leaders, `Complete`.
fn finish(
    input: &MoveInput,
    mut status: RebalanceStatus,
    mut actions: Vec<MoveAction>,
    reason: RebalanceReason,
) -> MoveDecision {
    let brokers: Vec<i32> = status
        .brokers
        .iter()
        .chain(status.removing.iter())
        .copied()
        .collect();
    if input.spec.throttle_bytes_per_second > 0 && !status.plan.is_empty() {
        actions.push(MoveAction::Unthrottle {
            brokers,
            topics: plan_topics(&status.plan),
        });
    }
    if !status.plan.is_empty() {
        actions.push(MoveAction::ElectPreferred);
    }
    status.phase = RebalancePhase::Complete;
    status.partitions_done = status.partitions_total;
    status.bytes_moved = status.bytes_total;
    status.in_progress = Vec::new();
    status.plan = Vec::new();
    status.finished_at = Some(input.now.to_string());
    status.seconds = seconds_between(status.started_at.as_deref(), input.now_ms)
        .map(|s| (s * 10.0).round() / 10.0);
    let took = status
        .seconds
        .map(|s| format!(" in {s:.1} s"))
        .unwrap_or_default();
    let summary = format!(
        "{} partitions, {} replicas, {} bytes moved{took}",
        status.partitions_total, status.replica_moves, status.bytes_total
    );
    status.message = match reason {
        RebalanceReason::ScaleUp => format!(
            "replicas spread over brokers {:?}: {summary}",
            status.brokers
        ),
        RebalanceReason::ScaleDown => {
            format!("brokers {:?} drained: {summary}", status.removing)
        }
        RebalanceReason::BlueGreen | RebalanceReason::Rollback => format!(
            "every replica moved from brokers {:?} to brokers {:?}: {summary}",
            status.removing, status.brokers
        ),
    };
    if reason == RebalanceReason::ScaleDown {
        actions.push(MoveAction::Event(
            false,
            "BrokersDrained",
            status.message.clone(),
        ));
    }
    actions.push(MoveAction::Event(
        false,
        "RebalanceComplete",
        status.message.clone(),
    ));
    MoveDecision {
        status: Some(status),
        actions,
        draining: false,
        blocked: None,
        requeue: Some(Duration::from_secs(2)),
    }
}

#[cfg(test)]
#[path = "movement_tests.rs"]
mod tests;
