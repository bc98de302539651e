use super::*;

const NEW: &str = "rev-new";
const OLD: &str = "rev-old";

fn pods(revs: &[&str]) -> Vec<PodView> {
    revs.iter()
        .enumerate()
        .map(|(i, r)| PodView {
            id: i as i32,
            name: format!("kc-{i}"),
            revision: Some(r.to_string()),
            ready: true,
            terminating: false,
            waiting: None,
        })
        .collect()
}

fn part(topic: &str, p: i32, replicas: &[i32], isr: &[i32]) -> PartitionReplicas {
    PartitionReplicas {
        topic: topic.into(),
        partition: p,
        leader: *isr.first().unwrap_or(&-1),
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
    }
}

/// Three brokers, RF 3, min ISR 2, all in sync.
fn healthy3() -> KafkaView {
    KafkaView {
        live: [0, 1, 2].into(),
        partitions: (0..3)
            .map(|p| part("t", p, &[0, 1, 2], &[0, 1, 2]))
            .collect(),
        min_isr: MinIsr::new(2),
    }
}

fn quorum(leader: i32) -> QuorumView {
    QuorumView {
        leader,
        lagging: BTreeSet::new(),
    }
}

struct Case {
    now: i64,
    pods: Vec<PodView>,
    kafka: KafkaView,
    quorum: QuorumView,
    lagging: Vec<String>,
    unknown: Option<(&'static str, String)>,
    settings: RollSettings,
    offset: i32,
    voters: i32,
    previous: Option<RolloutStatus>,
}

impl Case {
    fn new(revs: &[&str]) -> Case {
        Case {
            now: 1_000_000,
            pods: pods(revs),
            kafka: healthy3(),
            quorum: quorum(0),
            lagging: Vec::new(),
            unknown: None,
            settings: RollSettings::default(),
            offset: 0,
            voters: 3,
            previous: None,
        }
    }

    /// The input of a decision towards `target`.
    fn input<'a>(&'a self, target: &'a str) -> RollInput<'a> {
        RollInput {
            now_ms: self.now,
            target_revision: target,
            target_version: "0.2.0",
            brokers: self.pods.len() as i32,
            offset: self.offset,
            voters: self.voters,
            pods: &self.pods,
            kafka: Ok(&self.kafka),
            quorum: Ok(&self.quorum),
            lagging_groups: &self.lagging,
            consumer_unknown: self.unknown.clone(),
            settings: &self.settings,
            previous: self.previous.as_ref(),
        }
    }

    fn plan(&self) -> RollPlan {
        plan_roll(&self.input(NEW))
    }

    /// Plans, then takes the result as the recorded progress and moves the clock.
    fn step(&mut self, advance_ms: i64) -> RollPlan {
        let plan = self.plan();
        self.previous = Some(plan.status.clone());
        self.now += advance_ms;
        plan
    }

