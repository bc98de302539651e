//! Unit and property tests of replica placement and assignment validation: no network, no clock.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use uuid::Uuid;

use super::*;
use crate::protocol::errors::ApiError;

fn broker(id: i32) -> BrokerInfo {
    BrokerInfo {
        id,
        rack: None,
        fenced: false,
    }
}

fn racked(id: i32, rack: &str) -> BrokerInfo {
    BrokerInfo {
        id,
        rack: Some(rack.to_string()),
        fenced: false,
    }
}

fn brokers(ids: impl IntoIterator<Item = i32>) -> Vec<BrokerInfo> {
    ids.into_iter().map(broker).collect()
}

fn place(brokers: &[BrokerInfo], partitions: i32, rf: i16) -> Vec<Vec<i32>> {
    assign_replicas(
        brokers,
        &ExistingLoad::default(),
        partitions,
        rf,
        0,
        RackMode::Enforced,
    )
    .unwrap()
}

/// Replica and preferred-leader counts per broker of `ids` (zero for a broker with none).
fn counts(ids: &[i32], load: &ExistingLoad) -> (Vec<u64>, Vec<u64>) {
    (
        ids.iter().map(|b| load.replicas(*b)).collect(),
        ids.iter().map(|b| load.leaders(*b)).collect(),
    )
}

fn load_of(assignment: &[Vec<i32>]) -> ExistingLoad {
    let mut load = ExistingLoad::default();
    for replicas in assignment {
        load.add_partition(replicas);
    }
    load
}

fn spread(values: &[u64]) -> u64 {
    values.iter().max().unwrap() - values.iter().min().unwrap()
}

fn no_duplicates(assignment: &[Vec<i32>]) -> bool {
    assignment
        .iter()
        .all(|r| r.iter().collect::<BTreeSet<_>>().len() == r.len())
}

fn rack_of(brokers: &[BrokerInfo]) -> BTreeMap<i32, String> {
    brokers
        .iter()
        .map(|b| (b.id, b.rack.clone().unwrap_or_default()))
        .collect()
}

// ---- errors ----

#[test]
fn zero_or_negative_partitions_are_refused() {
    let b = brokers(1..=3);
    for p in [0, -1] {
        let err = assign_replicas(&b, &ExistingLoad::default(), p, 1, 0, RackMode::Enforced);
        assert_eq!(err, Err(AssignError::InvalidPartitions(p)));
    }
}

#[test]
fn partition_indexes_out_of_range_are_refused() {
    let b = brokers(1..=3);
    for (start, count) in [(-1, 1), (i32::MAX, 1)] {
        let err = assign_replicas(
            &b,
            &ExistingLoad::default(),
            count,
            1,
            start,
            RackMode::Enforced,
        );
        assert_eq!(err, Err(AssignError::PartitionRange { start, count }));
    }
}

#[test]
fn zero_or_negative_replication_factor_is_refused() {
    let b = brokers(1..=3);
    for rf in [0, -1] {
        let err = assign_replicas(&b, &ExistingLoad::default(), 1, rf, 0, RackMode::Enforced);
        assert_eq!(err, Err(AssignError::InvalidReplicationFactor(rf)));
    }
}

#[test]
fn replication_factor_above_unfenced_brokers_is_refused() {
    let mut b = brokers(1..=4);
    b[0].fenced = true;
    let err = assign_replicas(&b, &ExistingLoad::default(), 1, 4, 0, RackMode::Enforced);
    assert_eq!(
        err,
        Err(AssignError::InsufficientBrokers {
            requested: 4,
            available: 3
        })
    );
    let none = assign_replicas(&[], &ExistingLoad::default(), 1, 1, 0, RackMode::Enforced);
    assert_eq!(
        none,
        Err(AssignError::InsufficientBrokers {
            requested: 1,
            available: 0
        })
    );
}

