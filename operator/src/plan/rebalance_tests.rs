use super::*;
use proptest::prelude::*;

fn key(topic: &str, p: i32) -> PartitionKey {
    (topic.to_owned(), p)
}

fn brokers(ids: &[i32]) -> Vec<BrokerInfo> {
    ids.iter()
        .map(|&id| BrokerInfo { id, rack: None })
        .collect()
}

fn racked(spec: &[(i32, &str)]) -> Vec<BrokerInfo> {
    spec.iter()
        .map(|&(id, rack)| BrokerInfo {
            id,
            rack: Some(rack.to_owned()),
        })
        .collect()
}

fn run(
    brokers: &[BrokerInfo],
    assignment: &Assignment,
    sizes: &BTreeMap<PartitionKey, u64>,
) -> Plan {
    plan(&PlanInput {
        brokers,
        assignment,
        sizes,
    })
}

fn run_drain(
    brokers: &[BrokerInfo],
    assignment: &Assignment,
    sizes: &BTreeMap<PartitionKey, u64>,
) -> Plan {
    drain(&PlanInput {
        brokers,
        assignment,
        sizes,
    })
}

fn apply(assignment: &Assignment, plan: &Plan) -> Assignment {
    let mut out = assignment.clone();
    for (k, v) in &plan.target {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// `partitions` partitions of topic `topic`, RF 3 over `on`, leaders rotating.
fn rotated(out: &mut Assignment, topic: &str, partitions: i32, on: &[i32]) {
    let n = on.len();
    for p in 0..partitions {
        let list = (0..3).map(|k| on[(p as usize + k) % n]).collect();
        out.insert(key(topic, p), list);
    }
}

fn sizes_of(assignment: &Assignment, size: u64) -> BTreeMap<PartitionKey, u64> {
    assignment.keys().map(|k| (k.clone(), size)).collect()
}

/// Every listed broker holds floor..=ceil of the replicas and of the preferred leaders.
fn assert_even(assignment: &Assignment, ids: &[i32]) {
    let total: usize = assignment.values().map(Vec::len).sum();
    let parts = assignment.values().filter(|l| !l.is_empty()).count();
    let n = ids.len();
    let counts = load(assignment);
    for id in ids {
        let (replicas, leaders) = counts.get(id).copied().unwrap_or((0, 0));
        assert!(
            (total / n..=total.div_ceil(n)).contains(&replicas),
            "broker {id}: {replicas} replicas of {total} over {n}: {counts:?}"
        );
        assert!(
            (parts / n..=parts.div_ceil(n)).contains(&leaders),
            "broker {id}: leader of {leaders} of {parts} over {n}: {counts:?}"
        );
    }
}

fn assert_valid(before: &Assignment, after: &Assignment, ids: &[i32]) {
    assert_eq!(before.len(), after.len());
    for (k, list) in after {
        assert_eq!(list.len(), before[k].len(), "{k:?}: {list:?}");
        let distinct: BTreeSet<i32> = list.iter().copied().collect();
        assert_eq!(distinct.len(), list.len(), "{k:?}: {list:?}");
        assert!(list.iter().all(|b| ids.contains(b)), "{k:?}: {list:?}");
    }
}

fn three_brokers_56_partitions() -> Assignment {
    let mut a = Assignment::new();
    rotated(&mut a, "a", 6, &[0, 1, 2]);
    rotated(&mut a, "b", 50, &[0, 1, 2]);
    a
}

#[test]
fn scale_up_from_three_to_four_brokers_moves_exactly_the_lower_bound() {
    let before = three_brokers_56_partitions();
    let sizes = sizes_of(&before, 10);
    let ids = [0, 1, 2, 3];
    let plan = run(&brokers(&ids), &before, &sizes);
    let after = apply(&before, &plan);
    assert_valid(&before, &after, &ids);
    assert_even(&after, &ids);
    // 168 replicas over 4 brokers: 42 each; brokers 0..=2 hold 56 each, 14 too many.
    assert_eq!(plan.replica_moves, 42);
    assert_eq!(plan.bytes, 420);
    assert_eq!(load(&after)[&3], (42, 14));
    // Lists that did not gain broker 3 only changed order (their leader).
    for (k, list) in &plan.target {
        if !list.contains(&3) {
            let mut was = before[k].clone();
            let mut now = list.clone();
            was.sort_unstable();
            now.sort_unstable();
            assert_eq!(was, now, "{k:?}");
        }
    }
}

#[test]
fn drain_of_broker_3_from_four_to_three_keeps_balance() {
    let three = three_brokers_56_partitions();
    let four = apply(
        &three,
        &run(&brokers(&[0, 1, 2, 3]), &three, &BTreeMap::new()),
    );
    let sizes = sizes_of(&four, 7);
    let ids = [0, 1, 2];
    let on_3 = load(&four)[&3].0;
    assert_eq!(on_3, 42);

    let plan = run(&brokers(&ids), &four, &sizes);
    let after = apply(&four, &plan);
    assert_valid(&four, &after, &ids);
    assert_even(&after, &ids);
    assert_eq!(plan.replica_moves, on_3);
    assert_eq!(plan.bytes, 7 * on_3 as u64);

    // drain(): the same replicas move, each into the position broker 3 had; nothing else.
    let drained = run_drain(&brokers(&ids), &four, &sizes);
    let after = apply(&four, &drained);
    assert_valid(&four, &after, &ids);
    assert_eq!(drained.replica_moves, on_3);
    for (k, list) in &drained.target {
        let was = &four[k];
        for (p, (&old, &new)) in was.iter().zip(list).enumerate() {
            assert_eq!(
                old == 3,
                old != new,
                "{k:?} position {p}: {was:?} -> {list:?}"
            );
        }
    }
    assert_eq!(
        drained.target.len(),
        four.values().filter(|l| l.contains(&3)).count()
    );
    let counts = load(&after);
    assert!(counts.values().all(|c| c.0 == 56), "{counts:?}");
}

#[test]
fn drain_puts_a_replica_on_the_least_loaded_eligible_broker() {
    let mut a = Assignment::new();
    a.insert(key("t", 0), vec![9, 0]);
    a.insert(key("t", 1), vec![0, 1]);
    a.insert(key("t", 2), vec![1, 2]);
    a.insert(key("t", 3), vec![1, 0]);
    // Loads: 0 -> 3, 1 -> 3, 2 -> 1. t-0 may go to 1 or 2: 2 is less loaded.
    let plan = run_drain(&brokers(&[0, 1, 2]), &a, &BTreeMap::new());
    assert_eq!(plan.target.len(), 1);
    assert_eq!(plan.target[&key("t", 0)], vec![2, 0]);
    assert_eq!(plan.replica_moves, 1);
}

#[test]
fn a_drained_preferred_leader_is_replaced_at_position_0() {
    let mut a = Assignment::new();
    a.insert(key("t", 0), vec![5, 0, 1]);
    let plan = run_drain(&brokers(&[0, 1, 2]), &a, &BTreeMap::new());
    assert_eq!(plan.target[&key("t", 0)], vec![2, 0, 1]);
    let plan = run(&brokers(&[0, 1, 2]), &a, &BTreeMap::new());
    assert_eq!(plan.target[&key("t", 0)], vec![2, 0, 1]);
}

#[test]
fn three_racks_rf3_one_replica_per_rack() {
    let bs = racked(&[(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "c"), (5, "c")]);
    let ids: Vec<i32> = bs.iter().map(|b| b.id).collect();
    let mut before = Assignment::new();
    for p in 0..12 {
        before.insert(key("t", p), vec![0, 1, 2]);
    }
    let plan = run(&bs, &before, &BTreeMap::new());
    let after = apply(&before, &plan);
    assert_valid(&before, &after, &ids);
    let rack = |b: i32| b / 2;
    for (k, list) in &after {
        let racks: BTreeSet<i32> = list.iter().map(|&b| rack(b)).collect();
        assert_eq!(racks.len(), 3, "{k:?}: {list:?}");
    }
    assert_even(&after, &ids);
    // 36 replicas, 6 a broker: 6 too many on each of 0, 1, 2.
    assert_eq!(plan.replica_moves, 18);
    assert!(run(&bs, &after, &BTreeMap::new()).target.is_empty());
}

#[test]
fn fewer_racks_than_the_replication_factor_spread_evenly() {
    let bs = racked(&[(0, "a"), (1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "b")]);
    let mut before = Assignment::new();
    before.insert(key("t", 0), vec![0, 1, 2]);
    before.insert(key("t", 1), vec![3, 4, 5]);
    let plan = run(&bs, &before, &BTreeMap::new());
    let after = apply(&before, &plan);
    for list in after.values() {
        let in_a = list.iter().filter(|&&b| b < 3).count();
        assert!(in_a == 1 || in_a == 2, "{list:?}");
    }
    // One replica of each partition changes rack.
    assert_eq!(plan.replica_moves, 2);
}

#[test]
fn a_broker_without_a_rack_is_a_rack_of_its_own_among_racked_ones() {
    let mut bs = racked(&[(0, "a"), (1, "a")]);
    bs.push(BrokerInfo { id: 2, rack: None });
    bs.push(BrokerInfo { id: 3, rack: None });
    let mut before = Assignment::new();
    before.insert(key("t", 0), vec![0, 1]);
    before.insert(key("t", 1), vec![2, 3]);
    let plan = run(&bs, &before, &BTreeMap::new());
    let after = apply(&before, &plan);
    // Three racks for RF 2: t-0 leaves rack a (to 2 or 3), and 2 and 3 may share t-1, but one
    // replica a broker then means t-1 gives one to rack a.
    for list in after.values() {
        assert_eq!(list.iter().filter(|&&b| b < 2).count(), 1, "{after:?}");
    }
    assert_even(&after, &[0, 1, 2, 3]);
    assert_eq!(plan.replica_moves, 2);
}

#[test]
fn brokers_without_racks_impose_nothing() {
    let mut before = Assignment::new();
    before.insert(key("t", 0), vec![0, 1]);
    before.insert(key("t", 1), vec![1, 0]);
    let plan = run(&brokers(&[0, 1]), &before, &BTreeMap::new());
    assert_eq!(plan, Plan::default());
}

#[test]
fn a_huge_partition_stays_when_small_ones_balance_the_counts() {
    // RF 1: broker 0 holds the huge one and 5 small ones, broker 1 six small ones, 2 is new.
    let mut before = Assignment::new();
    let mut sizes = BTreeMap::new();
    before.insert(key("huge", 0), vec![0]);
    sizes.insert(key("huge", 0), 1_000_000_000);
    for p in 0..11 {
        before.insert(key("small", p), vec![if p < 5 { 0 } else { 1 }]);
        sizes.insert(key("small", p), 10);
    }
    let plan = run(&brokers(&[0, 1, 2]), &before, &sizes);
    assert!(!plan.target.contains_key(&key("huge", 0)), "{plan:?}");
    assert_eq!(plan.replica_moves, 4);
    assert_eq!(plan.bytes, 40);
    assert_eq!(load(&apply(&before, &plan))[&2].0, 4);

    // RF 3 on three brokers, a fourth added: the huge partition is on all three already.
    let mut before = Assignment::new();
    before.insert(key("huge", 0), vec![0, 1, 2]);
    rotated(&mut before, "small", 7, &[0, 1, 2]);
    let mut sizes = sizes_of(&before, 5);
    sizes.insert(key("huge", 0), 1_000_000_000);
    let plan = run(&brokers(&[0, 1, 2, 3]), &before, &sizes);
    let after = apply(&before, &plan);
    let mut huge = after[&key("huge", 0)].clone();
    huge.sort_unstable();
    assert_eq!(huge, vec![0, 1, 2]);
    assert_eq!(plan.replica_moves, 6);
    assert_eq!(plan.bytes, 30);
}

#[test]
fn among_small_partitions_the_one_evening_bytes_moves() {
    // RF 1, broker 0: sizes 100, 40, 1, 1; broker 1: 10, 10, 10, 10; broker 2 new. Each of 0
    // and 1 gives one replica (4, 4, 0 -> 3, 3, 2 in some order).
    let mut before = Assignment::new();
    let mut sizes = BTreeMap::new();
    for (p, s) in [100u64, 40, 1, 1].into_iter().enumerate() {
        before.insert(key("a", p as i32), vec![0]);
        sizes.insert(key("a", p as i32), s);
    }
    for p in 0..4 {
        before.insert(key("b", p), vec![1]);
        sizes.insert(key("b", p), 10);
    }
    let plan = run(&brokers(&[0, 1, 2]), &before, &sizes);
    assert_eq!(plan.replica_moves, 2);
    // Broker 0 has 142 bytes, the mean is about 61: the 40 brings 0 and 2 nearer to it than a 1 does,
    // the 100 would overshoot and copies more.
    assert_eq!(plan.target.get(&key("a", 1)), Some(&vec![2]), "{plan:?}");
    assert_eq!(plan.bytes, 50);
}

#[test]
fn a_cheaper_source_found_later_undoes_a_copy() {
    // Broker 3 leaves; its replicas of even-2 and odd-1 land on 4, leaving 1 short. Broker 2
    // holds the most bytes, so it gives first (a copy), though 4 could hand on even-2 for free:
    // cancelling the cycle 1 -> 2 -> 4 -> 1 takes the copy back. Two moves, the replicas of 3.
    let mut a = Assignment::new();
    a.insert(key("even", 0), vec![2, 4]);
    a.insert(key("even", 2), vec![3]);
    a.insert(key("odd", 1), vec![2, 3, 1]);
    a.insert(key("odd", 3), vec![2]);
    let sizes: BTreeMap<PartitionKey, u64> = [
        (key("even", 0), 1),
        (key("even", 2), 259),
        (key("odd", 1), 155),
        (key("odd", 3), 702),
    ]
    .into();
    let ids = [1, 2, 4];
    let plan = run(&brokers(&ids), &a, &sizes);
    let after = apply(&a, &plan);
    assert_valid(&a, &after, &ids);
    assert_eq!(plan.replica_moves, 2, "{plan:?}");
    assert_eq!(plan.bytes, 259 + 155);
    let counts = load(&after);
    assert!(
        ids.iter().all(|b| (2..=3).contains(&counts[b].0)),
        "{counts:?}"
    );
}

#[test]
fn a_drain_into_racks_takes_no_more_moves_than_replicas_drained() {
    // Racks: 0 alone, 1 and 3 together, 4 alone; broker 2 leaves with all three replicas.
    let bs = racked(&[(0, "r0"), (1, "r1"), (3, "r1"), (4, "r2")]);
    let mut a = Assignment::new();
    a.insert(key("even", 0), vec![2]);
    a.insert(key("even", 2), vec![1, 2]);
    a.insert(key("odd", 1), vec![1, 2]);
    let sizes: BTreeMap<PartitionKey, u64> = [(key("even", 2), 1)].into();
    let plan = run(&bs, &a, &sizes);
    let after = apply(&a, &plan);
    assert_valid(&a, &after, &[0, 1, 3, 4]);
    assert_eq!(plan.replica_moves, 3, "{plan:?}");
    for list in after.values() {
        assert!(!list.contains(&3) || !list.contains(&1), "{list:?}");
    }
    assert_even(&after, &[0, 1, 3, 4]);
}

#[test]
fn a_balanced_rack_correct_assignment_is_left_alone() {
    let mut before = Assignment::new();
    rotated(&mut before, "t", 12, &[0, 1, 2, 3]);
    let plan = run(&brokers(&[0, 1, 2, 3]), &before, &sizes_of(&before, 3));
    assert_eq!(plan, Plan::default());
}

#[test]
fn plan_is_idempotent() {
    let cases: Vec<(Vec<BrokerInfo>, Assignment)> = vec![
        (brokers(&[0, 1, 2, 3]), three_brokers_56_partitions()),
        (brokers(&[0, 1, 3, 4]), three_brokers_56_partitions()),
        (
            racked(&[(0, "a"), (1, "b"), (2, "c"), (3, "a"), (4, "b")]),
            three_brokers_56_partitions(),
        ),
    ];
    for (bs, before) in cases {
        let sizes: BTreeMap<PartitionKey, u64> = before
            .keys()
            .enumerate()
            .map(|(i, k)| (k.clone(), (i as u64 * 37) % 101))
            .collect();
        let first = run(&bs, &before, &sizes);
        assert!(first.replica_moves > 0);
        let again = run(&bs, &apply(&before, &first), &sizes);
        assert_eq!(again, Plan::default(), "{bs:?}");
    }
}

#[test]
fn leaders_alone_are_balanced_by_reordering() {
    let mut before = Assignment::new();
    for p in 0..6 {
        before.insert(key("t", p), vec![0, 1, 2]);
    }
    let plan = run(&brokers(&[0, 1, 2]), &before, &sizes_of(&before, 100));
    assert_eq!(plan.replica_moves, 0);
    assert_eq!(plan.bytes, 0);
    assert_eq!(plan.target.len(), 4);
    let after = apply(&before, &plan);
    assert_even(&after, &[0, 1, 2]);
    // The new leader swaps places with the old one.
    for list in plan.target.values() {
        assert!(list == &vec![1, 0, 2] || list == &vec![2, 1, 0], "{list:?}");
    }
}

#[test]
fn odd_inputs_do_not_panic() {
    let empty = Assignment::new();
    let none = BTreeMap::new();
    assert_eq!(run(&brokers(&[0, 1]), &empty, &none), Plan::default());
    let mut a = Assignment::new();
    a.insert(key("t", 0), vec![0, 1]);
    assert_eq!(run(&[], &a, &none), Plan::default());
    assert_eq!(run_drain(&[], &a, &none), Plan::default());

    // An empty list stays empty; a repeated broker in a list is replaced; duplicate broker
    // entries count once.
    let mut a = Assignment::new();
    a.insert(key("t", 0), vec![]);
    a.insert(key("t", 1), vec![0, 0, 1]);
    let mut bs = brokers(&[0, 1, 2]);
    bs.push(BrokerInfo {
        id: 1,
        rack: Some("x".into()),
    });
    let plan = run(&bs, &a, &none);
    assert_eq!(plan.target.len(), 1);
    assert_eq!(plan.target[&key("t", 1)], vec![0, 2, 1]);
    assert_eq!(plan.replica_moves, 1);
    assert_eq!(run_drain(&bs, &a, &none), plan);
}

#[test]
fn a_replication_factor_above_the_brokers_keeps_its_list_but_leaves_unlisted_brokers() {
    let mut a = Assignment::new();
    a.insert(key("t", 0), vec![7, 0, 8, 1]);
    a.insert(key("t", 1), vec![0, 1, 2, 3]);
    let bs = brokers(&[0, 1, 2]);
    let plan = run(&bs, &a, &BTreeMap::new());
    // t-0: 7 becomes 2 (the one listed broker it lacks), 8 has no replacement and stays.
    assert_eq!(plan.target[&key("t", 0)], vec![2, 0, 8, 1]);
    // t-1 already holds every listed broker: 3 stays.
    assert!(!plan.target.contains_key(&key("t", 1)));
    assert_eq!(plan.replica_moves, 1);
    assert_eq!(run_drain(&bs, &a, &BTreeMap::new()), plan);
    let again = run(&bs, &apply(&a, &plan), &BTreeMap::new());
    assert_eq!(again, Plan::default());
}

#[test]
fn change_replication_factor_grows_onto_unused_racks_then_the_least_loaded() {
    let bs = racked(&[(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "c")]);
    let load: BTreeMap<i32, usize> = [(0, 5), (1, 1), (2, 9), (3, 3), (4, 8)].into();
    // Racks b and c are unused: 3 (load 3) before 4 (load 8), then c.
    assert_eq!(
        change_replication_factor(&[0], Some(0), 2, &bs, &load),
        Ok(vec![0, 3])
    );
    assert_eq!(
        change_replication_factor(&[0], Some(0), 3, &bs, &load),
        Ok(vec![0, 3, 4])
    );
    // Every rack used: the least loaded.
    assert_eq!(
        change_replication_factor(&[0, 3, 4], None, 4, &bs, &load),
        Ok(vec![0, 3, 4, 1])
    );
    // Without racks: least loaded, then lowest id (missing load = 0).
    let plain = brokers(&[0, 1, 2, 3]);
    let load: BTreeMap<i32, usize> = [(0, 4), (1, 4), (2, 4)].into();
    assert_eq!(
        change_replication_factor(&[0], Some(0), 3, &plain, &load),
        Ok(vec![0, 3, 1])
    );
}

#[test]
fn change_replication_factor_shrinks_from_the_end_but_keeps_the_leader() {
    let plain = brokers(&[0, 1, 2, 3]);
    let none = BTreeMap::new();
    assert_eq!(
        change_replication_factor(&[2, 0, 1], Some(2), 2, &plain, &none),
        Ok(vec![2, 0])
    );
    assert_eq!(
        change_replication_factor(&[2, 0, 1], Some(1), 2, &plain, &none),
        Ok(vec![2, 1])
    );
    assert_eq!(
        change_replication_factor(&[2, 0, 1], Some(1), 1, &plain, &none),
        Ok(vec![1])
    );
    assert_eq!(
        change_replication_factor(&[2, 0, 1], None, 1, &plain, &none),
        Ok(vec![2])
    );
    // An unlisted broker goes first, then a repeated one.
    assert_eq!(
        change_replication_factor(&[9, 0, 1], Some(0), 2, &plain, &none),
        Ok(vec![0, 1])
    );
    assert_eq!(
        change_replication_factor(&[0, 1, 1, 2], None, 3, &plain, &none),
        Ok(vec![0, 1, 2])
    );
    // A replica sharing its rack goes before the last one.
    let bs = racked(&[(0, "a"), (1, "a"), (2, "b")]);
    assert_eq!(
        change_replication_factor(&[0, 1, 2], Some(0), 2, &bs, &none),
        Ok(vec![0, 2])
    );
    // The same factor: unchanged.
    assert_eq!(
        change_replication_factor(&[3, 1], None, 2, &plain, &none),
        Ok(vec![3, 1])
    );
}

#[test]
fn change_replication_factor_refuses_impossible_factors() {
    let plain = brokers(&[0, 1, 2]);
    let none = BTreeMap::new();
    let err = change_replication_factor(&[0], Some(0), 4, &plain, &none).unwrap_err();
    assert!(err.contains('4') && err.contains('3'), "{err}");
    assert!(change_replication_factor(&[0], Some(0), 0, &plain, &none).is_err());
    assert!(change_replication_factor(&[], None, 1, &[], &none).is_err());
}

#[test]
fn next_batch_takes_the_smallest_first_within_the_limit() {
    let mut target = Assignment::new();
    let mut current = Assignment::new();
    let mut sizes = BTreeMap::new();
    for (p, size) in [(0, 50u64), (1, 10), (2, 10), (3, 5), (4, 1), (5, 0)] {
        target.insert(key("t", p), vec![1, 2]);
        current.insert(key("t", p), vec![0, 1]);
        sizes.insert(key("t", p), size);
    }
    current.insert(key("t", 4), vec![1, 2]); // already there
    current.remove(&key("t", 5)); // deleted since
    target.insert(key("u", 0), vec![3]); // no size: 0
    current.insert(key("u", 0), vec![2]);
    let none = BTreeSet::new();
    let keys =
        |batch: Vec<(PartitionKey, Vec<i32>)>| batch.into_iter().map(|b| b.0).collect::<Vec<_>>();

    let batch = next_batch(&target, &current, &none, &sizes, 10);
    assert_eq!(
        keys(batch.clone()),
        vec![
            key("u", 0),
            key("t", 3),
            key("t", 1),
            key("t", 2),
            key("t", 0)
        ]
    );
    assert_eq!(batch[0].1, vec![3]);
    assert_eq!(
        keys(next_batch(&target, &current, &none, &sizes, 2)),
        vec![key("u", 0), key("t", 3)]
    );

    let busy: BTreeSet<PartitionKey> = [key("t", 3)].into();
    assert_eq!(
        keys(next_batch(&target, &current, &busy, &sizes, 3)),
        vec![key("u", 0), key("t", 1)]
    );
    assert!(next_batch(&target, &current, &busy, &sizes, 1).is_empty());
    assert!(next_batch(&target, &current, &none, &sizes, 0).is_empty());
}

#[test]
fn load_counts_replicas_and_preferred_leaders() {
    let mut a = Assignment::new();
    a.insert(key("t", 0), vec![0, 1]);
    a.insert(key("t", 1), vec![1, 2, 1]);
    a.insert(key("t", 2), vec![]);
    let l = load(&a);
    assert_eq!(l, [(0, (1, 1)), (1, (2, 1)), (2, (1, 0))].into());
}

// ---- properties ----

/// Brokers `listed` (ids) with racks `racks` (None: no racks; else a rack index per broker).
fn infos(listed: &[i32], racks: &Option<Vec<u8>>) -> Vec<BrokerInfo> {
    listed
        .iter()
        .enumerate()
        .map(|(i, &id)| BrokerInfo {
            id,
            rack: racks.as_ref().map(|r| format!("r{}", r[i % r.len()])),
        })
        .collect()
}

/// The rack cap of the module doc, written out again for the checks.
fn cap_of(bs: &[BrokerInfo], rf: usize) -> usize {
    let mut racks: BTreeMap<String, usize> = BTreeMap::new();
    for b in bs {
        let r = b.rack.clone().unwrap_or_else(|| format!("alone-{}", b.id));
        *racks.entry(r).or_default() += 1;
    }
    (1..=rf)
        .find(|&c| racks.values().map(|&s| s.min(c)).sum::<usize>() >= rf)
        .unwrap_or(rf)
}

fn rack_ok(bs: &[BrokerInfo], list: &[i32]) -> bool {
    let cap = cap_of(bs, list.len());
    let rack = |id: i32| {
        bs.iter()
            .find(|b| b.id == id)
            .and_then(|b| b.rack.clone())
            .unwrap_or_else(|| format!("alone-{id}"))
    };
    list.iter()
        .all(|&b| list.iter().filter(|&&x| rack(x) == rack(b)).count() <= cap)
}

/// Moves no plan can do without, with no racks: replicas on unlisted brokers, plus what the
/// listed brokers hold beyond their share once the `total % n` brokers holding most keep the
/// ceiling (each move takes one replica off one broker).
fn lower_bound(assignment: &Assignment, listed: &[i32]) -> usize {
    let n = listed.len();
    let total: usize = assignment.values().map(Vec::len).sum();
    let outside = assignment
        .values()
        .flatten()
        .filter(|b| !listed.contains(b))
        .count();
    let counts = load(assignment);
    let mut loads: Vec<usize> = listed
        .iter()
        .map(|b| counts.get(b).map_or(0, |c| c.0))
        .collect();
    loads.sort_unstable_by(|a, b| b.cmp(a));
    let excess: usize = loads
        .iter()
        .enumerate()
        .map(|(i, &l)| l.saturating_sub(total / n + usize::from(i < total % n)))
        .sum();
    outside + excess
}

/// The best (sum of squared replica counts, moves) over every placement obeying the rack rule.
fn brute_force(bs: &[BrokerInfo], assignment: &Assignment) -> (usize, usize) {
    let ids: Vec<i32> = bs.iter().map(|b| b.id).collect();
    let lists: Vec<&Vec<i32>> = assignment.values().collect();
    let mut choices: Vec<Vec<Vec<i32>>> = Vec::new();
    for list in &lists {
        let rf = list.len();
        let mut all = Vec::new();
        for mask in 0u32..(1 << ids.len()) {
            if mask.count_ones() as usize != rf {
                continue;
            }
            let set: Vec<i32> = (0..ids.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| ids[i])
                .collect();
            if rack_ok(bs, &set) {
                all.push(set);
            }
        }
        choices.push(all);
    }
    fn go(
        k: usize,
        choices: &[Vec<Vec<i32>>],
        lists: &[&Vec<i32>],
        loads: &mut BTreeMap<i32, usize>,
        moves: usize,
        best: &mut (usize, usize),
    ) {
        if k == choices.len() {
            let squares = loads.values().map(|l| l * l).sum();
            *best = (*best).min((squares, moves));
            return;
        }
        for set in &choices[k] {
            let added = set.iter().filter(|b| !lists[k].contains(b)).count();
            for b in set {
                *loads.entry(*b).or_default() += 1;
            }
            go(k + 1, choices, lists, loads, moves + added, best);
            for b in set {
                *loads.entry(*b).or_default() -= 1;
            }
        }
    }
    let mut best = (usize::MAX, usize::MAX);
    let mut loads = ids.iter().map(|&b| (b, 0)).collect();
    go(0, &choices, &lists, &mut loads, 0, &mut best);
    best
}

fn squares(assignment: &Assignment, listed: &[i32], leaders: bool) -> usize {
    let counts = load(assignment);
    listed
        .iter()
        .map(|b| counts.get(b).map_or(0, |c| if leaders { c.1 } else { c.0 }))
        .map(|l| l * l)
        .sum()
}

/// The most even preferred leaders (sum of squares) reachable by reordering the lists.
fn best_leaders(assignment: &Assignment, listed: &[i32]) -> usize {
    fn go(k: usize, lists: &[&Vec<i32>], loads: &mut BTreeMap<i32, usize>, best: &mut usize) {
        if k == lists.len() {
            *best = (*best).min(loads.values().map(|l| l * l).sum());
            return;
        }
        for &b in lists[k] {
            *loads.entry(b).or_default() += 1;
            go(k + 1, lists, loads, best);
            *loads.entry(b).or_default() -= 1;
        }
    }
    let lists: Vec<&Vec<i32>> = assignment.values().collect();
    let mut best = usize::MAX;
    go(
        0,
        &lists,
        &mut listed.iter().map(|&b| (b, 0)).collect(),
        &mut best,
    );
    best
}

/// (listed brokers, racks, assignment, sizes): current replicas on a random subset of ids
/// `0..universe`, the listed brokers another (nonempty) subset; every replication factor at most
/// both subsets' sizes. `racks`: none, or a rack per listed broker (`equal`: racks of equal size).
fn scenario(
    universe: usize,
    max_partitions: usize,
    equal: bool,
) -> impl Strategy<
    Value = (
        Vec<i32>,
        Option<Vec<u8>>,
        Assignment,
        BTreeMap<PartitionKey, u64>,
    ),
> {
    let ids = prop::sample::subsequence((0..universe as i32).collect::<Vec<_>>(), 1..=universe);
    (ids.clone(), ids).prop_flat_map(move |(old, listed)| {
        let max_rf = old.len().min(listed.len()).min(3);
        let racks = if equal {
            let n = listed.len();
            let per = (1..=n).filter(|k| n % k == 0).collect::<Vec<_>>();
            prop::sample::select(per)
                .prop_map(move |k| Some((0..n).map(|i| (i % (n / k)) as u8).collect()))
                .boxed()
        } else {
            prop_oneof![
                Just(None),
                prop::collection::vec(0u8..3, listed.len()).prop_map(Some),
            ]
            .boxed()
        };
        let part = (1..=max_rf, 0u64..1000).prop_flat_map({
            let old = old.clone();
            move |(rf, size)| {
                prop::sample::subsequence(old.clone(), rf)
                    .prop_shuffle()
                    .prop_map(move |list| (list, size))
            }
        });
        let parts = prop::collection::vec(part, 0..=max_partitions);
        (Just(listed), racks, parts).prop_map(|(listed, racks, parts)| {
            let mut a = Assignment::new();
            let mut sizes = BTreeMap::new();
            for (p, (list, size)) in parts.into_iter().enumerate() {
                let k = key(if p % 2 == 0 { "even" } else { "odd" }, p as i32);
                a.insert(k.clone(), list);
                sizes.insert(k, size);
            }
            (listed, racks, a, sizes)
        })
    })
}

fn check_result(
    bs: &[BrokerInfo],
    before: &Assignment,
    plan: &Plan,
    sizes: &BTreeMap<PartitionKey, u64>,
) -> Result<Assignment, TestCaseError> {
    let ids: Vec<i32> = bs.iter().map(|b| b.id).collect();
    let after = apply(before, plan);
    let mut moves = 0;
    let mut bytes = 0;
    for (k, list) in &after {
        prop_assert_eq!(list.len(), before[k].len(), "{:?}", k);
        let distinct: BTreeSet<i32> = list.iter().copied().collect();
        prop_assert_eq!(distinct.len(), list.len(), "{:?}: {:?}", k, list);
        prop_assert!(list.iter().all(|b| ids.contains(b)), "{:?}: {:?}", k, list);
        let added = list.iter().filter(|b| !before[k].contains(b)).count();
        moves += added;
        bytes += added as u64 * sizes[k];
    }
    for (k, list) in &plan.target {
        prop_assert_ne!(list, &before[k]);
    }
    prop_assert_eq!(plan.replica_moves, moves);
    prop_assert_eq!(plan.bytes, bytes);
    Ok(after)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plan_is_valid_even_minimal_and_idempotent(
        (listed, racks, before, sizes) in scenario(8, 14, false)
    ) {
        let bs = infos(&listed, &racks);
        let plan = run(&bs, &before, &sizes);
        let after = check_result(&bs, &before, &plan, &sizes)?;
        for (k, list) in &after {
            prop_assert!(rack_ok(&bs, list), "{:?}: {:?} {:?}", k, list, bs);
        }
        if racks.is_none() {
            let total: usize = before.values().map(Vec::len).sum();
            let n = listed.len();
            let counts = load(&after);
            for b in &listed {
                let l = counts.get(b).map_or(0, |c| c.0);
                prop_assert!(total / n <= l && l <= total.div_ceil(n), "{}: {:?}", b, counts);
            }
            let bound = lower_bound(&before, &listed);
            prop_assert!(plan.replica_moves >= bound);
            // With nothing to drain, moving one replica from a broker above its share to one
            // below is always possible (it holds more partitions), so the bound is reached.
            if before.values().flatten().all(|b| listed.contains(b)) {
                prop_assert_eq!(plan.replica_moves, bound);
            }
        }
        let again = run(&bs, &after, &sizes);
        prop_assert_eq!(again, Plan::default());
    }

    #[test]
    fn racks_of_equal_size_still_balance(
        (listed, racks, before, sizes) in scenario(8, 14, true)
    ) {
        let bs = infos(&listed, &racks);
        let plan = run(&bs, &before, &sizes);
        let after = check_result(&bs, &before, &plan, &sizes)?;
        let total: usize = before.values().map(Vec::len).sum();
        let n = listed.len();
        let counts = load(&after);
        for (k, list) in &after {
            prop_assert!(rack_ok(&bs, list), "{:?}: {:?}", k, list);
        }
        for b in &listed {
            let l = counts.get(b).map_or(0, |c| c.0);
            prop_assert!(total / n <= l && l <= total.div_ceil(n), "{}: {:?} {:?}", b, counts, bs);
        }
        prop_assert_eq!(run(&bs, &after, &sizes), Plan::default());
    }

    #[test]
    fn drain_moves_only_what_is_on_unlisted_brokers(
        (listed, racks, before, sizes) in scenario(8, 14, false)
    ) {
        let bs = infos(&listed, &racks);
        let plan = run_drain(&bs, &before, &sizes);
        let after = check_result(&bs, &before, &plan, &sizes)?;
        let outside = before.values().flatten().filter(|b| !listed.contains(b)).count();
        prop_assert_eq!(plan.replica_moves, outside);
        for (k, list) in &after {
            for (old, new) in before[k].iter().zip(list) {
                prop_assert_eq!(listed.contains(old), old == new, "{:?}: {:?} -> {:?}", k, before[k], list);
            }
        }
        prop_assert_eq!(run_drain(&bs, &after, &sizes), Plan::default());
    }

    #[test]
    fn odd_inputs_never_panic(
        lists in prop::collection::vec(prop::collection::vec(-2i32..6, 0..6), 0..8),
        listed in prop::collection::vec((-2i32..6, prop::option::of(0u8..3)), 0..6),
        rf in 0usize..8,
    ) {
        let bs: Vec<BrokerInfo> = listed
            .iter()
            .map(|&(id, r)| BrokerInfo { id, rack: r.map(|r| format!("r{r}")) })
            .collect();
        let a: Assignment = lists.iter().enumerate().map(|(p, l)| (key("t", p as i32), l.clone())).collect();
        let sizes = BTreeMap::new();
        let p = run(&bs, &a, &sizes);
        let ids: BTreeSet<i32> = bs.iter().map(|b| b.id).collect();
        for (k, list) in &p.target {
            prop_assert_eq!(list.len(), a[k].len());
        }
        // Idempotent even then.
        prop_assert_eq!(run(&bs, &apply(&a, &p), &sizes), Plan::default());
        let _ = run_drain(&bs, &a, &sizes);
        let load_now: BTreeMap<i32, usize> = load(&a).into_iter().map(|(b, c)| (b, c.0)).collect();
        if let Some(list) = lists.first() {
            match change_replication_factor(list, list.first().copied(), rf, &bs, &load_now) {
                Ok(out) => prop_assert_eq!(out.len(), rf),
                Err(_) => prop_assert!(rf < 1 || rf > ids.len()),
            }
        }
    }
}

proptest! {
    // Cheap cases (at most 5 brokers, 4 partitions): more of them.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn plan_matches_brute_force_on_small_clusters(
        (listed, racks, before, sizes) in scenario(5, 4, false)
    ) {
        let bs = infos(&listed, &racks);
        let plan = run(&bs, &before, &sizes);
        let after = check_result(&bs, &before, &plan, &sizes)?;
        let (best_squares, best_moves) = brute_force(&bs, &before);
        prop_assert_eq!(squares(&after, &listed, false), best_squares);
        prop_assert_eq!(plan.replica_moves, best_moves);
        prop_assert_eq!(squares(&after, &listed, true), best_leaders(&after, &listed));
        if racks.is_none() {
            prop_assert!(plan.replica_moves >= lower_bound(&before, &listed));
        }
    }
}
