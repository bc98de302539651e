use super::*;
use proptest::prelude::*;

fn p(topic: &str, partition: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionReplicas {
    PartitionReplicas {
        topic: topic.into(),
        partition,
        leader,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
    }
}

#[test]
fn classify_each_state() {
    let m = 2;
    assert_eq!(
        classify(&p("t", 0, 1, &[1, 2, 3], &[1, 2, 3]), m),
        PartitionState::Healthy
    );
    assert_eq!(
        classify(&p("t", 0, 1, &[1, 2, 3, 4], &[1, 2, 3]), m),
        PartitionState::UnderReplicated
    );
    assert_eq!(
        classify(&p("t", 0, 1, &[1, 2, 3], &[1, 2]), m),
        PartitionState::AtMinIsr
    );
    assert_eq!(
        classify(&p("t", 0, 1, &[1, 2, 3], &[1]), m),
        PartitionState::UnderMinIsr
    );
    assert_eq!(
        classify(&p("t", 0, NO_LEADER, &[1, 2, 3], &[1, 2, 3]), m),
        PartitionState::Offline
    );
}

#[test]
fn isr_equal_to_min_isr_and_replicas_is_healthy() {
    // RF 2, minISR 2, both in sync: nothing is missing.
    assert_eq!(
        classify(&p("t", 0, 1, &[1, 2], &[1, 2]), 2),
        PartitionState::Healthy
    );
}

#[test]
fn fewer_replicas_than_min_isr_is_under_min_isr() {
    assert_eq!(
        classify(&p("t", 0, 1, &[1], &[1]), 2),
        PartitionState::UnderMinIsr
    );
}

#[test]
fn min_isr_per_topic_with_default_and_floor_of_one() {
    let m = MinIsr::new(2).with_topic("a", 3).with_topic("z", 0);
    assert_eq!(m.for_topic("a"), 3);
    assert_eq!(m.for_topic("b"), 2);
    assert_eq!(m.for_topic("z"), 1);
    assert_eq!(MinIsr::default().for_topic("x"), 1);
}

#[test]
fn assess_uses_the_topic_override() {
    let parts = [
        p("a", 0, 1, &[1, 2, 3], &[1, 2]),
        p("b", 0, 1, &[1, 2, 3], &[1, 2]),
    ];
    let facts = assess(&parts, &MinIsr::new(1).with_topic("a", 2));
    assert_eq!(facts[0].state, PartitionState::AtMinIsr);
    assert_eq!(facts[0].min_isr, 2);
    assert_eq!(facts[1].state, PartitionState::UnderReplicated);
}

#[test]
fn summary_counts_each_partition_once() {
    let parts = [
        p("t", 0, 1, &[1, 2, 3], &[1, 2, 3]),
        p("t", 1, 1, &[1, 2, 3], &[1, 2, 3]),
        p("t", 2, 1, &[1, 2, 3, 4], &[1, 2, 3]),
        p("t", 3, 1, &[1, 2, 3], &[1, 2]),
        p("t", 4, 1, &[1, 2, 3], &[1]),
        p("t", 5, -1, &[1, 2, 3], &[]),
    ];
    let s = summarize(&assess(&parts, &MinIsr::new(2)));
    assert_eq!(
        s,
        HealthSummary {
            total: 6,
            healthy: 2,
            under_replicated: 1,
            at_min_isr: 1,
            under_min_isr: 1,
            offline: 1,
        }
    );
    assert_eq!(s.not_fully_in_sync(), 4);
}

#[test]
fn broker_in_isr_at_min_isr_may_not_stop() {
    let parts = [
        p("t", 0, 1, &[1, 2, 3], &[1, 2]),
        p("t", 1, 2, &[2, 3, 4], &[2, 3, 4]),
    ];
    let m = MinIsr::new(2);
    let short = would_drop_below_min_isr(&parts, 1, &m, 0);
    assert_eq!(
        short,
        vec![IsrShortfall {
            topic: "t".into(),
            partition: 0,
            isr_without: 1,
            needed: 2,
            stopping_reduces_isr: true,
        }]
    );
    // Broker 4 hosts only the fully in-sync partition: 2 left ≥ 2.
    assert!(would_drop_below_min_isr(&parts, 4, &m, 0).is_empty());
    // With one replica of headroom it may not.
    assert_eq!(would_drop_below_min_isr(&parts, 4, &m, 1).len(), 1);
}

#[test]
fn broker_outside_the_isr_does_not_reduce_it() {
    // Broker 3 is a replica but out of sync: stopping it leaves the ISR {1, 2} intact.
    let parts = [p("t", 0, 1, &[1, 2, 3], &[1, 2])];
    assert!(would_drop_below_min_isr(&parts, 3, &MinIsr::new(2), 0).is_empty());
    // Already short with headroom: reported, but flagged as not made worse by the stop.
    let short = would_drop_below_min_isr(&parts, 3, &MinIsr::new(2), 1);
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].isr_without, 2);
    assert!(!short[0].stopping_reduces_isr);
}

