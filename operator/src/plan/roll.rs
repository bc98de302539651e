//! The operator's rolling restart, one decision at a time. Pure: given what the cluster looks
//! like now (pods, the brokers' partitions and ISRs, the quorum, the consumer groups' health) and
//! the progress recorded in `status.rollout`, [`plan_roll`] says what the status becomes and
//! which pods to delete. The caller writes the status first and acts second, so an operator
//! restarted between the two finds the step in the status and finishes it, and never starts a
//! second restart the status does not show.
//!
//! The gates, in the order they are checked before a broker restarts:
//! 1. `spec.upgrade.paused` holds the roll between brokers;
//! 2. every broker of the cluster is up: its pod Ready and the broker registered;
//! 3. no partition is offline or under-replicated, except those the broker itself is missing
//!    from (restarting it takes nothing from them);
//! 4. every partition the broker is in sync for keeps `min.insync.replicas` + `minIsrHeadroom`
//!    in-sync replicas without it;
//! 5. a quorum voter goes only while every other voter is caught up, and the quorum leader goes
//!    last;
//! 6. the consumer-health gate: no watched group is unhealthy (Burrow's ERR) or further behind
//!    than `maxLagSeconds`.
//!
//! After a restart the broker counts as back when its pod runs the target revision and is
//! Ready, the broker is registered, it is in the ISR of every partition it holds, and
//! `minReadySeconds` have passed since; then preferred leaders are restored. A broker not back
//! within `brokerReadyTimeout` halts the roll. A pod that is not Ready and not on the target
//! revision (a broker stuck on a bad image, say) serves no one: it is replaced at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::listed;
use crate::crd::{RolloutPhase, RolloutStatus};
use crate::health::partitions::{
    brokers_share_partition, classify, would_set_drop_below_min_isr, MinIsr, PartitionReplicas,
    PartitionState,
};

/// Container waiting reasons that mean a pod will not become Ready by itself.
const STUCK_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// One broker pod as Kubernetes reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodView {
    /// Broker id (the pod ordinal).
    pub id: i32,
    /// Pod name.
    pub name: String,
    /// StatefulSet revision the pod was made from.
    pub revision: Option<String>,
    /// Pod Ready condition.
    pub ready: bool,
    /// The pod is being deleted.
    pub terminating: bool,
    /// Why the broker container waits (`ImagePullBackOff`, `CrashLoopBackOff`, ...), when it
    /// does; or why it last terminated, when it restarts.
    pub waiting: Option<String>,
}

/// What the brokers report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaView {
    /// Registered, unfenced brokers (Metadata's broker list).
    pub live: BTreeSet<i32>,
    /// Every partition of every topic.
    pub partitions: Vec<PartitionReplicas>,
    /// `min.insync.replicas` of the topics.
    pub min_isr: MinIsr,
}

/// The metadata quorum as the brokers report it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumView {
    /// Current leader (-1 when none).
    pub leader: i32,
    /// Voters that are not caught up with the leader.
    pub lagging: BTreeSet<i32>,
}

/// The roll's settings, from `spec.upgrade`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollSettings {
    /// Brokers restarted together at most.
    pub max_parallel: usize,
    /// In-sync replicas to keep above `min.insync.replicas`.
    pub min_isr_headroom: i32,
    /// How long a broker must be back before the next restart.
    pub min_ready: Duration,
    /// How long a broker may take to come back.
    pub ready_timeout: Duration,
    /// `spec.upgrade.paused`.
    pub paused: bool,
}

impl Default for RollSettings {
    fn default() -> Self {
        RollSettings {
            max_parallel: 1,
            min_isr_headroom: 0,
            min_ready: Duration::ZERO,
            ready_timeout: Duration::from_secs(300),
            paused: false,
        }
    }
}