#[test]
fn mixed_racks_are_refused_when_enforced_and_ignored_otherwise() {
    let b = vec![racked(1, "a"), broker(2), racked(3, "b"), broker(4)];
    let err = assign_replicas(&b, &ExistingLoad::default(), 4, 2, 0, RackMode::Enforced);
    assert_eq!(
        err,
        Err(AssignError::MixedRacks {
            without: vec![2, 4]
        })
    );
    for mode in [RackMode::Safe, RackMode::Disabled] {
        let a = assign_replicas(&b, &ExistingLoad::default(), 4, 2, 0, mode).unwrap();
        assert_eq!(a.len(), 4);
        let (r, l) = counts(&[1, 2, 3, 4], &load_of(&a));
        assert_eq!((r, l), (vec![2, 2, 2, 2], vec![1, 1, 1, 1]));
    }
    // A fenced broker without a rack does not count.
    let mut c = b.clone();
    c[1].fenced = true;
    c[3].fenced = true;
    assert!(assign_replicas(&c, &ExistingLoad::default(), 4, 2, 0, RackMode::Enforced).is_ok());
}

#[test]
fn validate_refuses_each_broken_rule() {
    let mut b = brokers(1..=3);
    b[2].fenced = true;
    let check = |a: &[Vec<i32>], n: Option<i32>| validate_assignment(&b, a, n);
    assert_eq!(check(&[], None), Err(AssignError::EmptyAssignment));
    assert_eq!(
        check(&[vec![1], vec![]], None),
        Err(AssignError::NoReplicas { partition: 1 })
    );
    assert_eq!(
        check(&[vec![], vec![]], None),
        Err(AssignError::NoReplicas { partition: 0 })
    );
    assert_eq!(
        check(&[vec![1, 2], vec![2]], None),
        Err(AssignError::InconsistentReplicationFactor {
            partition: 1,
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        check(&[vec![1, 2], vec![2, 2]], None),
        Err(AssignError::DuplicateReplica {
            partition: 1,
            broker: 2
        })
    );
    assert_eq!(
        check(&[vec![1, 7]], None),
        Err(AssignError::UnknownBroker {
            partition: 0,
            broker: 7
        })
    );
    assert_eq!(
        check(&[vec![1], vec![3]], None),
        Err(AssignError::AllReplicasFenced {
            partition: 1,
            replicas: vec![3]
        })
    );
    assert_eq!(
        check(&[vec![1, 2]], Some(2)),
        Err(AssignError::PartitionCountMismatch {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(check(&[vec![1, 2], vec![2, 3]], Some(2)), Ok(()));
    assert_eq!(check(&[vec![3, 1]], None), Ok(()));
}

#[test]
fn errors_map_to_kafka_codes_with_messages_naming_the_problem() {
    let cases = [
        (
            AssignError::InvalidPartitions(0),
            ResponseError::InvalidPartitions,
            "0",
        ),
        (
            AssignError::PartitionRange {
                start: -1,
                count: 1,
            },
            ResponseError::InvalidPartitions,
            "-1",
        ),
        (
            AssignError::InvalidReplicationFactor(0),
            ResponseError::InvalidReplicationFactor,
            "replication factor",
        ),
        (
            AssignError::InsufficientBrokers {
                requested: 4,
                available: 3,
            },
            ResponseError::InvalidReplicationFactor,
            "replication factor 4 is larger than the 3",
        ),
        (
            AssignError::MixedRacks { without: vec![2] },
            ResponseError::InvalidReplicationFactor,
            "[2] have no rack",
        ),
        (
            AssignError::EmptyAssignment,
            ResponseError::InvalidReplicaAssignment,
            "no partitions",
        ),
        (
            AssignError::PartitionCountMismatch {
                expected: 2,
                found: 1,
            },
            ResponseError::InvalidReplicaAssignment,
            "1 partitions, 2 expected",
        ),
        (
            AssignError::NoReplicas { partition: 3 },
            ResponseError::InvalidReplicaAssignment,
            "partition 3 has no replicas",
        ),
        (
            AssignError::InconsistentReplicationFactor {
                partition: 1,
                expected: 2,
                found: 1,
            },
            ResponseError::InvalidReplicaAssignment,
            "partition 1 has 1 replicas",
        ),
        (
            AssignError::DuplicateReplica {
                partition: 0,
                broker: 5,
            },
            ResponseError::InvalidReplicaAssignment,
            "broker 5 more than once",
        ),
        (
            AssignError::UnknownBroker {
                partition: 0,
                broker: 7,
            },
            ResponseError::InvalidReplicaAssignment,
            "broker 7, which is not registered",
        ),
        (
            AssignError::AllReplicasFenced {
                partition: 2,
                replicas: vec![3],
            },
            ResponseError::InvalidReplicaAssignment,
            "partition 2 is fenced",
        ),
    ];
    for (error, code, words) in cases {
        let api = ApiError::from(error);
        assert_eq!(api.code, code, "{}", api.message);
        assert!(
            api.message.contains(words),
            "{:?} lacks {words:?}",
            api.message
        );
    }
}

// ---- examples ----

#[test]
fn three_brokers_replication_factor_three() {
    let a = place(&brokers(1..=3), 3, 3);
    assert_eq!(a.len(), 3);
    assert!(a.iter().all(|r| r.len() == 3) && no_duplicates(&a));
    let leaders: BTreeSet<i32> = a.iter().map(|r| r[0]).collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]));
    validate_assignment(&brokers(1..=3), &a, Some(3)).unwrap();
}

#[test]
fn six_brokers_in_three_racks_put_every_partition_on_three_racks() {
    let b = vec![
        racked(1, "a"),
        racked(2, "a"),
        racked(3, "b"),
        racked(4, "b"),
        racked(5, "c"),
        racked(6, "c"),
    ];
    let a = place(&b, 12, 3);
    let racks = rack_of(&b);
    for replicas in &a {
        let used: BTreeSet<&String> = replicas.iter().map(|id| &racks[id]).collect();
        assert_eq!(used.len(), 3, "{replicas:?}");
    }
    let (r, l) = counts(&[1, 2, 3, 4, 5, 6], &load_of(&a));
    assert_eq!(r, vec![6; 6]);
    assert_eq!(l, vec![2; 6]);
}

#[test]
fn five_brokers_replication_factor_two_ten_partitions() {
    let a = place(&brokers(1..=5), 10, 2);
    let (r, l) = counts(&[1, 2, 3, 4, 5], &load_of(&a));
    assert_eq!(r, vec![4; 5]);
    assert_eq!(l, vec![2; 5]);
}

#[test]
fn growing_a_topic_keeps_the_balance_given_existing_load() {
    let b = brokers(1..=4);
    let first = place(&b, 3, 2);
    let load = load_of(&first);
    let more = assign_replicas(&b, &load, 5, 2, 3, RackMode::Enforced).unwrap();
    let all: Vec<Vec<i32>> = first.iter().chain(&more).cloned().collect();
    let (r, l) = counts(&[1, 2, 3, 4], &load_of(&all));
    assert_eq!(r, vec![4; 4]);
    assert_eq!(l, vec![2; 4]);
}

#[test]
fn a_new_broker_is_filled_first() {
    let b = brokers(1..=3);
    let before = place(&b, 6, 2);
    let mut grown = b.clone();
    grown.push(broker(4));
    let more = assign_replicas(&grown, &load_of(&before), 3, 1, 6, RackMode::Enforced).unwrap();
    assert_eq!(more, vec![vec![4], vec![4], vec![4]]);
}

#[test]
fn a_fenced_broker_gets_nothing() {
    let mut b = brokers(1..=4);
    b[1].fenced = true;
    let a = place(&b, 30, 3);
    assert!(a.iter().flatten().all(|id| *id != 2));
    let (r, l) = counts(&[1, 3, 4], &load_of(&a));
    assert_eq!(r, vec![30; 3]);
    assert_eq!(l, vec![10; 3]);
}

#[test]
fn placement_is_deterministic() {
    let b = vec![
        racked(3, "x"),
        racked(1, "y"),
        racked(2, "x"),
        racked(4, "z"),
    ];
    let load = load_of(&[vec![1, 2], vec![3, 4], vec![1, 3]]);
    let one = assign_replicas(&b, &load, 17, 3, 2, RackMode::Enforced).unwrap();
    let two = assign_replicas(&b, &load, 17, 3, 2, RackMode::Enforced).unwrap();
    assert_eq!(one, two);
    // The order brokers are listed in does not matter.
    let mut reversed = b.clone();
    reversed.reverse();
    let three = assign_replicas(&reversed, &load, 17, 3, 2, RackMode::Enforced).unwrap();
    assert_eq!(one, three);
}

#[test]
fn more_replicas_than_racks_spread_evenly_over_racks() {
    // 2 racks, RF 3: two replicas in one rack, one in the other, never three in one.
    let b = vec![
        racked(1, "a"),
        racked(2, "a"),
        racked(3, "b"),
        racked(4, "b"),
    ];
    let racks = rack_of(&b);
    for replicas in place(&b, 8, 3) {
        let mut per_rack = BTreeMap::new();
        for id in &replicas {
            *per_rack.entry(&racks[id]).or_insert(0) += 1;
        }
        assert_eq!(per_rack.len(), 2);
        assert!(per_rack.values().all(|n| *n <= 2));
    }
}

#[test]
fn existing_load_counts_replicas_and_preferred_leaders_of_the_image() {
    let mut image = MetadataImage::default();
    for id in 1..=3 {
        let register = MetadataCommand::RegisterBroker {
            id,
            host: format!("b{id}"),
            port: 9092,
            rack: Some(format!("r{id}")),
            incarnation_id: format!("inc-{id}"),
            replication: String::new(),
            listeners: Vec::new(),
        };
        apply(&mut image, &register).unwrap();
        apply(&mut image, &MetadataCommand::UnfenceBroker { id }).unwrap();
    }
    let create = MetadataCommand::CreateTopic {
        name: "t".into(),
        id: Uuid::new_v4(),
        assignment: vec![vec![1, 2], vec![2, 3], vec![2, 1]],
        configs: BTreeMap::new(),
    };
    apply(&mut image, &create).unwrap();
    let load = ExistingLoad::from_image(&image);
    assert_eq!(counts(&[1, 2, 3], &load), (vec![2, 3, 1], vec![1, 2, 0]));
    let infos = BrokerInfo::from_image(&image);
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[0].rack.as_deref(), Some("r1"));
    // The next topic leans on broker 3.
    let next = assign_replicas(&infos, &load, 1, 1, 0, RackMode::Enforced).unwrap();
    assert_eq!(next, vec![vec![3]]);
}

// ---- properties ----

/// Brokers with distinct ids, some fenced; `racks` of them (0 = none) assigned at random.
fn any_brokers() -> impl Strategy<Value = (Vec<BrokerInfo>, bool)> {
    (
        prop::collection::btree_set(0i32..1000, 1..=12),
        0usize..=4,
        any::<u64>(),
    )
        .prop_map(|(ids, racks, seed)| {
            let mut bits = seed;
            let infos = ids
                .into_iter()
                .map(|id| {
                    let fenced = bits % 5 == 0;
                    let rack = (racks > 0).then(|| format!("r{}", (bits / 5) % racks as u64));
                    bits = bits.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
                    BrokerInfo { id, rack, fenced }
                })
                .collect();
            (infos, racks > 0)
        })
}

/// Unfenced brokers in `racks` racks of equal size (0 = no racks), plus fenced ones anywhere.
fn balanced_brokers() -> impl Strategy<Value = Vec<BrokerInfo>> {
    (
        0usize..=4,
        1usize..=4,
        prop::collection::btree_set(0i32..1000, 20),
        0usize..=3,
    )
        .prop_map(|(racks, per_rack, ids, fenced)| {
            let ids: Vec<i32> = ids.into_iter().collect();
            let live = racks.max(1) * per_rack;
            ids.iter()
                .take(live + fenced)
                .enumerate()
                .map(|(i, id)| BrokerInfo {
                    id: *id,
                    rack: (racks > 0).then(|| format!("r{}", i % racks)),
                    fenced: i >= live,
                })
                .collect()
        })
}

/// Checks what holds for every placement: shape, no duplicate, only unfenced brokers, valid,
/// and (rack-aware) a maximal spread over racks.
fn check_common(b: &[BrokerInfo], a: &[Vec<i32>], partitions: i32, rf: i16, racks: bool) {
    let usable: BTreeMap<i32, &BrokerInfo> =
        b.iter().filter(|x| !x.fenced).map(|x| (x.id, x)).collect();
    assert_eq!(a.len(), partitions as usize);
    assert!(no_duplicates(a), "{a:?}");
    for replicas in a {
        assert_eq!(replicas.len(), rf as usize);
        assert!(
            replicas.iter().all(|id| usable.contains_key(id)),
            "{replicas:?}"
        );
    }
    validate_assignment(b, a, Some(partitions)).unwrap();
    if !racks {
        return;
    }
    // Maximal rack spread: a rack holds two more replicas of a partition than another only
    // when the other has no broker left.
    let mut size: BTreeMap<&str, usize> = BTreeMap::new();
    for info in usable.values() {
        *size.entry(info.rack.as_deref().unwrap_or("")).or_default() += 1;
    }
    for replicas in a {
        let mut per: BTreeMap<&str, usize> = size.keys().map(|r| (*r, 0)).collect();
        for id in replicas {
            *per.entry(usable[id].rack.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
        for (r, n) in &per {
            for m in per.values() {
                assert!(*m <= n + 1 || *n == size[r], "{replicas:?} over {per:?}");
            }
        }
        let distinct = per.values().filter(|n| **n > 0).count();
        assert_eq!(distinct, size.len().min(rf as usize), "{replicas:?}");
    }
}

proptest! {
    // A fixed seed keeps runs reproducible; failures still shrink to a minimal input.
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x5a45_a551),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_placement_is_valid_and_spread_over_racks(
        (b, racks) in any_brokers(),
        partitions in 1i32..200,
        rf_seed in 0usize..5,
        start in 0i32..1000,
    ) {
        let usable = b.iter().filter(|x| !x.fenced).count();
        prop_assume!(usable > 0);
        let rf = (rf_seed % usable.min(5)) as i16 + 1;
        let a = assign_replicas(&b, &ExistingLoad::default(), partitions, rf, start, RackMode::Enforced)
            .unwrap();
        check_common(&b, &a, partitions, rf, racks);
    }

    #[test]
    fn from_zero_load_replicas_and_leaders_differ_by_at_most_one(
        b in balanced_brokers(),
        partitions in 1i32..200,
        rf_seed in 0usize..5,
        start in 0i32..1000,
    ) {
        let usable: Vec<i32> = b.iter().filter(|x| !x.fenced).map(|x| x.id).collect();
        let rf = (rf_seed % usable.len().min(5)) as i16 + 1;
        let racks = b.iter().any(|x| x.rack.is_some());
        let a = assign_replicas(&b, &ExistingLoad::default(), partitions, rf, start, RackMode::Enforced)
            .unwrap();
        check_common(&b, &a, partitions, rf, racks);
        let (r, l) = counts(&usable, &load_of(&a));
        prop_assert!(spread(&r) <= 1, "replicas {:?} of {:?}", r, usable);
        prop_assert!(spread(&l) <= 1, "leaders {:?} of {:?}", l, usable);
    }

    #[test]
    fn growing_in_steps_stays_balanced(
        b in balanced_brokers(),
        steps in prop::collection::vec(1i32..30, 1..6),
        rf_seed in 0usize..5,
    ) {
        let usable: Vec<i32> = b.iter().filter(|x| !x.fenced).map(|x| x.id).collect();
        let rf = (rf_seed % usable.len().min(5)) as i16 + 1;
        let mut all: Vec<Vec<i32>> = Vec::new();
        for step in steps {
            let start = all.len() as i32;
            let more = assign_replicas(&b, &load_of(&all), step, rf, start, RackMode::Enforced)
                .unwrap();
            all.extend(more);
        }
        // Existing load can leave the rack rule or the replica sets no perfect choice: without
        // racks replicas stay within one; with racks, and for leaders, within two.
        let racks = b.iter().any(|x| x.rack.is_some());
        let (r, l) = counts(&usable, &load_of(&all));
        prop_assert!(spread(&r) <= if racks { 2 } else { 1 }, "replicas {:?} of {:?}", r, usable);
        prop_assert!(spread(&l) <= 2, "leaders {:?} of {:?}", l, usable);
    }
}

#[test]
fn a_large_topic_is_placed_balanced() {
    let b = brokers(1..=7);
    let a = place(&b, 5000, 3);
    let (r, l) = counts(&(1..=7).collect::<Vec<_>>(), &load_of(&a));
    assert!(spread(&r) <= 1 && spread(&l) <= 1, "{r:?} {l:?}");
}
