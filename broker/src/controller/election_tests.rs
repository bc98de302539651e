//! Unit tests of the ElectLeaders rules (preferred and unclean) and of UnregisterBroker.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use uuid::Uuid;

use super::apply_tests::cluster;
use super::*;

fn create(image: &mut MetadataImage, assignment: Vec<Vec<i32>>) {
    let cmd = MetadataCommand::CreateTopic {
        name: "t".into(),
        id: Uuid::new_v4(),
        assignment,
        configs: Default::default(),
    };
    apply(image, &cmd).unwrap();
}

fn fence(image: &mut MetadataImage, id: i32) {
    let cmd = MetadataCommand::FenceBroker {
        id,
        incarnation: None,
    };
    apply(image, &cmd).unwrap();
}

fn shrink_isr(image: &mut MetadataImage, isr: Vec<i32>) {
    let p = image.partition("t", 0).unwrap().clone();
    let cmd = MetadataCommand::AlterPartition {
        topic: "t".into(),
        partition: 0,
        broker_id: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: isr,
    };
    apply(image, &cmd).unwrap();
}

fn unclean() -> MetadataCommand {
    MetadataCommand::ElectUncleanLeader {
        topic: "t".into(),
        partition: 0,
    }
}

#[test]
fn preferred_candidate_follows_kafka_codes() {
    let mut image = cluster(3);
    create(&mut image, vec![vec![1, 2, 3]]);
    assert!(matches!(
        election_candidate(&image, "t", 0, false),
        Err(Refusal::ElectionNotNeeded { .. })
    ));
    fence(&mut image, 1);
    assert_eq!(image.partition("t", 0).unwrap().leader, 2);
    // Preferred replica fenced (and out of the ISR).
    assert!(matches!(
        election_candidate(&image, "t", 0, false),
        Err(Refusal::PreferredLeaderNotAvailable { .. })
    ));
    apply(&mut image, &MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
    // Live again but not yet back in the ISR.
    assert!(matches!(
        election_candidate(&image, "t", 0, false),
        Err(Refusal::PreferredLeaderNotAvailable { .. })
    ));
    shrink_isr(&mut image, vec![2, 3, 1]);
    assert_eq!(election_candidate(&image, "t", 0, false), Ok(1));
    assert!(matches!(
        election_candidate(&image, "t", 1, false),
        Err(Refusal::UnknownPartition { .. })
    ));
    assert!(matches!(
        election_candidate(&image, "nope", 0, true),
        Err(Refusal::UnknownPartition { .. })
    ));
}

#[test]
fn unclean_election_is_not_needed_while_a_leader_exists() {
    let mut image = cluster(2);
    create(&mut image, vec![vec![1, 2]]);
    let before = image.clone();
    assert!(matches!(
        apply(&mut image, &unclean()),
        Err(Refusal::ElectionNotNeeded { .. })
    ));
    assert_eq!(image, before, "a refusal changes nothing");
}

#[test]
fn unclean_election_makes_a_live_replica_outside_the_isr_leader() {
    let mut image = cluster(3);
    create(&mut image, vec![vec![1, 2, 3]]);
    shrink_isr(&mut image, vec![1]);
    fence(&mut image, 1);
    let p = image.partition("t", 0).unwrap().clone();
    assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![1]));
    apply(&mut image, &unclean()).unwrap();
    let q = image.partition("t", 0).unwrap();
    assert_eq!(q.leader, 2, "first live replica in assignment order");
    assert_eq!(q.isr, vec![2], "the new leader is the whole ISR");
    assert_eq!(q.leader_epoch, p.leader_epoch + 1);
    assert_eq!(q.partition_epoch, p.partition_epoch + 1);
}

#[test]
fn unclean_election_without_any_live_replica_is_refused() {
    let mut image = cluster(2);
    create(&mut image, vec![vec![1, 2]]);
    fence(&mut image, 2);
    fence(&mut image, 1);
    assert!(matches!(
        apply(&mut image, &unclean()),
        Err(Refusal::EligibleLeadersNotAvailable { .. })
    ));
}

#[test]
fn unregister_removes_a_fenced_broker_and_keeps_assignments() {
    let mut image = cluster(3);
    create(&mut image, vec![vec![3, 1]]);
    fence(&mut image, 3);
    assert_eq!(image.fenced_brokers(), 1);
    apply(&mut image, &MetadataCommand::UnregisterBroker { id: 3 }).unwrap();
    assert!(!image.brokers.contains_key(&3));
    assert_eq!(image.fenced_brokers(), 0);
    let p = image.partition("t", 0).unwrap();
    assert_eq!(p.replicas, vec![3, 1], "assignments stay, as in Kafka");
    assert_eq!((p.leader, p.isr.clone()), (1, vec![1]));
    assert_eq!(
        apply(&mut image, &MetadataCommand::UnregisterBroker { id: 3 }),
        Err(Refusal::UnknownBroker(3))
    );
    // The id can register again later (a new broker in its place).
    let register = MetadataCommand::RegisterBroker {
        id: 3,
        host: "b3".into(),
        port: 9092,
        rack: None,
        incarnation_id: "inc-3b".into(),
        replication: String::new(),
        listeners: Vec::new(),
    };
    apply(&mut image, &register).unwrap();
    assert!(image.brokers[&3].fenced);
}

#[test]
fn unregister_of_a_live_broker_fences_it_first() {
    let mut image = cluster(2);
    create(&mut image, vec![vec![1, 2]]);
    apply(&mut image, &MetadataCommand::UnregisterBroker { id: 1 }).unwrap();
    let p = image.partition("t", 0).unwrap();
    assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    assert!(!image.brokers.contains_key(&1));
}