    /// The pod of `id` restarted: new revision, Ready.
    fn restarted(&mut self, id: usize) {
        self.pods[id].revision = Some(NEW.into());
        self.pods[id].ready = true;
    }
}

fn deleted(plan: &RollPlan) -> Vec<i32> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            RollAction::DeletePod { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn events(plan: &RollPlan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            RollAction::Event { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// The decision deletes no pod and holds the roll for `reason`.
fn assert_held(plan: &RollPlan, reason: &str) {
    assert!(deleted(plan).is_empty(), "{plan:?}");
    assert_eq!(
        plan.status.blocked_reason.as_deref(),
        Some(reason),
        "{plan:?}"
    );
}

fn condition<'a>(plan: &'a RollPlan, type_: &str) -> Option<&'a RollCondition> {
    plan.conditions.iter().find(|c| c.type_ == type_)
}

#[test]
fn nothing_to_roll_is_idle() {
    let c = Case::new(&[NEW, NEW, NEW]);
    let plan = c.plan();
    assert_eq!(plan.status.phase, RolloutPhase::Idle);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.requeue, None);
}

#[test]
fn one_broker_at_a_time_leader_last_with_seconds() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.quorum = quorum(1);
    // First: a voter that does not lead the quorum, lowest id.
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![0]);
    assert_eq!(plan.status.in_progress, vec![0]);
    assert_eq!(plan.status.pending, vec![1, 2]);
    assert_eq!(plan.status.phase, RolloutPhase::Rolling);
    assert!(plan.status.started_at.is_some());
    assert_eq!(events(&plan), vec!["BrokerRestarting"]);

    // Broker 0 is back with its pod, but out of every ISR: nothing else starts.
    c.pods[0].terminating = true;
    let plan = c.step(1000);
    assert!(deleted(&plan).is_empty(), "{plan:?}");
    c.pods[0].terminating = false;
    c.restarted(0);
    for p in &mut c.kafka.partitions {
        p.isr = vec![1, 2];
    }
    let plan = c.step(2000);
    assert!(deleted(&plan).is_empty(), "{plan:?}");
    assert!(condition(&plan, "Progressing")
        .unwrap()
        .message
        .contains("not in the ISR of 3 partition(s)"));

    // In sync again: done after 4 s (1 + 1 + 2), leaders restored, and broker 2 (not the quorum
    // leader) goes next in the same decision.
    c.kafka = healthy3();
    let plan = c.step(1000);
    assert_eq!(plan.status.restarted, vec![0]);
    assert_eq!(plan.status.restart_seconds.get("0"), Some(&4.0));
    assert!(plan.actions.contains(&RollAction::ElectPreferredLeaders));
    assert!(events(&plan).contains(&"BrokerRestarted"));
    // Not in the same decision: the next restart comes on the next pass.
    assert!(deleted(&plan).is_empty());
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![2]);
    c.restarted(2);
    c.step(1000);
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![1], "the quorum leader last");
    c.restarted(1);
    let plan = c.step(1000);
    assert_eq!(plan.status.phase, RolloutPhase::Complete);
    assert!(plan.status.finished_at.is_some());
    assert_eq!(plan.status.restarted, vec![0, 2, 1]);
    assert_eq!(events(&plan), vec!["BrokerRestarted", "RolloutComplete"]);
    assert_eq!(plan.requeue, None);
    // And stays complete, without a second event.
    let plan = c.step(1000);
    assert_eq!(plan.status.phase, RolloutPhase::Complete);
    assert!(plan.actions.is_empty());
}

#[test]
fn never_below_min_isr() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    // Broker 1 is out of partition t-0's ISR. Broker 1 itself may go: it takes nothing from
    // t-0, and t-1, t-2 keep two in sync.
    c.kafka.partitions[0].isr = vec![0, 2];
    assert_eq!(deleted(&c.plan()), vec![1]);
    // Once it has, broker 2 may not: t-0 would keep one in-sync replica.
    c.pods[1].revision = Some(NEW.into());
    let plan = c.plan();
    assert!(deleted(&plan).is_empty(), "{plan:?}");
    let progressing = condition(&plan, "Progressing").unwrap();
    assert!(!progressing.status);
    assert_eq!(progressing.reason, "MinInSyncReplicas");
    assert!(
        progressing.message.contains("t-0 (ISR 1 of 2 needed)"),
        "{}",
        progressing.message
    );
}

#[test]
fn headroom_asks_for_more() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.settings.min_isr_headroom = 1;
    assert_held(&c.plan(), "MinInSyncReplicas");
}

#[test]
fn under_replicated_elsewhere_blocks() {
    let mut c = Case::new(&[OLD, OLD, OLD, NEW]);
    c.kafka.live.insert(3);
    // Partitions on brokers 0-2 are fine; one on broker 3 alone lacks a follower.
    c.kafka.partitions.push(part("u", 0, &[3, 4], &[3]));
    c.kafka.min_isr = MinIsr::new(2).with_topic("u", 1);
    let plan = c.plan();
    assert_held(&plan, "PartitionsUnderReplicated");
    assert!(plan
        .status
        .blocked_message
        .unwrap()
        .contains("u-0 under-replicated"));
}

#[test]
fn a_down_broker_blocks() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.kafka.live.remove(&2);
    assert_eq!(
        c.plan().status.blocked_reason.as_deref(),
        Some("BrokerNotReady")
    );
    c.kafka.live.insert(2);
    c.pods[1].ready = false;
    let plan = c.plan();
    assert_eq!(
        plan.status.blocked_reason.as_deref(),
        Some("BrokerNotReady")
    );
    assert!(plan
        .status
        .blocked_message
        .unwrap()
        .contains("pod kc-1 is not Ready"));
}

#[test]
fn voters_wait_for_the_quorum_to_catch_up() {
    let mut c = Case::new(&[NEW, OLD, NEW]);
    c.quorum.lagging.insert(2);
    assert_held(&c.plan(), "QuorumNotCaughtUp");
    // A lagging voter that is the candidate itself does not hold it.
    c.quorum.lagging = [1].into();
    assert_eq!(deleted(&c.plan()), vec![1]);
}