#[test]
fn partitions_not_hosted_by_the_broker_are_ignored() {
    let parts = [p("t", 0, 1, &[1, 2, 3], &[1])];
    assert!(would_drop_below_min_isr(&parts, 4, &MinIsr::new(2), 0).is_empty());
}

#[test]
fn set_of_brokers_counts_all_stopped_isr_members() {
    let parts = [
        p("t", 0, 1, &[1, 2, 3], &[1, 2, 3]),
        p("u", 0, 4, &[4, 5, 6], &[4, 5, 6]),
    ];
    let m = MinIsr::new(2);
    // 1 and 4 share nothing: each partition keeps 2.
    assert!(would_set_drop_below_min_isr(&parts, &[1, 4], &m, 0).is_empty());
    // 1 and 2 together leave partition t-0 with one.
    let short = would_set_drop_below_min_isr(&parts, &[1, 2], &m, 0);
    assert_eq!(short.len(), 1);
    assert_eq!((short[0].topic.as_str(), short[0].isr_without), ("t", 1));
}

#[test]
fn safe_to_stop_keeps_candidate_order() {
    let parts = [
        p("t", 0, 1, &[1, 2, 3], &[1, 2]),
        p("u", 0, 3, &[3, 4, 5], &[3, 4, 5]),
    ];
    let safe = brokers_safe_to_stop(&parts, &[5, 1, 3, 2, 4], &MinIsr::new(2), 0);
    assert_eq!(safe, vec![5, 3, 4]);
}

#[test]
fn under_replicated_elsewhere_skips_partitions_the_broker_hosts() {
    let parts = [
        p("t", 0, 1, &[1, 2, 3], &[1, 2]),
        p("t", 1, -1, &[4, 5, 6], &[]),
        p("t", 2, 2, &[2, 3, 4], &[2, 4]),
        p("t", 3, 5, &[5, 6, 2], &[5, 6, 2]),
    ];
    let other: Vec<_> = under_replicated_elsewhere(&parts, 1, &MinIsr::new(1))
        .into_iter()
        .map(|f| (f.partition, f.state))
        .collect();
    assert_eq!(
        other,
        vec![
            (1, PartitionState::Offline),
            (2, PartitionState::UnderReplicated)
        ]
    );
}

#[test]
fn share_partition_and_disjoint_groups() {
    let parts = [
        p("t", 0, 1, &[1, 2], &[1, 2]),
        p("t", 1, 2, &[2, 3], &[2, 3]),
        p("t", 2, 3, &[3, 4], &[3, 4]),
    ];
    assert!(brokers_share_partition(&parts, 1, 2));
    assert!(!brokers_share_partition(&parts, 1, 3));
    assert_eq!(
        disjoint_broker_groups(&parts, &[1, 2, 3, 4, 5, 1]),
        vec![vec![1, 3, 5], vec![2, 4]]
    );
    // The caller's order decides.
    assert_eq!(
        disjoint_broker_groups(&parts, &[4, 3, 2, 1]),
        vec![vec![4, 2], vec![3, 1]]
    );
}

fn cluster() -> impl Strategy<Value = Vec<PartitionReplicas>> {
    // Up to 12 partitions on brokers 0..6, RF 1..=4, ISR a subset of the replicas.
    prop::collection::vec(
        (
            prop::sample::subsequence((0..6).collect::<Vec<i32>>(), 1..=4),
            any::<u8>(),
            any::<bool>(),
        ),
        0..12,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (replicas, mask, led))| {
                let isr: Vec<i32> = replicas
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| mask & (1 << j) != 0)
                    .map(|(_, b)| *b)
                    .collect();
                let leader = if led {
                    isr.first().copied().unwrap_or(-1)
                } else {
                    -1
                };
                p("t", i as i32, leader, &replicas, &isr)
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn disjoint_groups_partition_the_brokers_and_share_nothing(parts in cluster()) {
        let brokers: Vec<i32> = (0..7).collect();
        let groups = disjoint_broker_groups(&parts, &brokers);
        let mut all: Vec<i32> = groups.iter().flatten().copied().collect();
        all.sort();
        prop_assert_eq!(all, brokers);
        for g in &groups {
            for (i, a) in g.iter().enumerate() {
                for b in &g[i + 1..] {
                    prop_assert!(!brokers_share_partition(&parts, *a, *b));
                }
            }
        }
    }

    #[test]
    fn a_set_is_safe_only_if_every_member_is(parts in cluster(), min in 1usize..3, head in 0usize..2) {
        let m = MinIsr::new(min);
        let set = [0, 3];
        let together = would_set_drop_below_min_isr(&parts, &set, &m, head).is_empty();
        let alone = set.iter().all(|b| would_drop_below_min_isr(&parts, *b, &m, head).is_empty());
        // Stopping more brokers never leaves more in-sync replicas.
        prop_assert!(!together || alone);
    }

    #[test]
    fn summary_adds_up(parts in cluster(), min in 1usize..4) {
        let s = summarize(&assess(&parts, &MinIsr::new(min)));
        prop_assert_eq!(s.total, parts.len());
        prop_assert_eq!(s.healthy + s.under_replicated + s.at_min_isr + s.under_min_isr + s.offline, s.total);
    }
}