/// Everything one decision reads.
#[derive(Debug, Clone)]
pub struct RollInput<'a> {
    /// Now, in milliseconds since the epoch.
    pub now_ms: i64,
    /// The StatefulSet's update revision (the pod template to run).
    pub target_revision: &'a str,
    /// `spec.version`.
    pub target_version: &'a str,
    /// `spec.brokers`.
    pub brokers: i32,
    /// Broker id of the broker set's ordinal 0: the brokers are `offset..offset + brokers`.
    pub offset: i32,
    /// Quorum voters: brokers `offset..offset + voters`.
    pub voters: i32,
    /// The broker pods that exist.
    pub pods: &'a [PodView],
    /// What the brokers report, or why they could not be read.
    pub kafka: Result<&'a KafkaView, String>,
    /// The quorum, or why it could not be read.
    pub quorum: Result<&'a QuorumView, String>,
    /// Consumer groups that hold the roll, each with a sentence (empty: none; always empty
    /// when the gate is off).
    pub lagging_groups: &'a [String],
    /// Why the consumer-health gate cannot judge yet (reason, sentence): the groups are being
    /// sampled, or cannot be read. It holds the roll like a lagging group, without a Warning.
    pub consumer_unknown: Option<(&'static str, String)>,
    /// Settings.
    pub settings: &'a RollSettings,
    /// The progress recorded so far.
    pub previous: Option<&'a RolloutStatus>,
}

/// Something to do after the status is written.
#[derive(Debug, Clone, PartialEq)]
pub enum RollAction {
    /// Delete this broker's pod: the StatefulSet makes it again from the target revision.
    DeletePod {
        /// Broker id.
        id: i32,
        /// Why, for the log.
        why: String,
    },
    /// Ask the brokers to move leadership back to the preferred replicas.
    ElectPreferredLeaders,
    /// Publish an event.
    Event {
        /// Warning (else Normal).
        warning: bool,
        /// CamelCase reason.
        reason: &'static str,
        /// The note.
        message: String,
    },
    /// A broker was restarted and back after this many seconds (for the metrics).
    Restarted {
        /// Broker id.
        id: i32,
        /// Seconds.
        seconds: f64,
    },
}

/// A condition the roll sets, over the one the pod states give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollCondition {
    /// `Progressing` or `Degraded`.
    pub type_: &'static str,
    /// Condition status.
    pub status: bool,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

/// One decision.
#[derive(Debug, Clone, PartialEq)]
pub struct RollPlan {
    /// `status.rollout` as it is to be written (before the actions).
    pub status: RolloutStatus,
    /// What to do once the status is written.
    pub actions: Vec<RollAction>,
    /// Conditions that override the pod-derived ones.
    pub conditions: Vec<RollCondition>,
    /// When to look again, while the roll is not over.
    pub requeue: Option<Duration>,
}

