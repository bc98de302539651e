use super::*;

const NOW: &str = "2026-12-07T10:00:00Z";
const NOW_MS: i64 = 1_796_637_600_000;

fn spec() -> RebalanceSpec {
    RebalanceSpec {
        on_scale_up: true,
        throttle_bytes_per_second: 1 << 20,
        max_concurrent_moves: 2,
    }
}

fn key(topic: &str, partition: i32) -> PartitionKey {
    (topic.to_string(), partition)
}

fn brokers(ids: &[i32]) -> Vec<BrokerInfo> {
    ids.iter()
        .map(|&id| BrokerInfo { id, rack: None })
        .collect()
}

/// Six partitions of `t` over brokers 0..3 (RF 3), and one RF 1 topic on broker 0.
fn three_brokers() -> Assignment {
    let mut a = Assignment::new();
    for p in 0..6 {
        let first = p % 3;
        a.insert(key("t", p), vec![first, (first + 1) % 3, (first + 2) % 3]);
    }
    a.insert(key("one", 0), vec![0]);
    a
}

fn view(current: Assignment, ids: &[i32]) -> MoveView {
    let sizes = current.keys().map(|k| (k.clone(), 1000)).collect();
    MoveView {
        current,
        adding: BTreeMap::new(),
        brokers: brokers(ids),
        sizes,
    }
}

struct Case<'a> {
    spec: RebalanceSpec,
    previous: Option<RebalanceStatus>,
    wanted: i32,
    running: i32,
    pods_ready: bool,
    view: Result<Option<&'a MoveView>, &'a str>,
    forced: Option<Forced>,
}

impl<'a> Case<'a> {
    fn new(wanted: i32, running: i32, view: Option<&'a MoveView>) -> Case<'a> {
        Case {
            spec: spec(),
            previous: None,
            wanted,
            running,
            pods_ready: true,
            view: Ok(view),
            forced: None,
        }
    }

    fn decide(&self) -> MoveDecision {
        decide(&MoveInput {
            spec: &self.spec,
            previous: self.previous.as_ref(),
            wanted: self.wanted,
            running: self.running,
            offset: 0,
            forced: self.forced.as_ref(),
            pods_ready: self.pods_ready,
            view: self.view,
            now: NOW,
            now_ms: NOW_MS,
        })
    }
}

fn idle(ids: &[i32]) -> RebalanceStatus {
    RebalanceStatus {
        phase: RebalancePhase::Idle,
        brokers: ids.to_vec(),
        ..RebalanceStatus::default()
    }
}

fn reassigned(d: &MoveDecision) -> BTreeMap<PartitionKey, Option<Vec<i32>>> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            MoveAction::Reassign(m) => Some(m.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn events(d: &MoveDecision) -> Vec<&'static str> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            MoveAction::Event(_, reason, _) => Some(*reason),
            _ => None,
        })
        .collect()
}

/// The current assignment once the given moves completed.
fn applied(
    mut current: Assignment,
    moves: &BTreeMap<PartitionKey, Option<Vec<i32>>>,
) -> Assignment {
    for (k, target) in moves {
        if let Some(t) = target {
            current.insert(k.clone(), t.clone());
        }
    }
    current
}

#[test]
fn a_new_cluster_records_its_brokers_and_reads_nothing() {
    assert_eq!(need(&spec(), None, 3, 3, 0, None), Need::Nothing);
    let d = Case::new(3, 3, None).decide();
    let s = d.status.expect("a status");
    assert_eq!(s.phase, RebalancePhase::Idle);
    assert_eq!(s.brokers, vec![0, 1, 2]);
    assert!(d.actions.is_empty());
    // Recorded: nothing more to do.
    assert_eq!(need(&spec(), Some(&s), 3, 3, 0, None), Need::Nothing);
    let mut again = Case::new(3, 3, None);
    again.previous = Some(s);
    assert_eq!(again.decide().status, None);
}

