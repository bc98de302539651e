//! Unit tests of the reassignment rules: no network, no clock.

use std::collections::BTreeMap;

use proptest::prelude::*;
use uuid::Uuid;

use super::apply_tests::cluster;
use super::*;

fn topic(image: &mut MetadataImage, replicas: &[i32]) {
    let cmd = MetadataCommand::CreateTopic {
        name: "t".into(),
        id: Uuid::new_v4(),
        assignment: vec![replicas.to_vec()],
        configs: BTreeMap::new(),
    };
    apply(image, &cmd).unwrap();
}

fn p(image: &MetadataImage) -> &PartitionRecord {
    image.partition("t", 0).unwrap()
}

fn reassign(image: &mut MetadataImage, target: Option<&[i32]>, min_isr: i32) -> ApplyResult {
    apply(
        image,
        &MetadataCommand::AlterReassignment {
            topic: "t".into(),
            partition: 0,
            target: target.map(<[i32]>::to_vec),
            min_isr,
        },
    )
}

/// The leader commits a new ISR, as it does when a follower caught up or fell behind.
fn isr(image: &mut MetadataImage, new_isr: &[i32]) -> ApplyResult {
    let r = p(image).clone();
    apply(
        image,
        &MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            broker_id: r.leader,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
            new_isr: new_isr.to_vec(),
        },
    )
}

#[test]
fn a_decommission_move_adds_then_removes_and_moves_the_leader() {
    let mut image = cluster(4);
    topic(&mut image, &[1, 2, 3]);
    let before = p(&image).clone();
    reassign(&mut image, Some(&[2, 3, 4]), 2).unwrap();
    let r = p(&image);
    assert_eq!(
        r.replicas,
        vec![2, 3, 4, 1],
        "target first, then the leaving replica"
    );
    let move_ = r.reassignment.as_ref().unwrap();
    assert_eq!((move_.adding(), move_.removing()), (vec![4], vec![1]));
    assert_eq!(r.isr, vec![2, 3, 1], "the ISR is not changed by the start");
    assert_eq!(r.leader, 1, "the leader stays until the move completes");
    assert_eq!(r.leader_epoch, before.leader_epoch);
    assert!(r.partition_epoch > before.partition_epoch);

    // 4 caught up: the leader adds it to the ISR, and the move completes in the same step.
    isr(&mut image, &[2, 3, 1, 4]).unwrap();
    let r = p(&image);
    assert_eq!(r.replicas, vec![2, 3, 4]);
    assert_eq!(r.isr, vec![2, 3, 4]);
    assert!(r.reassignment.is_none());
    assert_eq!(r.leader, 2, "the first in-sync target replica leads");
    assert_eq!(r.leader_epoch, before.leader_epoch + 1);
}

#[test]
fn replication_factor_goes_up_and_back_down() {
    let mut image = cluster(3);
    topic(&mut image, &[1, 2]);
    reassign(&mut image, Some(&[1, 2, 3]), 2).unwrap();
    assert_eq!(p(&image).replicas, vec![1, 2, 3]);
    assert!(p(&image).reassignment.is_some(), "3 has to catch up first");
    isr(&mut image, &[1, 2, 3]).unwrap();
    assert!(p(&image).reassignment.is_none());
    assert_eq!(p(&image).replicas, vec![1, 2, 3]);
    // Down to two: nothing to add, so it completes at once.
    reassign(&mut image, Some(&[1, 2]), 2).unwrap();
    let r = p(&image);
    assert!(r.reassignment.is_none());
    assert_eq!(
        (r.replicas.clone(), r.isr.clone(), r.leader),
        (vec![1, 2], vec![1, 2], 1)
    );
}