/// RFC 3339 of milliseconds since the epoch.
pub fn rfc3339(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_ms(s: &str) -> Option<i64> {
    s.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

fn ids(list: &[i32]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn pname(p: &PartitionReplicas) -> String {
    format!("{}-{}", p.topic, p.partition)
}

/// Partitions holding a replica on `id` that it is not in sync for.
fn missing_from_isr(kafka: &KafkaView, id: i32) -> Vec<String> {
    kafka
        .partitions
        .iter()
        .filter(|p| p.replicas.contains(&id) && !p.isr.contains(&id))
        .map(pname)
        .collect()
}

/// Partitions that would fall below min ISR + headroom because the brokers of `set` stop (a
/// partition already short without them in its ISR is not made worse by their restart).
fn below_min_isr_without(kafka: &KafkaView, set: &[i32], headroom: i32) -> Vec<String> {
    let headroom = usize::try_from(headroom).unwrap_or(0);
    would_set_drop_below_min_isr(&kafka.partitions, set, &kafka.min_isr, headroom)
        .into_iter()
        .filter(|s| s.stopping_reduces_isr)
        .map(|s| {
            format!(
                "{}-{} (ISR {} of {} needed)",
                s.topic, s.partition, s.isr_without, s.needed
            )
        })
        .collect()
}

/// Offline or under-replicated partitions that hold no replica on a broker of `set`.
fn unhealthy_elsewhere(kafka: &KafkaView, set: &[i32]) -> Vec<String> {
    kafka
        .partitions
        .iter()
        .filter(|p| !p.replicas.iter().any(|r| set.contains(r)))
        .filter_map(|p| match classify(p, kafka.min_isr.for_topic(&p.topic)) {
            PartitionState::Healthy => None,
            PartitionState::Offline => Some(format!("{} offline", pname(p))),
            _ => Some(format!("{} under-replicated", pname(p))),
        })
        .collect()
}

fn share_partition(kafka: &KafkaView, a: i32, b: i32) -> bool {
    brokers_share_partition(&kafka.partitions, a, b)
}

fn pod_stuck(pod: &PodView) -> bool {
    !pod.ready
        && pod
            .waiting
            .as_deref()
            .is_some_and(|w| STUCK_REASONS.contains(&w))
}

/// Why broker `id` in progress is not back yet; `None` when it is.
fn not_back(input: &RollInput<'_>, id: i32, pod: Option<&PodView>) -> Option<String> {
    let Some(pod) = pod else {
        return Some("its pod is being created".into());
    };
    if pod.terminating {
        return Some(format!("pod {} is shutting down", pod.name));
    }
    if pod.revision.as_deref() != Some(input.target_revision) {
        return Some(format!("pod {} still runs the previous revision", pod.name));
    }
    if !pod.ready {
        return Some(match &pod.waiting {
            Some(w) => format!("pod {} is not Ready: {w}", pod.name),
            None => format!("pod {} is not Ready", pod.name),
        });
    }
    let kafka = match &input.kafka {
        Ok(k) => k,
        Err(e) => return Some(format!("the brokers cannot be read ({e})")),
    };
    if !kafka.live.contains(&id) {
        return Some(format!("broker {id} is not registered (or fenced)"));
    }
    let missing = missing_from_isr(kafka, id);
    if !missing.is_empty() {
        return Some(format!(
            "broker {id} is not in the ISR of {} partition(s): {}",
            missing.len(),
            listed(&missing)
        ));
    }
    None
}

/// A plan that looks again in `secs` seconds.
fn after(
    status: RolloutStatus,
    actions: Vec<RollAction>,
    conditions: Vec<RollCondition>,
    secs: u64,
) -> RollPlan {
    RollPlan {
        status,
        actions,
        conditions,
        requeue: Some(Duration::from_secs(secs)),
    }
}

/// `Progressing=True`, reason `RollingOut`.
fn rolling_out(message: String) -> RollCondition {
    RollCondition {
        type_: "Progressing",
        status: true,
        reason: "RollingOut".into(),
        message,
    }
}

fn key(id: i32) -> String {
    id.to_string()
}

/// The next step of the roll. See the module documentation for the rules.
pub fn plan_roll(input: &RollInput<'_>) -> RollPlan {
    let now = input.now_ms;
    let mut st = input.previous.cloned().unwrap_or_default();
    let mut actions = Vec::new();
    let mut conditions = Vec::new();
    let pod = |id: i32| input.pods.iter().find(|p| p.id == id);

    // A new target (a new change, or the spec reverted): the roll starts over from what the
    // pods run; brokers restarted for the old target restart again.
    if st.target_revision.as_deref() != Some(input.target_revision) {
        let first = st.target_revision.is_none();
        st.target_revision = Some(input.target_revision.to_string());
        st.target_version = Some(input.target_version.to_string());
        st.restarted.clear();
        st.restart_seconds.clear();
        st.started_at = None;
        st.finished_at = None;
        // A broker restarted for the old target that is up again goes through the gates like
        // any other; one still down stays in progress (a stuck one is replaced at once below).
        let pods = input.pods;
        st.in_progress.retain(|&id| {
            !first
                && pods
                    .iter()
                    .find(|p| p.id == id)
                    .is_none_or(|p| !p.ready || p.terminating)
        });
        let kept = st.in_progress.clone();
        st.restart_started_at
            .retain(|k, _| kept.iter().any(|id| key(*id) == *k));
        st.caught_up_at.clear();
    }
    st.blocked_reason = None;
    st.blocked_message = None;

    let pending: Vec<i32> = (input.offset..input.offset + input.brokers)
        .filter(|&id| pod(id).is_some_and(|p| p.revision.as_deref() != Some(input.target_revision)))
        .filter(|id| !st.in_progress.contains(id))
        .collect();
    if st.started_at.is_none() && (!pending.is_empty() || !st.in_progress.is_empty()) {
        st.started_at = Some(rfc3339(now));
        st.phase = RolloutPhase::Rolling;
    }

    // 1. The brokers in progress: back, still coming, or stuck.
    let mut waiting_for = Vec::new();
    let mut halted = Vec::new();
    let mut finished_now = false;
    for id in st.in_progress.clone() {
        let p = pod(id);
        let started = st
            .restart_started_at
            .get(&key(id))
            .and_then(|s| parse_ms(s))
            .unwrap_or(now);
        // Recorded but not done: the operator stopped between writing the status and deleting
        // the pod (or the target moved on while the broker was down). Delete it now; the
        // restart counts from now.
        let mut started = started;
        if let Some(p) = p {
            if p.revision.as_deref() != Some(input.target_revision) && !p.terminating {
                started = now;
                st.restart_started_at.insert(key(id), rfc3339(now));
                actions.push(RollAction::DeletePod {
                    id,
                    why: format!("restart of broker {id} recorded in status.rollout"),
                });
            }
        }
        match not_back(input, id, p) {
            None => {
                let back = match st.caught_up_at.get(&key(id)).and_then(|s| parse_ms(s)) {
                    Some(t) => t,
                    None => {
                        st.caught_up_at.insert(key(id), rfc3339(now));
                        now
                    }
                };
                let min_ready = i64::try_from(input.settings.min_ready.as_millis()).unwrap_or(0);
                if now - back < min_ready {
                    waiting_for.push(format!(
                        "broker {id} is back; minReadySeconds pass in {} s",
                        (min_ready - (now - back) + 999) / 1000
                    ));
                    continue;
                }
                // Milliseconds precision in the status is plenty.
                let seconds = ((back - started).max(0) as f64) / 1000.0;
                st.in_progress.retain(|&b| b != id);
                st.restart_started_at.remove(&key(id));
                st.caught_up_at.remove(&key(id));
                if !st.restarted.contains(&id) {
                    st.restarted.push(id);
                }
                st.restart_seconds.insert(key(id), seconds);
                actions.push(RollAction::Restarted { id, seconds });
                finished_now = true;
                actions.push(RollAction::Event {
                    warning: false,
                    reason: "BrokerRestarted",
                    message: format!(
                        "broker {id} is back after {seconds:.1} s: Ready, registered and in every ISR"
                    ),
                });
                actions.push(RollAction::ElectPreferredLeaders);
            }
            Some(why) => {
                st.caught_up_at.remove(&key(id));
                let timeout =
                    i64::try_from(input.settings.ready_timeout.as_millis()).unwrap_or(i64::MAX);
                if now - started > timeout {
                    halted.push(format!(
                        "broker {id} not back {} s after its restart: {why}",
                        (now - started) / 1000
                    ));
                } else {
                    waiting_for.push(why);
                }
            }
        }
    }

    // 2. Pods that are stuck on a revision that is no longer the target serve no one: replace
    //    them at once, whatever the gates say.
    for id in &pending {
        let Some(p) = pod(*id) else { continue };
        if pod_stuck(p) && !p.terminating {
            st.in_progress.push(*id);
            st.restart_started_at.insert(key(*id), rfc3339(now));
            actions.push(RollAction::DeletePod {
                id: *id,
                why: format!(
                    "pod {} is stuck ({}) on a previous revision: replaced at once",
                    p.name,
                    p.waiting.clone().unwrap_or_default()
                ),
            });
            actions.push(RollAction::Event {
                warning: false,
                reason: "BrokerRestarting",
                message: format!(
                    "replacing pod {} at once: it is stuck ({}) and serves no one",
                    p.name,
                    p.waiting.clone().unwrap_or_default()
                ),
            });
        }
    }
    let pending: Vec<i32> = pending
        .into_iter()
        .filter(|id| !st.in_progress.contains(id))
        .collect();
    st.pending = pending.clone();
    st.in_progress.sort_unstable();

    if !halted.is_empty() {
        st.phase = RolloutPhase::Halted;
        let message = format!(
            "{}; the roll stopped. Fix the cause, or revert the change: a stuck broker is replaced at once",
            halted.join("; ")
        );
        st.blocked_reason = Some("RolloutStuck".into());
        st.blocked_message = Some(message.clone());
        if input
            .previous
            .is_none_or(|p| p.phase != RolloutPhase::Halted)
        {
            actions.push(RollAction::Event {
                warning: true,
                reason: "RolloutStuck",
                message: message.clone(),
            });
        }
        conditions.push(RollCondition {
            type_: "Degraded",
            status: true,
            reason: "RolloutStuck".into(),
            message: message.clone(),
        });
        conditions.push(RollCondition {
            type_: "Progressing",
            status: false,
            reason: "RolloutStuck".into(),
            message,
        });
        return after(st, actions, conditions, 10);
    }
    if !st.in_progress.is_empty() {
        st.phase = RolloutPhase::Rolling;
        conditions.push(rolling_out(format!(
            "restarting broker(s) {}: {}; {} restarted, {} to go",
            ids(&st.in_progress),
            if waiting_for.is_empty() {
                "deleting the pod".to_string()
            } else {
                waiting_for.join("; ")
            },
            st.restarted.len(),
            pending.len()
        )));
        return after(st, actions, conditions, 3);
    }

    // A broker just came back and its leaderships are being restored: the next restart is
    // the next decision's, on what the brokers report then.
    if finished_now && !pending.is_empty() {
        st.phase = RolloutPhase::Rolling;
        conditions.push(rolling_out(format!(
            "{} of {} brokers restarted; brokers {} to go",
            st.restarted.len(),
            input.brokers,
            ids(&pending)
        )));
        return after(st, actions, conditions, 2);
    }

    // 3. Nothing in progress and nothing left: the roll is over.
    if pending.is_empty() {
        if st.started_at.is_some() && st.finished_at.is_none() {
            st.finished_at = Some(rfc3339(now));
            st.phase = RolloutPhase::Complete;
            let total = st
                .started_at
                .as_deref()
                .and_then(parse_ms)
                .map(|s| (now - s) as f64 / 1000.0)
                .unwrap_or(0.0);
            actions.push(RollAction::Event {
                warning: false,
                reason: "RolloutComplete",
                message: format!(
                    "all {} brokers run revision {} (version {}): {} restarted in {total:.1} s",
                    input.brokers,
                    input.target_revision,
                    input.target_version,
                    st.restarted.len()
                ),
            });
        } else if st.started_at.is_none() {
            st.phase = RolloutPhase::Idle;
        }
        return RollPlan {
            status: st,
            actions,
            conditions,
            requeue: None,
        };
    }

    // 4. The next restart, if the gates allow one.
    let blocked = |st: &mut RolloutStatus,
                   conditions: &mut Vec<RollCondition>,
                   phase: RolloutPhase,
                   reason: &str,
                   message: String| {
        st.phase = phase;
        st.blocked_reason = Some(reason.to_string());
        st.blocked_message = Some(message.clone());
        conditions.push(RollCondition {
            type_: "Progressing",
            status: false,
            reason: reason.to_string(),
            message,
        });
    };
    if input.settings.paused {
        blocked(
            &mut st,
            &mut conditions,
            RolloutPhase::Paused,
            "RolloutPaused",
            format!(
                "spec.upgrade.paused: brokers {} wait for their restart",
                ids(&pending)
            ),
        );
        return after(st, actions, conditions, 30);
    }
    let kafka = match &input.kafka {
        Ok(k) => k,
        Err(e) => {
            blocked(
                &mut st,
                &mut conditions,
                RolloutPhase::Blocked,
                "BrokersUnreachable",
                format!("the brokers' partitions cannot be read: {e}"),
            );
            return after(st, actions, conditions, 10);
        }
    };
    let down: Vec<String> = (input.offset..input.offset + input.brokers)
        .filter_map(|id| match pod(id) {
            None => Some(format!("broker {id} has no pod")),
            Some(p) if !p.ready || p.terminating => Some(format!("pod {} is not Ready", p.name)),
            Some(_) if !kafka.live.contains(&id) => Some(format!("broker {id} is not registered")),
            Some(_) => None,
        })
        .collect();
    if !down.is_empty() {
        blocked(
            &mut st,
            &mut conditions,
            RolloutPhase::Blocked,
            "BrokerNotReady",
            format!("no restart while a broker is down: {}", listed(&down)),
        );
        return after(st, actions, conditions, 5);
    }

    // Candidates in order: brokers that are not voters, then voters, the quorum leader last.
    let is_voter = |id: i32| id >= input.offset && id < input.offset + input.voters;
    let leader = input.quorum.as_ref().map(|q| q.leader).unwrap_or(-1);
    let mut order = pending.clone();
    order.sort_by_key(|&id| (is_voter(id), id == leader, id));
    let mut chosen: Vec<i32> = Vec::new();
    let mut first_refusal: Option<(&'static str, String)> = None;
    for &id in &order {
        if chosen.len() >= input.settings.max_parallel.max(1) {
            break;
        }
        let refusal: Option<(&'static str, String)> = (|| {
            if chosen.iter().any(|&c| share_partition(kafka, c, id)) {
                return Some((
                    "SharedPartitions",
                    format!(
                        "broker {id} shares partitions with broker(s) {}",
                        ids(&chosen)
                    ),
                ));
            }
            if is_voter(id) && chosen.iter().any(|&c| is_voter(c)) {
                return Some((
                    "QuorumVoter",
                    "two quorum voters never restart together".into(),
                ));
            }
            let mut set = chosen.clone();
            set.push(id);
            let elsewhere = unhealthy_elsewhere(kafka, &set);
            if !elsewhere.is_empty() {
                return Some((
                    "PartitionsUnderReplicated",
                    format!(
                        "broker {id} waits: {} partition(s) are not fully replicated: {}",
                        elsewhere.len(),
                        listed(&elsewhere)
                    ),
                ));
            }
            let below = below_min_isr_without(kafka, &set, input.settings.min_isr_headroom);
            if !below.is_empty() {
                return Some((
                    "MinInSyncReplicas",
                    format!(
                        "broker {id} waits: without it {} partition(s) would have too few in-sync replicas: {}",
                        below.len(),
                        listed(&below)
                    ),
                ));
            }
            if is_voter(id) {
                match &input.quorum {
                    Err(e) => {
                        return Some((
                            "QuorumUnknown",
                            format!(
                                "broker {id} is a quorum voter and the quorum cannot be read: {e}"
                            ),
                        ))
                    }
                    Ok(q) => {
                        let lagging: Vec<i32> =
                            q.lagging.iter().copied().filter(|&v| v != id).collect();
                        if !lagging.is_empty() {
                            return Some((
                                "QuorumNotCaughtUp",
                                format!(
                                    "broker {id} is a quorum voter and voter(s) {} are not caught up with the quorum leader",
                                    ids(&lagging)
                                ),
                            ));
                        }
                        if id == q.leader && pending.iter().any(|&o| o != id) {
                            return Some((
                                "QuorumLeaderLast",
                                format!("broker {id} leads the quorum and restarts last"),
                            ));
                        }
                    }
                }
            }
            None
        })();
        match refusal {
            None => chosen.push(id),
            Some(r) => {
                if first_refusal.is_none() && chosen.is_empty() {
                    first_refusal = Some(r);
                }
            }
        }
    }
    // The consumer gate holds every broker alike.
    if !chosen.is_empty() && !input.lagging_groups.is_empty() {
        chosen.clear();
        first_refusal = Some((
            "ConsumerLagging",
            format!(
                "the roll waits for consumer groups: {}",
                listed(input.lagging_groups)
            ),
        ));
    } else if let (false, Some((reason, message))) =
        (chosen.is_empty(), input.consumer_unknown.as_ref())
    {
        chosen.clear();
        first_refusal = Some((reason, message.clone()));
    }
    if chosen.is_empty() {
        let (reason, message) =
            first_refusal.unwrap_or(("Blocked", format!("brokers {} wait", ids(&pending))));
        let changed = input.previous.is_none_or(|p| {
            p.blocked_reason.as_deref() != Some(reason)
                || p.blocked_message.as_deref() != Some(message.as_str())
        });
        if changed && reason == "ConsumerLagging" {
            actions.push(RollAction::Event {
                warning: true,
                reason: "ConsumerLagging",
                message: message.clone(),
            });
        }
        blocked(
            &mut st,
            &mut conditions,
            RolloutPhase::Blocked,
            reason,
            message,
        );
        return after(st, actions, conditions, 5);
    }
    st.phase = RolloutPhase::Rolling;
    for &id in &chosen {
        st.in_progress.push(id);
        st.restart_started_at.insert(key(id), rfc3339(now));
        let name = pod(id).map(|p| p.name.clone()).unwrap_or_default();
        actions.push(RollAction::Event {
            warning: false,
            reason: "BrokerRestarting",
            message: format!(
                "restarting broker {id} (pod {name}) for revision {}",
                input.target_revision
            ),
        });
        actions.push(RollAction::DeletePod {
            id,
            why: format!("rolling restart to revision {}", input.target_revision),
        });
    }
    st.in_progress.sort_unstable();
    st.pending.retain(|id| !chosen.contains(id));
    conditions.push(rolling_out(format!(
        "restarting broker(s) {}; {} restarted, {} to go",
        ids(&chosen),
        st.restarted.len(),
        st.pending.len()
    )));
    after(st, actions, conditions, 3)
}

/// Brokers restarting together can be at most this many given the assignment: the size of the
/// largest set of brokers sharing no partition and holding at most one voter (greedy, in id
/// order). Reported so a user sees what `maxParallel` can buy.
pub fn parallelism(kafka: &KafkaView, brokers: i32, voters: i32) -> usize {
    let mut chosen: Vec<i32> = Vec::new();
    for id in 0..brokers {
        if id < voters && chosen.iter().any(|&c| c < voters) {
            continue;
        }
        if chosen.iter().all(|&c| !share_partition(kafka, c, id)) {
            chosen.push(id);
        }
    }
    chosen.len()
}

/// Restart seconds by broker, for messages.
pub fn restart_summary(st: &RolloutStatus) -> String {
    let by_id: BTreeMap<i32, f64> = st
        .restart_seconds
        .iter()
        .filter_map(|(k, v)| k.parse().ok().map(|id| (id, *v)))
        .collect();
    by_id
        .iter()
        .map(|(id, s)| format!("broker {id} {s:.1} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "roll_tests.rs"]
mod tests;