#[test]
fn consumer_lagging_holds_and_warns_once() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.lagging = vec!["group g1: ERR (partition t-0 STOP, lag 120 records, 95 s)".into()];
    let plan = c.step(1000);
    assert!(deleted(&plan).is_empty());
    let progressing = condition(&plan, "Progressing").unwrap();
    assert!(!progressing.status);
    assert_eq!(progressing.reason, "ConsumerLagging");
    assert!(progressing.message.contains("group g1"));
    assert_eq!(events(&plan), vec!["ConsumerLagging"]);
    assert_eq!(plan.status.phase, RolloutPhase::Blocked);
    // Same reason next time: no second event.
    let plan = c.step(1000);
    assert!(events(&plan).is_empty());
    // Healthy again: the roll goes on.
    c.lagging.clear();
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![1]);
    assert_eq!(plan.status.blocked_reason, None);
}

#[test]
fn consumers_not_judged_yet_hold_without_a_warning() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.unknown = Some(("SamplingConsumerGroups", "sampling (4 s of 10 s)".into()));
    let plan = c.step(1000);
    assert!(deleted(&plan).is_empty());
    assert_eq!(
        plan.status.blocked_reason.as_deref(),
        Some("SamplingConsumerGroups")
    );
    assert!(events(&plan).is_empty());
    c.unknown = None;
    assert_eq!(deleted(&c.plan()), vec![1]);
}

#[test]
fn paused_holds_between_brokers() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.quorum = quorum(2);
    c.step(1000);
    c.settings.paused = true;
    // The broker in progress still finishes.
    c.restarted(0);
    let plan = c.step(1000);
    assert_eq!(plan.status.restarted, vec![0]);
    let plan = c.step(1000);
    assert!(deleted(&plan).is_empty());
    assert_eq!(plan.status.phase, RolloutPhase::Paused);
    assert_eq!(
        condition(&plan, "Progressing").unwrap().reason,
        "RolloutPaused"
    );
    c.settings.paused = false;
    assert_eq!(deleted(&c.plan()), vec![1]);
}

#[test]
fn min_ready_seconds_pass_before_the_next() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.quorum = quorum(2);
    c.settings.min_ready = Duration::from_secs(10);
    c.step(1000);
    c.restarted(0);
    let plan = c.step(5000);
    assert!(plan.status.restarted.is_empty());
    assert!(plan.status.caught_up_at.contains_key("0"));
    let plan = c.step(5000);
    assert!(plan.status.restarted.is_empty());
    assert!(deleted(&plan).is_empty());
    let plan = c.step(5000);
    assert_eq!(plan.status.restarted, vec![0]);
    // Seconds count to when the broker was back, not the end of minReadySeconds.
    assert_eq!(plan.status.restart_seconds.get("0"), Some(&1.0));
}

#[test]
fn a_broker_not_back_in_time_halts_the_roll() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.settings.ready_timeout = Duration::from_secs(60);
    c.quorum = quorum(2);
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![0]);
    c.pods[0].revision = Some(NEW.into());
    c.pods[0].ready = false;
    c.pods[0].waiting = Some("ImagePullBackOff".into());
    let plan = c.step(30_000);
    assert_eq!(plan.status.phase, RolloutPhase::Rolling);
    let plan = c.step(31_000);
    assert_eq!(plan.status.phase, RolloutPhase::Rolling);
    let plan = c.step(10_000);
    assert_eq!(plan.status.phase, RolloutPhase::Halted);
    let degraded = condition(&plan, "Degraded").unwrap();
    assert!(degraded.status);
    assert_eq!(degraded.reason, "RolloutStuck");
    assert!(
        degraded
            .message
            .contains("pod kc-0 is not Ready: ImagePullBackOff"),
        "{}",
        degraded.message
    );
    assert_eq!(events(&plan), vec!["RolloutStuck"]);
    assert!(deleted(&plan).is_empty(), "no other broker goes down");
    let plan = c.step(10_000);
    assert!(events(&plan).is_empty(), "the warning is not repeated");
    assert!(deleted(&plan).is_empty());
}