#[test]
fn cancel_goes_back_to_the_original_replicas() {
    let mut image = cluster(5);
    topic(&mut image, &[1, 2, 3]);
    assert_eq!(
        reassign(&mut image, None, 2),
        Err(Refusal::NoReassignmentInProgress {
            topic: "t".into(),
            partition: 0
        })
    );
    reassign(&mut image, Some(&[3, 4, 5]), 3).unwrap();
    // 4 caught up, 5 not yet: with min.insync.replicas 3 the move waits.
    isr(&mut image, &[1, 2, 3, 4]).unwrap();
    assert!(p(&image).reassignment.is_some());
    reassign(&mut image, None, 3).unwrap();
    let r = p(&image);
    assert!(r.reassignment.is_none());
    assert_eq!(r.replicas, vec![1, 2, 3]);
    assert_eq!(r.isr, vec![1, 2, 3], "4 leaves the ISR with the cancel");
    assert_eq!(r.leader, 1);
}

#[test]
fn a_new_target_replaces_the_move_in_progress() {
    let mut image = cluster(5);
    topic(&mut image, &[1, 2, 3]);
    reassign(&mut image, Some(&[2, 3, 4]), 2).unwrap();
    reassign(&mut image, Some(&[2, 3, 5]), 2).unwrap();
    let r = p(&image);
    assert_eq!(r.replicas, vec![2, 3, 5, 1]);
    let move_ = r.reassignment.as_ref().unwrap();
    assert_eq!(move_.original, vec![1, 2, 3], "the original set is kept");
    assert_eq!(move_.adding(), vec![5]);
    // Back to the original set (in another order): the move ends, nothing moved.
    reassign(&mut image, Some(&[3, 2, 1]), 2).unwrap();
    let r = p(&image);
    assert!(r.reassignment.is_none());
    assert_eq!(r.replicas, vec![3, 2, 1]);
}

#[test]
fn a_move_never_completes_below_min_insync_replicas() {
    let mut image = cluster(4);
    topic(&mut image, &[1, 2, 3]);
    // 3 is lagging: the ISR is [1, 2].
    isr(&mut image, &[1, 2]).unwrap();
    reassign(&mut image, Some(&[2, 3, 4]), 3).unwrap();
    isr(&mut image, &[1, 2, 4]).unwrap();
    assert!(
        p(&image).reassignment.is_some(),
        "only 2 and 4 of the target are in sync: finishing would leave 2 < 3"
    );
    isr(&mut image, &[1, 2, 4, 3]).unwrap();
    let r = p(&image);
    assert!(r.reassignment.is_none());
    assert_eq!(r.isr, vec![2, 3, 4]);
}

#[test]
fn bad_targets_are_refused_and_change_nothing() {
    let mut image = cluster(3);
    topic(&mut image, &[1, 2, 3]);
    let before = image.clone();
    for (target, needle) in [
        (vec![], "empty"),
        (vec![1, 1, 2], "twice"),
        (vec![1, 2, 9], "not registered"),
    ] {
        let e = reassign(&mut image, Some(&target), 2).unwrap_err();
        assert!(
            matches!(&e, Refusal::InvalidAssignment(m) if m.contains(needle)),
            "{target:?}: {e}"
        );
        assert_eq!(image, before);
    }
    let e = apply(
        &mut image,
        &MetadataCommand::AlterReassignment {
            topic: "nope".into(),
            partition: 0,
            target: Some(vec![1]),
            min_isr: 1,
        },
    );
    assert!(matches!(e, Err(Refusal::UnknownPartition { .. })));
}

#[test]
fn a_new_request_completes_by_its_own_min_insync_replicas() {
    let mut image = cluster(5);
    topic(&mut image, &[1, 2, 3]);
    reassign(&mut image, Some(&[4, 2]), 3).unwrap();
    isr(&mut image, &[1, 3]).unwrap();
    isr(&mut image, &[1, 3, 4]).unwrap();
    assert!(
        p(&image).reassignment.is_some(),
        "only 4 of the target is in sync: 1 < 2"
    );
    // The same target asked again with min.insync.replicas 1: 4 alone is enough.
    reassign(&mut image, Some(&[4, 2]), 1).unwrap();
    let r = p(&image);
    assert!(r.reassignment.is_none());
    assert_eq!(
        (r.replicas.clone(), r.isr.clone(), r.leader),
        (vec![4, 2], vec![4], 4)
    );
}