#[test]
fn scale_up_waits_for_the_new_broker_then_spreads_replicas_in_batches() {
    let before = idle(&[0, 1, 2]);
    assert_eq!(need(&spec(), Some(&before), 4, 4, 0, None), Need::Plan);

    // Broker 3 not registered yet: waiting, nothing sent.
    let v = view(three_brokers(), &[0, 1, 2]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(before.clone());
    let d = case.decide();
    let s = d.status.clone().expect("a status");
    assert_eq!(s.phase, RebalancePhase::Waiting);
    assert_eq!(s.reason, Some(RebalanceReason::ScaleUp));
    assert!(s.message.contains("brokers 3"), "{}", s.message);
    assert!(d.actions.is_empty());
    assert!(!d.draining);

    // Registered and Ready: a plan that puts replicas on broker 3, a throttle, a first batch.
    let v = view(three_brokers(), &[0, 1, 2, 3]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(s);
    let d = case.decide();
    let s = d.status.clone().expect("a status");
    assert_eq!(s.phase, RebalancePhase::Moving);
    assert_eq!(s.brokers, vec![0, 1, 2, 3]);
    assert!(s.partitions_total > 0);
    assert_eq!(s.partitions_total as usize, s.plan.len());
    assert!(
        s.replica_moves >= 4,
        "19 replicas over 4 brokers: 4 at least on broker 3"
    );
    assert_eq!(s.bytes_total, 1000 * i64::from(s.replica_moves));
    assert_eq!(s.started_at.as_deref(), Some(NOW));
    assert!(s.plan.iter().any(|p| p.replicas.contains(&3)));
    assert_eq!(events(&d), vec!["RebalanceStarted"]);
    let throttle = d
        .actions
        .iter()
        .find_map(|a| match a {
            MoveAction::Throttle {
                brokers,
                rate,
                topics,
            } => Some((brokers.clone(), *rate, topics.clone())),
            _ => None,
        })
        .expect("a throttle");
    assert_eq!(throttle.0, vec![0, 1, 2, 3]);
    assert_eq!(throttle.1, 1 << 20);
    let batch = reassigned(&d);
    assert_eq!(batch.len(), 2, "maxConcurrentMoves");
    assert_eq!(s.in_progress.len(), 2);
    for (k, target) in &batch {
        let planned = s
            .plan
            .iter()
            .find(|p| (p.topic.clone(), p.partition) == *k)
            .expect("planned");
        assert_eq!(target.as_ref(), Some(&planned.replicas));
    }
    // The follower side lists exactly the replicas each moving partition gains.
    for p in &s.plan {
        let before = &three_brokers()[&(p.topic.clone(), p.partition)];
        for b in p.replicas.iter().filter(|b| !before.contains(b)) {
            let follower = &throttle.2[&p.topic].1;
            assert!(
                follower
                    .split(',')
                    .any(|e| e == format!("{}:{b}", p.partition)),
                "{follower}"
            );
        }
    }

    // The operator carries on from the status: moves in progress count, the next batch waits.
    let mut v2 = view(three_brokers(), &[0, 1, 2, 3]);
    v2.adding = batch
        .iter()
        .map(|(k, t)| {
            let added = t
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|b| !three_brokers()[k].contains(b))
                .collect();
            (k.clone(), added)
        })
        .collect();
    assert_eq!(need(&spec(), Some(&s), 4, 4, 0, None), Need::Progress);
    let mut case = Case::new(4, 4, Some(&v2));
    case.previous = Some(s.clone());
    let d = case.decide();
    assert!(reassigned(&d).is_empty(), "two in progress already");
    assert_eq!(d.status.as_ref().map(|s| s.partitions_done), Some(0));

    // Run the rest to the end: each reconcile the submitted moves complete.
    let mut current = three_brokers();
    let mut status = s;
    let mut pending = batch;
    for _ in 0..50 {
        current = applied(current, &pending);
        let v = view(current.clone(), &[0, 1, 2, 3]);
        let mut case = Case::new(4, 4, Some(&v));
        case.previous = Some(status.clone());
        let d = case.decide();
        status = d.status.clone().expect("a status");
        pending = reassigned(&d);
        if status.phase == RebalancePhase::Complete {
            assert_eq!(events(&d), vec!["RebalanceComplete"]);
            assert!(d
                .actions
                .iter()
                .any(|a| matches!(a, MoveAction::Unthrottle { brokers, topics } if brokers == &vec![0, 1, 2, 3] && topics.contains(&"t".to_string()))));
            assert!(d.actions.contains(&MoveAction::ElectPreferred));
            break;
        }
        assert!(pending.len() <= 2);
    }
    assert_eq!(status.phase, RebalancePhase::Complete);
    assert_eq!(status.partitions_done, status.partitions_total);
    assert_eq!(status.bytes_moved, status.bytes_total);
    assert!(status.plan.is_empty() && status.in_progress.is_empty());
    assert_eq!(status.finished_at.as_deref(), Some(NOW));
    let on_3 = current.values().filter(|r| r.contains(&3)).count();
    assert!(on_3 >= 4, "broker 3 holds {on_3} replicas");
    // Done: nothing more is read or moved.
    assert_eq!(need(&spec(), Some(&status), 4, 4, 0, None), Need::Nothing);
}

#[test]
fn scale_up_moves_nothing_when_turned_off() {
    let mut s = spec();
    s.on_scale_up = false;
    let before = idle(&[0, 1, 2]);
    assert_eq!(need(&s, Some(&before), 4, 4, 0, None), Need::Nothing);
    let mut case = Case::new(4, 4, None);
    case.spec = s;
    case.previous = Some(before);
    let d = case.decide();
    assert_eq!(d.status.map(|s| s.brokers), Some(vec![0, 1, 2, 3]));
    assert!(d.actions.is_empty());
}

#[test]
fn scale_down_drains_the_removed_broker_and_keeps_the_replication_factor() {
    // Four brokers; broker 3 holds replicas of t-0 (its preferred leader) and t-1.
    let mut a = three_brokers();
    a.insert(key("t", 0), vec![3, 1, 2]);
    a.insert(key("t", 1), vec![1, 3, 0]);
    let before = RebalanceStatus {
        phase: RebalancePhase::Complete,
        reason: Some(RebalanceReason::ScaleUp),
        brokers: vec![0, 1, 2, 3],
        ..RebalanceStatus::default()
    };
    assert_eq!(need(&spec(), Some(&before), 3, 4, 0, None), Need::Plan);
    let v = view(a.clone(), &[0, 1, 2, 3]);
    let mut case = Case::new(3, 4, Some(&v));
    case.previous = Some(before);
    let d = case.decide();
    assert!(d.draining);
    assert_eq!(d.blocked, None);
    let s = d.status.clone().expect("a status");
    assert_eq!(s.phase, RebalancePhase::Moving);
    assert_eq!(s.reason, Some(RebalanceReason::ScaleDown));
    assert_eq!(s.removing, vec![3]);
    assert_eq!(s.brokers, vec![0, 1, 2]);
    let mut current = a;
    let mut status = s;
    let mut pending = reassigned(&d);
    let mut drained = false;
    for _ in 0..20 {
        current = applied(current, &pending);
        let v = view(current.clone(), &[0, 1, 2, 3]);
        let mut case = Case::new(3, 4, Some(&v));
        case.previous = Some(status.clone());
        let d = case.decide();
        status = d.status.clone().expect("a status");
        pending = reassigned(&d);
        if status.phase == RebalancePhase::Complete {
            assert_eq!(events(&d), vec!["BrokersDrained", "RebalanceComplete"]);
            assert!(!d.draining);
            drained = true;
            break;
        }
        assert!(d.draining);
    }
    assert!(drained);
    // Drained: the StatefulSet shrinks next; the figures of the drain stay as they are.
    assert_eq!(need(&spec(), Some(&status), 3, 4, 0, None), Need::Nothing);
    let mut case = Case::new(3, 4, None);
    case.previous = Some(status.clone());
    assert_eq!(case.decide(), MoveDecision::unchanged());
    let mut case = Case::new(3, 3, None);
    case.previous = Some(status.clone());
    assert_eq!(case.decide().status, None);
    for (k, replicas) in &current {
        assert!(!replicas.contains(&3), "{k:?} {replicas:?}");
        let mut set = replicas.clone();
        set.sort_unstable();
        set.dedup();
        assert_eq!(set.len(), three_brokers()[k].len(), "{k:?} keeps its RF");
    }
    assert!(
        status.message.contains("brokers [3] drained"),
        "{}",
        status.message
    );
}

#[test]
fn a_drain_that_cannot_place_replicas_is_blocked_and_says_which() {
    // RF 3 on three brokers; going to two brokers leaves nowhere for the third replica.
    let before = idle(&[0, 1, 2]);
    let v = view(three_brokers(), &[0, 1, 2]);
    let mut case = Case::new(2, 3, Some(&v));
    case.previous = Some(before);
    let d = case.decide();
    let s = d.status.expect("a status");
    assert_eq!(s.phase, RebalancePhase::Blocked);
    let blocked = d.blocked.expect("blocked");
    assert!(blocked.contains("t-0"), "{blocked}");
    assert!(blocked.contains("[2]"), "{blocked}");
    assert!(reassigned(&Case::new(2, 3, Some(&v)).decide()).is_empty());
}

#[test]
fn no_new_moves_while_a_broker_is_away_or_the_brokers_cannot_be_read() {
    let v = view(three_brokers(), &[0, 1, 2, 3]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(idle(&[0, 1, 2]));
    let moving = case.decide().status.expect("a status");
    assert_eq!(moving.phase, RebalancePhase::Moving);

    // Broker 1 is gone from Metadata: blocked, nothing submitted.
    let v = view(three_brokers(), &[0, 2, 3]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(moving.clone());
    let d = case.decide();
    assert_eq!(
        d.status.as_ref().map(|s| s.phase),
        Some(RebalancePhase::Blocked)
    );
    assert!(d
        .blocked
        .as_deref()
        .is_some_and(|m| m.contains("brokers 1")));
    assert!(reassigned(&d).is_empty());

    // A pod not Ready: the same.
    let v = view(three_brokers(), &[0, 1, 2, 3]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(moving.clone());
    case.pods_ready = false;
    let d = case.decide();
    assert!(d.blocked.is_some());
    assert!(reassigned(&d).is_empty());

    // Unreadable: blocked, the plan kept.
    let mut case = Case::new(4, 4, None);
    case.previous = Some(moving.clone());
    case.view = Err("connection refused");
    let d = case.decide();
    let s = d.status.expect("a status");
    assert_eq!(s.phase, RebalancePhase::Blocked);
    assert_eq!(s.plan, moving.plan);
    assert!(s.message.contains("connection refused"));
}

#[test]
fn a_changed_broker_set_cancels_the_moves_in_progress_and_plans_again() {
    let v = view(three_brokers(), &[0, 1, 2, 3]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(idle(&[0, 1, 2]));
    let d = case.decide();
    let moving = d.status.clone().expect("a status");
    let batch = reassigned(&d);

    // Back to three brokers while two moves run.
    let mut v2 = view(three_brokers(), &[0, 1, 2, 3]);
    v2.adding = batch.keys().map(|k| (k.clone(), vec![3])).collect();
    v2.adding.insert(key("other", 0), vec![1]);
    assert_eq!(need(&spec(), Some(&moving), 3, 4, 0, None), Need::Plan);
    let mut case = Case::new(3, 4, Some(&v2));
    case.previous = Some(moving);
    let d = case.decide();
    let cancelled = reassigned(&d);
    assert_eq!(
        cancelled.keys().collect::<Vec<_>>(),
        batch.keys().collect::<Vec<_>>(),
        "only the plan's own moves"
    );
    assert!(cancelled.values().all(Option::is_none));
    assert_eq!(events(&d), vec!["RebalanceReplanned"]);
    let s = d.status.expect("a status");
    assert_eq!(s.phase, RebalancePhase::Waiting);
    assert_eq!(s.brokers, vec![0, 1, 2]);
    assert!(s.plan.is_empty());

    // Next reconcile: waits for the cancelled moves to clear, then drains broker 3.
    let mut case = Case::new(3, 4, Some(&v2));
    case.previous = Some(s.clone());
    let d = case.decide();
    assert_eq!(
        d.status.as_ref().map(|s| s.phase),
        Some(RebalancePhase::Waiting)
    );
    let v3 = view(three_brokers(), &[0, 1, 2, 3]);
    let mut case = Case::new(3, 4, Some(&v3));
    case.previous = Some(s);
    let d = case.decide();
    let s = d.status.expect("a status");
    // Nothing was on broker 3 yet: the drain is complete at once.
    assert_eq!(s.phase, RebalancePhase::Complete);
    assert_eq!(s.reason, Some(RebalanceReason::ScaleDown));
}

#[test]
fn a_topic_deleted_mid_way_counts_as_done() {
    let v = view(three_brokers(), &[0, 1, 2, 3]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(idle(&[0, 1, 2]));
    let moving = case.decide().status.expect("a status");
    let of_t = moving.plan.iter().filter(|p| p.topic == "t").count();
    assert!(of_t > 0);
    let mut gone = three_brokers();
    gone.retain(|(t, _), _| t != "t");
    let v = view(gone, &[0, 1, 2, 3]);
    let mut case = Case::new(4, 4, Some(&v));
    case.previous = Some(moving);
    let s = case.decide().status.expect("a status");
    assert_eq!(s.partitions_done as usize, of_t);
    // Nothing of a deleted topic is submitted.
    assert!(
        s.in_progress.iter().all(|k| !k.starts_with("t-")),
        "{:?}",
        s.in_progress
    );
}

#[test]
fn throttled_replica_lists_name_the_leader_and_follower_sides() {
    let mut a = Assignment::new();
    a.insert(key("t", 0), vec![0, 1]);
    a.insert(key("t", 1), vec![1, 2]);
    let plan = vec![
        PlannedPartition {
            topic: "t".into(),
            partition: 0,
            replicas: vec![0, 3],
            bytes: 5,
        },
        PlannedPartition {
            topic: "t".into(),
            partition: 1,
            replicas: vec![3, 2],
            bytes: 5,
        },
    ];
    assert_eq!(
        throttled_replicas(&a, &plan),
        BTreeMap::from([(
            "t".to_string(),
            ("0:0,0:1,1:1,1:2".to_string(), "0:3,1:3".to_string())
        )])
    );
}

#[test]
fn a_blue_green_move_empties_the_old_set_then_completes_once() {
    let forced = Forced {
        reason: RebalanceReason::BlueGreen,
        to: vec![1000, 1001, 1002],
        from: vec![0, 1, 2],
    };
    let every = [0, 1, 2, 1000, 1001, 1002];
    assert_eq!(
        need(&spec(), Some(&idle(&[0, 1, 2])), 3, 3, 0, Some(&forced)),
        Need::Plan
    );
    let mut current = three_brokers();
    let v = view(current.clone(), &every);
    let mut case = Case::new(3, 3, Some(&v));
    case.forced = Some(forced.clone());
    case.previous = Some(idle(&[0, 1, 2]));
    let d = case.decide();
    let status = d.status.clone().unwrap();
    assert_eq!(status.reason, Some(RebalanceReason::BlueGreen));
    assert_eq!(status.brokers, forced.to);
    assert_eq!(status.removing, forced.from);
    assert_eq!(status.partitions_total, 7, "every partition moves");
    assert!(!d.draining, "no StatefulSet is held for a blue-green move");
    for p in &status.plan {
        assert!(p.replicas.iter().all(|b| *b >= 1000), "{p:?}");
    }
    // Batches until the end: never more than two at once, and the old set ends empty.
    let mut previous = status;
    let mut moves = reassigned(&d);
    for _ in 0..10 {
        assert!(moves.len() <= 2);
        current = applied(current, &moves);
        let v = view(current.clone(), &every);
        let mut case = Case::new(3, 3, Some(&v));
        case.forced = Some(forced.clone());
        case.previous = Some(previous.clone());
        let d = case.decide();
        previous = d.status.clone().unwrap();
        if previous.phase == RebalancePhase::Complete {
            assert!(d.actions.contains(&MoveAction::ElectPreferred));
            break;
        }
        moves = reassigned(&d);
    }
    assert_eq!(previous.phase, RebalancePhase::Complete);
    assert!(
        current.values().flatten().all(|b| *b >= 1000),
        "{current:?}"
    );
    assert_eq!(
        need(&spec(), Some(&previous), 3, 3, 0, Some(&forced)),
        Need::Nothing
    );
    // The rollback is another movement: it plans again, back to the old set.
    let back = Forced {
        reason: RebalanceReason::Rollback,
        to: forced.from.clone(),
        from: forced.to.clone(),
    };
    assert_eq!(
        need(&spec(), Some(&previous), 3, 3, 0, Some(&back)),
        Need::Plan
    );
    let v = view(current.clone(), &every);
    let mut case = Case::new(3, 3, Some(&v));
    case.forced = Some(back);
    case.previous = Some(previous);
    let status = case.decide().status.unwrap();
    assert_eq!(status.reason, Some(RebalanceReason::Rollback));
    assert!(status
        .plan
        .iter()
        .all(|p| p.replicas.iter().all(|b| *b < 3)));
}