#[test]
fn reverting_replaces_the_stuck_broker_at_once() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.settings.ready_timeout = Duration::from_secs(60);
    c.quorum = quorum(2);
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![0]);
    c.pods[0].revision = Some(NEW.into());
    c.pods[0].ready = false;
    c.pods[0].waiting = Some("ImagePullBackOff".into());
    c.step(70_000);
    // The spec is reverted: the target is the old revision again. Partitions lack broker 0,
    // which would block any gated restart; the stuck pod goes regardless.
    for p in &mut c.kafka.partitions {
        p.isr = vec![1, 2];
    }
    let plan = plan_roll(&c.input(OLD));
    assert_eq!(deleted(&plan), vec![0]);
    assert_eq!(plan.status.in_progress, vec![0]);
    assert_eq!(plan.status.target_revision.as_deref(), Some(OLD));
    assert_eq!(plan.status.phase, RolloutPhase::Rolling);
    assert!(plan.status.pending.is_empty());
}

#[test]
fn a_stuck_pod_on_an_old_revision_is_replaced_without_gates() {
    let mut c = Case::new(&[NEW, OLD, NEW]);
    c.pods[1].ready = false;
    c.pods[1].waiting = Some("CrashLoopBackOff".into());
    c.kafka.live.remove(&1);
    assert_eq!(deleted(&c.plan()), vec![1]);
    // Not Ready but not stuck (starting): it is waited for, not deleted.
    c.pods[1].waiting = None;
    assert_held(&c.plan(), "BrokerNotReady");
}

#[test]
fn a_restarted_operator_finishes_the_recorded_step_and_starts_no_other() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.quorum = quorum(2);
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![0]);
    // The pod was never deleted (the operator stopped after writing the status).
    let plan = c.step(1000);
    assert_eq!(deleted(&plan), vec![0]);
    assert_eq!(plan.status.in_progress, vec![0]);
    // Deleted now and terminating: nothing to do, nothing else starts.
    c.pods[0].terminating = true;
    c.pods[0].ready = false;
    let plan = c.step(1000);
    assert!(deleted(&plan).is_empty());
}

#[test]
fn a_new_target_mid_roll_sends_up_brokers_through_the_gates() {
    let mut c = Case::new(&[OLD, OLD, OLD]);
    c.quorum = quorum(2);
    c.step(1000);
    c.restarted(0);
    // Before broker 0 counted as back, the target moved on to a third revision.
    let third = "rev-third";
    let plan = plan_roll(&c.input(third));
    assert_eq!(plan.status.target_revision.as_deref(), Some(third));
    assert!(plan.status.restarted.is_empty());
    // Broker 0 is up: it is pending again and goes first through the gates, alone.
    assert_eq!(deleted(&plan), vec![0]);
    assert_eq!(plan.status.in_progress, vec![0]);
}

#[test]
fn parallel_only_for_brokers_sharing_no_partition() {
    // Six brokers, three voters; RF 2 partitions pair 0-3, 1-4, 2-5, and 3-4 share one.
    let mut c = Case::new(&[OLD, OLD, OLD, OLD, OLD, OLD]);
    c.kafka = KafkaView {
        live: (0..6).collect(),
        partitions: vec![
            part("t", 0, &[0, 3], &[0, 3]),
            part("t", 1, &[1, 4], &[1, 4]),
            part("t", 2, &[2, 5], &[2, 5]),
            part("t", 3, &[3, 4], &[3, 4]),
        ],
        min_isr: MinIsr::new(1),
    };
    c.quorum = quorum(2);
    c.settings.max_parallel = 3;
    assert_eq!(parallelism(&c.kafka, 6, 3), 3);
    let plan = c.plan();
    // Non-voters first: 3, then 5 (4 shares t-3 with 3), then voter 1 (shares nothing with 3 or
    // 5; 0 shares t-0 with 3).
    assert_eq!(deleted(&plan), vec![3, 5, 1]);
    c.settings.max_parallel = 1;
    assert_eq!(deleted(&c.plan()), vec![3]);
}

#[test]
fn unreadable_brokers_block_gated_restarts() {
    let c = Case::new(&[OLD, OLD, OLD]);
    let plan = plan_roll(&RollInput {
        kafka: Err("connection refused".into()),
        quorum: Err("connection refused".into()),
        ..c.input(NEW)
    });
    assert!(deleted(&plan).is_empty());
    assert_eq!(
        plan.status.blocked_reason.as_deref(),
        Some("BrokersUnreachable")
    );
}

#[test]
fn times_round_trip() {
    let t = 1_765_000_000_123;
    assert_eq!(parse_ms(&rfc3339(t)), Some(t));
    assert_eq!(parse_ms("not a time"), None);
}