#[derive(Debug, Clone)]
enum Step {
    Start(Vec<i32>, i32),
    Cancel,
    /// The leader adds the n-th replica outside the ISR (if any).
    CatchUp(usize),
    /// The leader drops the n-th follower of the ISR (if it can).
    FallBehind(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (Just(()), 1i32..=3)
            .prop_flat_map(|(_, min)| {
                (
                    proptest::sample::subsequence(vec![1, 2, 3, 4, 5], 1..=4).prop_shuffle(),
                    Just(min),
                )
            })
            .prop_map(|(t, m)| Step::Start(t, m)),
        Just(Step::Cancel),
        (0usize..5).prop_map(Step::CatchUp),
        (0usize..5).prop_map(Step::FallBehind),
    ]
}

proptest! {
    /// Whatever happens, the leader is in the ISR, the ISR is within the replicas, a move's
    /// replicas are its target then its leaving replicas, and a completed move leaves at least
    /// as many in-sync replicas as it was asked to keep.
    #[test]
    fn moves_keep_their_invariants(steps in proptest::collection::vec(step(), 1..40)) {
        let mut image = cluster(5);
        topic(&mut image, &[1, 2, 3]);
        for s in steps {
            let before = p(&image).clone();
            let asked = match &s {
                Step::Start(t, m) => {
                    let _ = reassign(&mut image, Some(t), *m);
                    Some((t.clone(), *m))
                }
                Step::Cancel => {
                    let _ = reassign(&mut image, None, 1);
                    None
                }
                Step::CatchUp(n) => {
                    let out: Vec<i32> = before.replicas.iter().copied()
                        .filter(|b| !before.isr.contains(b)).collect();
                    if let Some(b) = out.get(n % out.len().max(1)) {
                        let mut next = before.isr.clone();
                        next.push(*b);
                        let _ = isr(&mut image, &next);
                    }
                    None
                }
                Step::FallBehind(n) => {
                    let followers: Vec<i32> = before.isr.iter().copied()
                        .filter(|b| *b != before.leader).collect();
                    if let Some(b) = followers.get(n % followers.len().max(1)) {
                        let next: Vec<i32> = before.isr.iter().copied().filter(|x| x != b).collect();
                        let _ = isr(&mut image, &next);
                    }
                    None
                }
            };
            let r = p(&image);
            prop_assert!(r.isr.contains(&r.leader), "{r:?}");
            prop_assert!(r.isr.iter().all(|b| r.replicas.contains(b)), "{r:?}");
            if let Some(m) = &r.reassignment {
                prop_assert_eq!(&r.replicas, &m.replicas());
            }
            let completed = before.reassignment.is_some() && r.reassignment.is_none();
            if let (true, Some(m)) = (completed, &before.reassignment) {
                // A new request replaces the move and brings its own min.insync.replicas.
                let min_isr = asked.as_ref().map_or(m.min_isr, |(t, m)| (*m).min(t.len() as i32));
                if r.replicas == m.target {
                    prop_assert!(r.isr.len() as i32 >= min_isr, "{before:?} -> {r:?}");
                }
            }
            if let Some((t, m)) = asked {
                let same_set = {
                    let original = before.reassignment.as_ref()
                        .map_or(before.replicas.clone(), |m| m.original.clone());
                    let (mut a, mut b) = (original, t.clone());
                    a.sort_unstable();
                    b.sort_unstable();
                    a == b
                };
                if r.reassignment.is_none() && r.replicas == t && !same_set {
                    // Completed at once (nothing to add): enough of the target was in sync.
                    prop_assert!(r.isr.len() as i32 >= m.min(t.len() as i32), "{before:?} -> {r:?}");
                }
            }
        }
    }
}
